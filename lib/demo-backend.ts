/**
 * A small HTTP/2 backend (cleartext, prior knowledge) for the demo and the tests. It answers
 * with what it saw, so a client can check what crossed the proxy:
 *   GET  /health            200 "ok"
 *   ANY  /echo              echoes the request body (streamed) with the request's content-type
 *   GET  /trailers          a body, then trailers `x-checksum: abc123` and `grpc-status: 0`
 *   GET  /hang              never answers (for timeout tests)
 *   GET  /bytes/N           N bytes of a repeating pattern
 *   GET  /late-end?ms=N     a first line at once, the end of the response N ms later (≤ 10 s)
 *   GET  /page              a small HTML page that POSTs to /echo with fetch()
 *   anything else           JSON: backend name, method, path, authority, headers
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface DemoBackendOptions {
  port?: number;
  host?: string;
  /** Serve HTTP/2 over TLS (ALPN h2) with this certificate instead of cleartext. */
  tls?: { cert: Buffer; key: Buffer };
}

export interface DemoBackend {
  name: string;
  port: number;
  /** `http://host:port`, or `https://host:port` with TLS. */
  origin: string;
  /** HTTP/2 sessions (connections) accepted so far. */
  sessionsOpened: () => number;
  /** Destroys every open session, as a backend restart or network fault would. */
  dropSessions(): void;
  /** Requests seen, newest last (method, path, headers). */
  seen: Array<{ method: string; path: string; headers: http2.IncomingHttpHeaders }>;
  close(): Promise<void>;
}

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>Spooky demo</title></head>
<body><h1>Spooky demo</h1><p id="out">…</p><script>
async function post() {
  const r = await fetch('/echo', { method: 'POST', body: 'boo from the browser', headers: { 'content-type': 'text/plain' } });
  return r.status + ' ' + (await r.text());
}
window.postResult = post();
window.postResult.then((t) => { document.getElementById('out').textContent = t; });
</script></body></html>`;

export async function startDemoBackend(name: string, opts: DemoBackendOptions = {}): Promise<DemoBackend> {
  const { port = 0, host = '127.0.0.1', tls } = opts;
  const seen: DemoBackend['seen'] = [];
  const server: http2.Http2Server | http2.Http2SecureServer = tls
    ? http2.createSecureServer({ cert: tls.cert, key: tls.key, allowHTTP1: false })
    : http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  let opened = 0;
  server.on('session', (s: http2.ServerHttp2Session) => {
    opened++;
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    const method = String(headers[':method']);
    const path = String(headers[':path']);
    seen.push({ method, path, headers });
    stream.on('error', () => {});
    const url = new URL(path, 'http://x');
    if (url.pathname === '/health') {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end('ok\n');
    } else if (url.pathname === '/echo') {
      const ct = headers['content-type'];
      stream.respond({ ':status': 200, 'content-type': ct ?? 'application/octet-stream', 'x-backend': name });
      stream.pipe(stream);
    } else if (url.pathname === '/trailers') {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc123', 'grpc-status': '0' }));
      stream.end('body before trailers\n');
    } else if (url.pathname === '/hang') {
      stream.resume(); // read and ignore; never respond
    } else if (url.pathname.startsWith('/bytes/')) {
      const n = Math.min(Number(url.pathname.slice(7)) || 0, 64 * 1024 * 1024);
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': String(n) });
      const chunk = Buffer.alloc(Math.min(n, 65536), 'spooky!');
      let left = n;
      const pump = () => {
        while (left > 0) {
          const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= part.length;
          if (!stream.write(part)) return void stream.once('drain', pump);
        }
        stream.end();
      };
      pump();
    } else if (url.pathname.startsWith('/drip/')) {
      // N bytes (byte i is i mod 251, so a lost or reordered byte shows) spread over `ms`: a
      // download that lasts, for tests of what happens to a connection meanwhile.
      const n = Math.min(Number(url.pathname.slice(6)) || 0, 64 * 1024 * 1024);
      const ms = Math.min(Number(url.searchParams.get('ms')) || 0, 60_000);
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': String(n) });
      const pieces = 50;
      let sent = 0;
      let i = 0;
      const timer = setInterval(() => {
        i++;
        const until = i >= pieces ? n : Math.floor((n * i) / pieces);
        const part = Buffer.allocUnsafe(until - sent);
        for (let k = 0; k < part.length; k++) part[k] = (sent + k) % 251;
        sent = until;
        stream.write(part);
        if (sent >= n) {
          clearInterval(timer);
          stream.end();
        }
      }, ms / pieces);
      stream.on('close', () => clearInterval(timer));
    } else if (url.pathname === '/late-end') {
      // The body's bytes arrive (and are acknowledged) well before the stream ends.
      const ms = Math.min(Number(url.searchParams.get('ms')) || 0, 10_000);
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.write('first line\n');
      const timer = setTimeout(() => stream.end(), ms);
      stream.on('close', () => clearTimeout(timer));
    } else if (url.pathname === '/page') {
      stream.respond({ ':status': 200, 'content-type': 'text/html; charset=utf-8' });
      stream.end(PAGE);
    } else {
      const rest: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':')) rest[k] = v;
      stream.respond({ ':status': 200, 'content-type': 'application/json', 'x-backend': name });
      stream.end(
        `${JSON.stringify({ backend: name, method, path, authority: headers[':authority'], headers: rest })}\n`,
      );
    }
    stream.resume();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    name,
    port: actual,
    origin: `${tls ? 'https' : 'http'}://${host}:${actual}`,
    seen,
    sessionsOpened: () => opened,
    dropSessions: () => {
      for (const s of sessions) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}
