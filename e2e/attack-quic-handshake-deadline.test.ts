/**
 * A QUIC client that sends its first Initial and then goes silent holds an admission slot
 * (performance.per_source_max_connections) until the server gives up on it. Before, that was the
 * idle timeout (30 s by default): a source could keep its share busy with one cheap datagram per
 * half minute. performance.tls_handshake_timeout_ms now applies to QUIC too: the unfinished
 * handshake is closed (CONNECTION_REFUSED), counted as reason `deadline`, and the slot is free.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { InitialProbe } from './support/initial-probe.js';
import { Observed } from './support/observe.js';
import { onlyPool } from './support/pair.js';

const DEADLINE_MS = 1500;

describe('a QUIC handshake that never completes', { timeout: 60_000 }, () => {
  let a: DemoBackend;
  let obs: Observed;

  before(async () => {
    a = await startDemoBackend('a');
    obs = await Observed.start(onlyPool(a.origin), {
      extra: `performance:\n  quic_retry: never\n  per_source_max_connections: 1\n  tls_handshake_timeout_ms: ${DEADLINE_MS}\n  quic_max_idle_timeout_ms: 30000\n`,
    });
  });

  after(async () => {
    await obs?.stop();
    await a?.close();
  });

  it('is closed at tls_handshake_timeout_ms, counted, and its per-source slot serves the next client', async (t) => {
    const probe = await InitialProbe.open(obs.port);
    try {
      await probe.send(probe.firstInitial());
      const replies = await probe.waitReplies(1, 3000);
      assert.ok(replies.length >= 1, 'the server answered the Initial (the connection exists)');

      // The silent client holds the only slot of 127.0.0.1: a real client is refused meanwhile.
      const refused = await H3ClientSession.connect('127.0.0.1', obs.port, {
        insecure: true,
        serverName: 'localhost',
        handshakeTimeoutMs: 500,
      }).then(
        async (s) => {
          await s.close();
          return false;
        },
        () => true,
      );
      t.diagnostic(`a second client while the handshake is pending: ${refused ? 'refused' : 'served'}`);
      assert.ok(refused, 'the per-source limit holds while the handshake is pending');

      await obs.waitFor('spooky_quic_handshake_failures_total', (v) => (v ?? 0) >= 1, 10_000, { reason: 'deadline' });
      const client = await H3ClientSession.connect('127.0.0.1', obs.port, { insecure: true, serverName: 'localhost' });
      try {
        const res = await client.fetch({ path: '/after-deadline', authority: 'only.example' });
        assert.equal(res.status, 200, 'the freed slot serves a real client');
      } finally {
        await client.close();
      }
    } finally {
      probe.close();
    }
  });
});
