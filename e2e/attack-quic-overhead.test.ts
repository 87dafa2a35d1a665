/**
 * The bundled quiche 0.18's unbounded-memory flaws (PATH_CHALLENGE, retired connection ids,
 * CRYPTO after the handshake) share one signature: many bytes received that never become stream
 * data. This floods a live connection with such packets (ack-eliciting PINGs, the one such frame a
 * well-formed client can send at will) against the real processes: the connection must be closed
 * with H3_EXCESSIVE_LOAD and counted, while a bystander is served.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { h3ErrorName } from '../dataplane/h3/errors.js';
import { encodeSettings } from '../dataplane/h3/frames.js';
import { OVERHEAD_BASE_BYTES } from '../dataplane/quic/overhead-guard.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { Observed } from './support/observe.js';
import { onlyPool } from './support/pair.js';
import { RawQuicClient } from './support/raw-client.js';

describe('QUIC input that is not stream data', { timeout: 60_000 }, () => {
  let a: DemoBackend;
  let obs: Observed;

  before(async () => {
    a = await startDemoBackend('a');
    // Small flow-control windows keep the allowance (base + unread window) and so the flood short
    // (the unread window is the connection's, at least 1.5 × a stream's: dataplane.ts).
    obs = await Observed.start(onlyPool(a.origin), {
      extra: 'performance:\n  quic_initial_max_data: 262144\n  quic_initial_max_stream_data: 131072\n',
    });
  });

  after(async () => {
    await obs?.stop();
    await a?.close();
  });

  it('a flood of PING-only packets is cut with H3_EXCESSIVE_LOAD after about the allowance, and counted', async (t) => {
    const bystander = await H3ClientSession.connect('127.0.0.1', obs.port, { insecure: true, serverName: 'localhost' });
    const c = await RawQuicClient.connect(obs.port);
    c.write(2, Buffer.concat([Buffer.from([0x00]), encodeSettings([[0x01, 0]])]));
    let sentBytes = 0;
    try {
      const before = c.quic.conn.stats();
      // PINGs are congestion-controlled: send what the window allows, then let ACKs come back.
      // Bounded in time (and, loosely, in count: a congestion-limited flush sends nothing, so a
      // loaded machine can spin through many iterations per datagram).
      const deadline = performance.now() + 20_000;
      for (let i = 0; i < 10_000_000 && !c.isClosed && performance.now() < deadline; i++) {
        c.quic.conn.sendAckEliciting();
        c.quic.flush(true);
        if (i % 20 === 0) await new Promise((r) => setImmediate(r));
      }
      const info = await c.waitClosed(3000);
      sentBytes = Number(c.quic.conn.stats().sentBytes) - Number(before.sentBytes);
      t.diagnostic(`sent ${sentBytes} bytes of PINGs; closed: ${JSON.stringify(info)}`);
      assert.ok(info, 'the connection was closed');
      assert.equal(info.isApp, true);
      assert.equal(h3ErrorName(info.code), 'H3_EXCESSIVE_LOAD');
      assert.ok(sentBytes > OVERHEAD_BASE_BYTES + 262_144, 'not before the allowance (base + flow-control window)');
      await obs.waitFor('spooky_quic_connections_shed_total', (v) => (v ?? 0) >= 1, 5000, { reason: 'overhead' });
      const res = await bystander.fetch({ path: '/after-flood', authority: 'only.example' });
      assert.equal(res.status, 200, 'the bystander is still served');
    } finally {
      await c.close();
      await bystander.close();
    }
  });
});
