/**
 * The client address Spooky forwards comes from packets quiche authenticated, not from the
 * source of any datagram that carries a live connection id (RFC 9000 §9: a new address counts
 * only once its path is validated). Attack: during a live HTTP/3 connection, a datagram with the
 * connection's id but undecryptable content arrives from another loopback address.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { dataplaneConfig, type RunningDataplane, startDataplane } from './support/harness.js';

describe('spoofed datagrams do not change the client address', () => {
  let backend: DemoBackend;
  let dp: RunningDataplane;

  before(async () => {
    backend = await startDemoBackend('a');
    dp = await startDataplane(
      dataplaneConfig(`  only:
    route: { path_prefix: / }
    backends:
      - { id: only-1, address: "${backend.origin}" }
`),
    );
  });

  after(async () => {
    await dp?.stop();
    await backend?.close();
  });

  /** The forwarding headers the backend saw for one request on `c`. */
  async function forwardedSeen(c: H3ClientSession): Promise<{ xff: unknown; forwarded: unknown }> {
    const res = await c.fetch({ path: '/who', authority: 'only.example' });
    assert.equal(res.status, 200);
    const headers = JSON.parse(res.body.toString()).headers as Record<string, unknown>;
    return { xff: headers['x-forwarded-for'], forwarded: headers.forwarded };
  }

  it('an undecryptable short-header datagram from 127.0.0.2 with a live connection id changes nothing', async () => {
    const c = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
    const spoofer = dgram.createSocket('udp4');
    try {
      const first = await forwardedSeen(c);
      assert.equal(first.xff, '127.0.0.1');
      await new Promise<void>((resolve, reject) => {
        spoofer.once('error', reject);
        spoofer.bind(0, '127.0.0.2', () => resolve());
      });
      // The id the client addresses the server with right now, in a short header with junk after it.
      const dcid = Buffer.from(c.quic.conn.destinationId());
      const spoofed = Buffer.concat([Buffer.from([0x40]), dcid, randomBytes(60)]);
      // The spoofed datagram alone, between requests.
      await new Promise<void>((r) => spoofer.send(spoofed, dp.port, '127.0.0.1', () => r()));
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(await forwardedSeen(c), first, 'after a spoofed datagram between requests');
      // Right behind a request: with the data plane paused (SIGSTOP) both datagrams wait in its
      // socket and are read in one turn, request first, then the spoofed one. The pause is
      // shorter than the client's retransmission timeout, so no later real datagram intervenes.
      dp.proc.kill('SIGSTOP');
      let later: Promise<{ xff: unknown; forwarded: unknown }>;
      try {
        later = forwardedSeen(c);
        await new Promise((r) => setTimeout(r, 5));
        await new Promise<void>((r) => spoofer.send(spoofed, dp.port, '127.0.0.1', () => r()));
      } finally {
        dp.proc.kill('SIGCONT');
      }
      const seen = await later;
      assert.deepEqual(seen, first, 'the backend still sees the real client');
      assert.match(String(seen.forwarded), /^for=127\.0\.0\.1;/);
    } finally {
      spoofer.close();
      await c.close();
    }
  });
});
