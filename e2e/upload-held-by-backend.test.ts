/**
 * Uploads that the backend reads more slowly than the client sends them wait where they arrived:
 * in quiche, under the client's flow control (the HTTP/2 client asks the HTTP/3 stream to pause
 * as soon as the backend's windows are full, and copies nothing it can send at once; issue #16).
 * They must arrive whole, and that unread data must not look like a flood of non-stream frames to
 * the overhead guard, which allows unread data up to what flow control permits. quiche is told
 * to keep its windows at the configured sizes (dataplane.ts unreadWindowBytes): its auto-tuning
 * had let them grow past that allowance (the benchmark's uploads were shed with
 * H3_EXCESSIVE_LOAD), and a connection ceiling below 1.5 × the stream window makes quiche close
 * the connection with FLOW_CONTROL_ERROR, which this test catches (small connection window, 1 MB
 * stream windows).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http2 from 'node:http2';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { Observed } from './support/observe.js';
import { onlyPool } from './support/pair.js';

const WINDOW = 262_144;
const UPLOAD = 4 * 1024 * 1024;
const UPLOADS = 16;

/** h2c backend: reads each upload in bursts with pauses between (a backend slower than the client), answers its sha256. */
async function startStallingBackend() {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => {});
  });
  server.on('stream', (stream) => {
    stream.on('error', () => {});
    const hash = createHash('sha256');
    let sinceStall = 0;
    stream.on('data', (d: Buffer) => {
      hash.update(d);
      sinceStall += d.length;
      if (sinceStall >= 1024 * 1024) {
        sinceStall = 0;
        stream.pause();
        setTimeout(() => stream.resume(), 500);
      }
    });
    stream.on('end', () => {
      stream.respond({ ':status': 200 });
      stream.end(hash.digest('hex'));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as net.AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('uploads held up by a slower backend', { timeout: 90_000 }, () => {
  let backend: Awaited<ReturnType<typeof startStallingBackend>>;
  let obs: Observed;

  before(async () => {
    backend = await startStallingBackend();
    obs = await Observed.start(onlyPool(backend.origin), {
      extra: `performance:\n  quic_initial_max_data: ${WINDOW}\n`,
    });
  });

  after(async () => {
    await obs?.stop();
    await backend?.close();
  });

  it('arrive whole, and the connection is not shed as overhead', async () => {
    const c = await H3ClientSession.connect('127.0.0.1', obs.port, { insecure: true, serverName: 'localhost' });
    try {
      const bodies = Array.from({ length: UPLOADS }, (_, i) => {
        const body = Buffer.alloc(UPLOAD, 0x61 + i);
        body.writeUInt32BE(i, 0);
        return body;
      });
      const answers = await Promise.all(
        bodies.map((body, i) =>
          c.fetch({
            method: 'POST',
            path: `/upload/${i}`,
            authority: 'only.example',
            headers: [['content-length', String(body.length)]],
            body,
          }),
        ),
      );
      answers.forEach((res, i) => {
        assert.equal(res.status, 200, `upload ${i}: ${Buffer.from(res.body).toString()}`);
        const sent = createHash('sha256')
          .update(bodies[i] as Buffer)
          .digest('hex');
        assert.equal(Buffer.from(res.body).toString(), sent, `upload ${i} arrived whole`);
      });
    } finally {
      await c.close();
    }
    await obs.settle();
    assert.equal((await obs.metric('spooky_quic_connections_shed_total', { reason: 'overhead' })) ?? 0, 0);
  });
});
