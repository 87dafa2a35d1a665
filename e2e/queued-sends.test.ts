/**
 * The QUIC endpoint writes each datagram into one shared buffer and sends it without a copy,
 * which is only safe while the kernel takes each datagram at once. Here the data plane runs
 * with Node's `--test-udp-no-try-send`, so libuv queues every send instead of trying it at once
 * (as under a full socket buffer): the endpoint must move on to a new buffer each time a send is
 * still queued, and 5 MiB each way must
 * still arrive byte for byte, without the duplicates and retransmissions a reused buffer
 * causes (queued datagrams overwritten by later ones).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import dns from 'node:dns/promises';
import { after, before, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { dataplaneConfig, type RunningDataplane, startDataplane } from './support/harness.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('QUIC sends queued by the socket', () => {
  let backend: DemoBackend;
  let dp: RunningDataplane;
  let client: H3ClientSession;

  before(async () => {
    backend = await startDemoBackend('a');
    dp = await startDataplane(
      dataplaneConfig(`  web:
    route: { path_prefix: / }
    backends:
      - { id: web-a, address: "${backend.origin}" }
`),
      { nodeFlags: ['--test-udp-no-try-send'] },
    );
    client = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
  });

  after(async () => {
    await client?.close();
    await dp?.stop();
    await backend?.close();
  });

  it('echoes 5 MiB byte for byte while every datagram waits in the send queue', async () => {
    const body = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7919 + (i >> 13)) & 0xff;
    const res = await client.fetch({
      method: 'POST',
      path: '/echo',
      authority: `localhost:${dp.port}`,
      headers: [['content-type', 'application/octet-stream']],
      body,
    });
    assert.equal(res.status, 200);
    assert.equal(res.body.length, body.length);
    assert.equal(sha(res.body), sha(body));
    // QUIC recovers from overwritten datagrams by retransmitting (slowly), so the bytes alone
    // do not show it: the packet counts do. 5 MiB each way is about 4,000 full datagrams each
    // way; overwritten ones come back as duplicates and draw extra ACKs (7,000 received and
    // 11,000 sent when measured with the buffer reused).
    const stats = client.quic.conn.stats();
    const bound = body.length / 1000;
    assert.ok(stats.recv < bound, `client received ${stats.recv} packets for 5 MiB (duplicates?)`);
    assert.ok(stats.sent < bound, `client sent ${stats.sent} packets for 5 MiB (ACKs for duplicates?)`);
  });

  it('a client that dials a host name resolves it once, and its sends leave intact', async (t) => {
    // Every send must name an address (the zero-copy send relies on dgram sending at once), so
    // QuicEndpoint.connect resolves the name before the handshake.
    const { address } = await dns.lookup('localhost');
    if (address !== '127.0.0.1')
      return t.skip(`localhost resolves to ${address} here, the data plane listens on 127.0.0.1`);
    const named = await H3ClientSession.connect('localhost', dp.port, { insecure: true });
    try {
      const body = Buffer.alloc(1024 * 1024);
      for (let i = 0; i < body.length; i++) body[i] = (i * 31 + (i >> 11)) & 0xff;
      const res = await named.fetch({ method: 'POST', path: '/echo', authority: `localhost:${dp.port}`, body });
      assert.equal(res.status, 200);
      assert.equal(sha(res.body), sha(body));
      assert.equal(named.quic.peer.host, '127.0.0.1');
    } finally {
      await named.close();
    }
  });

  it('serves 50 concurrent small requests on the same connection', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => client.fetch({ path: `/q/${i}`, authority: `localhost:${dp.port}` })),
    );
    for (const [i, r] of results.entries()) {
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body.toString()).path, `/q/${i}`);
    }
  });
});
