/**
 * Issue #12, items 8 and 10a–c, against the real data plane on HTTP/3 and on the TCP listener's
 * HTTP/2 and HTTP/1.1:
 *   8.   `Transfer-Encoding: gzip, chunked` was forwarded as a plain body: now 501 (RFC 9112 §6.1).
 *   10a. `/h1/../admin` was routed by the `/h1` prefix to a backend that would act on `/admin`:
 *        paths are normalised (dot-segments, escaped unreserved characters) before routing.
 *   10b. a backend's interim (1xx) responses were relayed without limit: past the cap, 502.
 *   10c. a backend's `999` status was relayed: now 502 (and the backend's breaker is not blamed).
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { dataplaneConfig, type RunningDataplane, startDataplane } from './support/harness.js';
import { describeH2, finalStatus, h1Exchange, h2Connect, h2Request } from './support/tcp-clients.js';

const AUTH = 'www.example';
/** MAX_INTERIM_RESPONSES in dataplane/proxy/upstream-call.ts (as docs/traffic.md states it). */
const MAX_INTERIM_RESPONSES = 8;

/** HTTP/2 backend: `/interim/N` sends N 103 Early Hints, then 200. */
async function startInterimBackend() {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const n = Math.min(Number(String(headers[':path']).split('/')[2]) || 0, 1000);
    for (let i = 0; i < n; i++) stream.additionalHeaders({ ':status': 103, link: `</style-${i}.css>; rel=preload` });
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end('final\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    origin: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

/** HTTP/1.1 backend written by hand: `/odd/ok` gets 200, any other path status 999. */
async function startOddStatusBackend() {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end !== -1; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        const ok = head.startsWith('GET /odd/ok ');
        socket.write(
          ok
            ? 'HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n'
            : 'HTTP/1.1 999 Odd\r\ncontent-length: 4\r\n\r\nodd\n',
        );
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    origin: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('HTTP message attacks (issue #12 items 8, 10a, 10b, 10c)', { timeout: 120_000 }, () => {
  let app: DemoBackend;
  let interim: Awaited<ReturnType<typeof startInterimBackend>>;
  let odd: Awaited<ReturnType<typeof startOddStatusBackend>>;
  let dp: RunningDataplane;
  let h3: H3ClientSession;
  let h2: http2.ClientHttp2Session;

  before(async () => {
    app = await startDemoBackend('app');
    interim = await startInterimBackend();
    odd = await startOddStatusBackend();
    // Only /h1 of the app is published: nothing routes /admin.
    dp = await startDataplane(
      dataplaneConfig(`  app:
    route: { path_prefix: /h1 }
    backends: [{ id: app, address: "${app.origin}" }]
  interim:
    route: { path_prefix: /interim }
    backends: [{ id: interim, address: "${interim.origin}" }]
  odd:
    route: { path_prefix: /odd }
    backends: [{ id: odd, address: "${odd.origin}", protocol: http1 }]
`),
    );
    h3 = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
    h2 = h2Connect(dp.port);
  });

  after(async () => {
    await h3?.close().catch(() => {});
    h2?.destroy();
    await dp?.stop();
    await app?.close();
    await interim?.close();
    await odd?.close();
  });

  /** The final status on each protocol: [HTTP/3, HTTP/2, HTTP/1.1]. */
  async function statuses(path: string): Promise<[number, string, number]> {
    const viaH3 = await h3.fetch({ path, authority: AUTH });
    const viaH2 = await h2Request(h2, { ':path': path, ':authority': AUTH });
    const viaH1 = await h1Exchange(dp.port, `GET ${path} HTTP/1.1\r\nHost: ${AUTH}\r\nConnection: close\r\n\r\n`);
    return [viaH3.status, describeH2(viaH2), finalStatus(viaH1.raw)];
  }

  it('8: Transfer-Encoding other than chunked gets 501 and reaches no backend; chunked alone still works', async () => {
    const before = app.seen.length;
    const body = '5\r\nhello\r\n0\r\n\r\n';
    for (const te of ['gzip, chunked', 'deflate,chunked', 'identity, chunked']) {
      const r = await h1Exchange(
        dp.port,
        `POST /h1/echo HTTP/1.1\r\nHost: ${AUTH}\r\nTransfer-Encoding: ${te}\r\nConnection: close\r\n\r\n${body}`,
      );
      assert.equal(r.status, 501, `Transfer-Encoding: ${te}: ${r.raw.slice(0, 200)}`);
    }
    assert.equal(app.seen.length, before, 'no request reached the backend');
    const ok = await h1Exchange(
      dp.port,
      `POST /h1/echo HTTP/1.1\r\nHost: ${AUTH}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body}`,
    );
    assert.equal(ok.status, 200, ok.raw.slice(0, 200));
    assert.equal(app.seen.length, before + 1, 'the chunked request was forwarded');
  });

  it('10a: dot-segments and escaped dots are resolved before routing; above the root is 400', async () => {
    for (const path of ['/h1/../admin', '/h1/%2e%2e/admin', '/h1/.%2E/admin', '/h1/x/../../admin']) {
      assert.deepEqual(await statuses(path), [404, '404', 404], path);
    }
    for (const path of ['/../h1/x', '/h1/../../x']) assert.deepEqual(await statuses(path), [400, '400', 400], path);
    // What stays under the prefix is served, and the backend gets the normalised path.
    const before = app.seen.length;
    assert.deepEqual(await statuses('/h1/./a/../%7Euser?q=/../x'), [200, '200', 200]);
    const seen = app.seen.slice(before).map((s) => s.path);
    assert.deepEqual(seen, ['/h1/~user?q=/../x', '/h1/~user?q=/../x', '/h1/~user?q=/../x']);
  });

  it(`10b: more than ${MAX_INTERIM_RESPONSES} interim responses get 502; a few are relayed`, async () => {
    const few = await h3.fetch({ path: '/interim/2', authority: AUTH });
    assert.equal(few.status, 200);
    assert.equal(few.interim.length, 2);
    assert.deepEqual(await statuses('/interim/2'), [200, '200', 200]);
    const flood = await h3.fetch({ path: '/interim/200', authority: AUTH });
    assert.equal(flood.status, 502, flood.body.toString());
    assert.ok(flood.interim.length <= MAX_INTERIM_RESPONSES, `${flood.interim.length} interim responses relayed`);
    assert.deepEqual(await statuses('/interim/200'), [502, '502', 502]);
  });

  it('10c: a status outside 100-599 gets 502 on every protocol, without opening the breaker', async () => {
    for (let i = 0; i < 3; i++) assert.deepEqual(await statuses(`/odd/${i}`), [502, '502', 502]);
    // Nine bad answers in a row: the backend is up, so its breaker (5 failures) stayed closed.
    assert.deepEqual(await statuses('/odd/ok'), [200, '200', 200]);
  });
});
