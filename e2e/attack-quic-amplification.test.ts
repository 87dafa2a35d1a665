/**
 * RFC 9000 §8.1 anti-amplification against the running data plane: one valid client Initial from
 * an address that never answers (a spoofed source, in an attack) must not draw more than three
 * times its size, over the whole life of the half-open connection (its retransmissions included).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { dataplaneConfig, type RunningDataplane, startDataplane } from './support/harness.js';
import { longHeaderType } from './support/initial-packet.js';
import { InitialProbe } from './support/initial-probe.js';

/** The half-open connection lives this long; the probe listens a little longer. */
const IDLE_MS = 8000;

for (const retry of ['never', 'always'] as const) {
  describe(`amplification before address validation (quic_retry: ${retry})`, () => {
    let backend: DemoBackend;
    let dp: RunningDataplane;
    let probe: InitialProbe | null = null;

    before(async () => {
      backend = await startDemoBackend('a');
      dp = await startDataplane(
        dataplaneConfig(
          `  only:
    route: { path_prefix: / }
    backends:
      - { id: only-1, address: "${backend.origin}" }
`,
          `performance:\n  quic_retry: ${retry}\n  quic_max_idle_timeout_ms: ${IDLE_MS}\n`,
        ),
      );
    });

    after(async () => {
      probe?.close();
      await dp?.stop();
      await backend?.close();
    });

    it('sends at most 3× the bytes of one Initial to an address that never answers', async (t) => {
      probe = await InitialProbe.open(dp.port);
      const initial = probe.firstInitial();
      assert.ok(initial.length >= 1200);
      await probe.send(initial);
      // Everything the server will ever send to it: the connection idles out within IDLE_MS.
      await new Promise((r) => setTimeout(r, IDLE_MS + 1500));
      const sent = probe.bytesReceived;
      const summary = `${probe.replies.length} datagrams, ${sent} bytes for ${initial.length}`;
      t.diagnostic(summary);
      assert.ok(probe.replies.length > 0, 'the server answered');
      assert.ok(sent <= 3 * initial.length, summary);
      if (retry === 'always') {
        assert.equal(probe.replies.length, 1, summary);
        assert.equal(longHeaderType(probe.replies[0]), 3, 'a Retry');
      }
    });
  });
}
