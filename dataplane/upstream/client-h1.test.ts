import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateSelfSigned } from '../../cli/certs.js';
import { H1Client } from './client-h1.js';
import type { Fields, UpstreamExchange, UpstreamRequest, UpstreamTimeouts } from './dispatcher.js';
import type { UpstreamError } from './errors.js';

const TIMEOUTS: UpstreamTimeouts = { connectMs: 2000, headersMs: 5000, idleMs: 5000 };

const servers: Array<http.Server | https.Server | net.Server> = [];
const clients: H1Client[] = [];
const tmpDirs: string[] = [];

after(async () => {
  for (const c of clients) c.destroy();
  for (const s of servers) {
    if (s instanceof http.Server) s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

async function listen<S extends http.Server | https.Server | net.Server>(
  server: S,
): Promise<{ server: S; port: number }> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

async function httpServer(handler: http.RequestListener) {
  const { server, port } = await listen(http.createServer(handler));
  return { server, port, origin: `http://127.0.0.1:${port}` };
}

function client(origin: string, timeouts: Partial<UpstreamTimeouts> = {}, tls?: { ca: string }): H1Client {
  const c = new H1Client({ origin, timeouts: { ...TIMEOUTS, ...timeouts }, tls });
  clients.push(c);
  return c;
}

function req(method: string, path: string, extra: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return { method, path, authority: 'backend.test:8080', headers: [], hasBody: false, ...extra };
}

interface Outcome {
  status: number;
  headers: Fields;
  informational: Array<[number, Fields]>;
  chunks: Buffer[];
  body: Buffer;
  trailers: Fields | null;
  error: UpstreamError | null;
  events: string[];
}

/** Dispatches and records every callback; `done` settles on onComplete or onError. */
function run(
  c: H1Client,
  request: UpstreamRequest,
  onData: (chunk: Uint8Array, o: Outcome) => boolean = () => true,
): { exchange: UpstreamExchange; outcome: Outcome; done: Promise<Outcome> } {
  const o: Outcome = {
    status: 0,
    headers: [],
    informational: [],
    chunks: [],
    body: Buffer.alloc(0),
    trailers: null,
    error: null,
    events: [],
  };
  let settle!: (o: Outcome) => void;
  const done = new Promise<Outcome>((resolve) => (settle = resolve));
  const exchange = c.dispatch(request, {
    onInformational(status, headers) {
      o.events.push(`info ${status}`);
      o.informational.push([status, headers]);
    },
    onResponseStart(status, headers) {
      o.events.push('start');
      o.status = status;
      o.headers = headers;
    },
    onData(chunk) {
      o.events.push('data');
      o.chunks.push(Buffer.from(chunk));
      return onData(chunk, o);
    },
    onComplete(trailers) {
      o.events.push('complete');
      o.trailers = trailers;
      o.body = Buffer.concat(o.chunks);
      settle(o);
    },
    onError(error) {
      o.events.push(`error ${error.kind}`);
      o.error = error;
      settle(o);
    },
  });
  return { exchange, outcome: o, done };
}

const values = (fields: Fields, name: string) => fields.filter(([n]) => n === name).map(([, v]) => v);
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function freePort(): Promise<number> {
  const { server, port } = await listen(http.createServer());
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('H1Client', () => {
  it('sends method, path, headers and Host; returns lowercase, multi-valued fields', async () => {
    const { origin } = await httpServer((rq, rs) => {
      rs.setHeader('Set-Cookie', ['a=1', 'b=2']);
      rs.setHeader('X-Multi', ['one', 'two']);
      rs.setHeader('Connection', 'keep-alive, x-private');
      rs.setHeader('X-Private', 'hop');
      rs.setHeader('Content-Type', 'application/json');
      rs.end(JSON.stringify({ method: rq.method, url: rq.url, headers: rq.headers, raw: rq.rawHeaders }));
    });
    const c = client(origin);
    const { done } = run(
      c,
      req('GET', '/echo?x=1&y=2', {
        headers: [
          ['x-custom', 'v1'],
          ['x-list', 'a'],
          ['x-list', 'b'],
          ['cookie', 'c1=1'],
          ['cookie', 'c2=2'],
          [':authority', 'nope'],
          ['host', 'wrong.example'],
          ['te', 'trailers'],
          ['http2-settings', 'AAA'],
          ['expect', '100-continue'],
        ],
      }),
    );
    const o = await done;
    assert.equal(o.error, null);
    assert.equal(o.status, 200);
    assert.deepEqual(values(o.headers, 'set-cookie'), ['a=1', 'b=2']);
    assert.deepEqual(values(o.headers, 'x-multi'), ['one', 'two']);
    assert.deepEqual(values(o.headers, 'content-type'), ['application/json']);
    for (const [name] of o.headers) assert.equal(name, name.toLowerCase());
    for (const gone of ['connection', 'keep-alive', 'x-private']) assert.deepEqual(values(o.headers, gone), []);
    const seen = JSON.parse(o.body.toString()) as { method: string; url: string; headers: http.IncomingHttpHeaders };
    assert.equal(seen.method, 'GET');
    assert.equal(seen.url, '/echo?x=1&y=2');
    assert.equal(seen.headers.host, 'backend.test:8080');
    assert.equal(seen.headers['x-custom'], 'v1');
    assert.equal(seen.headers['x-list'], 'a, b');
    assert.equal(seen.headers.cookie, 'c1=1; c2=2');
    for (const gone of ['te', 'http2-settings', 'expect', ':authority']) assert.equal(seen.headers[gone], undefined);
    assert.equal(c.inFlight, 0);
  });

  it('echoes a 5 MiB upload byte for byte, honouring write() backpressure', async () => {
    const { origin } = await httpServer((rq, rs) => {
      rs.writeHead(200, { 'content-type': 'application/octet-stream' });
      rq.pipe(rs);
    });
    const c = client(origin);
    const payload = randomBytes(5 * 1024 * 1024);
    const { exchange, done } = run(c, req('POST', '/upload', { hasBody: true }));
    let refusals = 0;
    for (let off = 0; off < payload.length; off += 16 * 1024) {
      if (!exchange.write(payload.subarray(off, off + 16 * 1024))) {
        refusals++;
        await new Promise<void>((resolve) => (exchange.onRequestDrain = resolve));
        exchange.onRequestDrain = null;
      }
    }
    exchange.end([['x-trailer', 'dropped']]);
    const o = await done;
    assert.equal(o.error, null);
    assert.equal(o.body.length, payload.length);
    assert.equal(sha256(o.body), sha256(payload));
    assert.ok(refusals > 0, 'write() should have asked to wait at least once');
  });

  it('streams a chunked response as it arrives, with trailers', async () => {
    const { origin } = await httpServer(async (_rq, rs) => {
      rs.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
      for (let i = 0; i < 5; i++) {
        rs.write(`part${i};`);
        await sleep(30);
      }
      rs.addTrailers({ 'x-checksum': 'abc123' });
      rs.end();
    });
    const c = client(origin);
    let firstChunkAt = 0;
    const { done } = run(c, req('GET', '/stream'), () => {
      firstChunkAt ||= Date.now();
      return true;
    });
    const o = await done;
    const completedAt = Date.now();
    assert.equal(o.body.toString(), 'part0;part1;part2;part3;part4;');
    assert.ok(o.chunks.length >= 3, `expected several chunks, got ${o.chunks.length}`);
    assert.ok(completedAt - firstChunkAt >= 80, 'the first chunk came before the response ended');
    assert.deepEqual(values(o.headers, 'transfer-encoding'), []);
    assert.deepEqual(o.trailers, [['x-checksum', 'abc123']]);
  });

  it('streams a content-length response and gives HEAD no body', async () => {
    const big = randomBytes(1024 * 1024);
    const { origin } = await httpServer((_rq, rs) => {
      rs.writeHead(200, { 'content-length': big.length });
      rs.end(big); // node sends no body for HEAD
    });
    const c = client(origin);
    const get = await run(c, req('GET', '/big')).done;
    assert.equal(get.error, null);
    assert.deepEqual(values(get.headers, 'content-length'), [String(big.length)]);
    assert.equal(sha256(get.body), sha256(big));
    const head = await run(c, req('HEAD', '/big')).done;
    assert.equal(head.error, null);
    assert.equal(head.status, 200);
    assert.deepEqual(values(head.headers, 'content-length'), [String(big.length)]);
    assert.equal(head.chunks.length, 0);
    assert.deepEqual(head.events, ['start', 'complete']);
  });

  it('passes 103 Early Hints through onInformational', async () => {
    const { origin } = await httpServer((_rq, rs) => {
      rs.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      rs.end('ok');
    });
    const o = await run(client(origin), req('GET', '/')).done;
    assert.deepEqual(o.events, ['info 103', 'start', 'data', 'complete']);
    assert.deepEqual(values(o.informational[0][1], 'link'), ['</style.css>; rel=preload; as=style']);
  });

  it('pauses the backend while onData returns false, then delivers everything on resume()', async () => {
    const size = 4 * 1024 * 1024;
    const { origin } = await httpServer((_rq, rs) => {
      rs.writeHead(200, { 'content-length': size });
      rs.end(Buffer.alloc(size, 7));
    });
    const c = client(origin);
    let refuse = true;
    const { exchange, outcome, done } = run(c, req('GET', '/'), () => !refuse);
    while (outcome.chunks.length === 0) await sleep(5);
    await sleep(200);
    assert.equal(outcome.chunks.length, 1, 'no data while paused');
    refuse = false;
    exchange.resume();
    const o = await done;
    assert.equal(o.error, null);
    assert.equal(o.body.length, size);
    assert.ok(o.body.every((b) => b === 7));
  });

  it('reuses keep-alive connections for sequential requests', async () => {
    let connections = 0;
    const { server, origin } = await httpServer((_rq, rs) => rs.end('hi'));
    server.on('connection', () => connections++);
    const c = client(origin);
    for (let i = 0; i < 20; i++) {
      const o = await run(c, req('GET', `/${i}`)).done;
      assert.equal(o.body.toString(), 'hi');
    }
    assert.ok(connections <= 2, `20 requests used ${connections} connections`);
  });

  it('fails with headers_timeout (504) when the backend never answers', async () => {
    const { origin } = await httpServer(() => {});
    const c = client(origin, { headersMs: 150 });
    const o = await run(c, req('GET', '/slow')).done;
    assert.equal(o.error?.kind, 'headers_timeout');
    assert.equal(o.error?.status, 504);
    assert.deepEqual(o.events, ['error headers_timeout']);
    assert.equal(c.inFlight, 0);
  });

  it('fails with idle_timeout when the body stalls', async () => {
    const { origin } = await httpServer((_rq, rs) => {
      rs.writeHead(200, { 'content-length': 100 });
      rs.write('x'.repeat(10));
    });
    const o = await run(client(origin, { idleMs: 150 }), req('GET', '/stall')).done;
    assert.deepEqual(o.events, ['start', 'data', 'error idle_timeout']);
  });

  it('reports connect for a refused connection', async () => {
    const port = await freePort();
    const o = await run(client(`http://127.0.0.1:${port}`), req('GET', '/')).done;
    assert.equal(o.error?.kind, 'connect');
    assert.equal(o.error?.status, 502);
  });

  it('reports connect when the TLS handshake outlasts the connect timeout', async () => {
    const sockets: net.Socket[] = [];
    const { server, port } = await listen(net.createServer((socket) => sockets.push(socket))); // never answers
    server.on('close', () => {
      for (const s of sockets) s.destroy();
    });
    const o = await run(client(`https://127.0.0.1:${port}`, { connectMs: 150 }), req('GET', '/')).done;
    assert.equal(o.error?.kind, 'connect');
    for (const s of sockets) s.destroy();
  });

  it('reports protocol for a response that is not HTTP/1.1', async () => {
    const { port } = await listen(
      net.createServer((socket) => socket.once('data', () => socket.end('HTTP/1.1 abc nonsense\r\n\r\n'))),
    );
    const o = await run(client(`http://127.0.0.1:${port}`), req('GET', '/')).done;
    assert.equal(o.error?.kind, 'protocol');
  });

  it('reports reset when the backend drops the connection mid-response', async () => {
    const { origin } = await httpServer((rq, rs) => {
      if (rq.url === '/before') return rq.socket.destroy();
      if (rq.url === '/length') rs.writeHead(200, { 'content-length': 1000 });
      else rs.writeHead(200);
      rs.write('x'.repeat(100));
      setTimeout(() => rq.socket.destroy(), 50);
    });
    const c = client(origin);
    for (const path of ['/chunked', '/length']) {
      const o = await run(c, req('GET', path)).done;
      assert.equal(o.error?.kind, 'reset', path);
      assert.ok(!o.events.includes('complete'), path);
      assert.equal(o.events[0], 'start', path);
    }
    const before = await run(c, req('GET', '/before')).done;
    assert.deepEqual(before.events, ['error reset']);
    assert.equal(c.inFlight, 0);
  });

  it('abort() stops the exchange silently and the backend sees it go away', async () => {
    let serverSawClose!: () => void;
    const closed = new Promise<void>((resolve) => (serverSawClose = resolve));
    const { origin } = await httpServer((_rq, rs) => {
      rs.writeHead(200);
      rs.write('first');
      rs.on('close', () => {
        if (!rs.writableFinished) serverSawClose();
      });
    });
    const c = client(origin);
    const { exchange, outcome } = run(c, req('GET', '/'));
    while (outcome.chunks.length === 0) await sleep(5);
    exchange.abort();
    assert.equal(c.inFlight, 0);
    await closed;
    await sleep(50);
    assert.deepEqual(outcome.events, ['start', 'data']);
  });

  it('abort() before the response and before connecting calls nothing back', async () => {
    const { origin } = await httpServer(() => {});
    const c = client(origin);
    const early = run(c, req('POST', '/', { hasBody: true }));
    early.exchange.abort();
    early.exchange.write(Buffer.from('ignored'));
    early.exchange.end();
    await sleep(100);
    assert.deepEqual(early.outcome.events, []);
    assert.equal(c.inFlight, 0);
  });

  it('reports request_rejected (not a backend fault) after dispatch() returns for an unsendable header', async () => {
    const { origin } = await httpServer((_rq, rs) => rs.end());
    const { outcome, done } = run(client(origin), req('GET', '/', { headers: [['x-bad', 'a\r\nb']] }));
    assert.deepEqual(outcome.events, [], 'no callback inside dispatch()');
    const error = (await done).error;
    assert.equal(error?.kind, 'request_rejected');
    assert.equal(error?.countsAgainstBackend, false);
  });

  it('speaks HTTPS to a backend trusted through tls.ca, and refuses it otherwise', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spooky-h1-'));
    tmpDirs.push(dir);
    const cert = generateSelfSigned(dir);
    const key = readFileSync(cert.keyFile, 'utf8');
    const ca = readFileSync(cert.certFile, 'utf8');
    const sni: Array<string | false | null> = [];
    const { server, port } = await listen(
      https.createServer({ key, cert: ca }, (rq, rs) => rs.end(`secure ${rq.url} ${rq.headers.host}`)),
    );
    server.on('secureConnection', (socket) => sni.push(socket.servername));
    const origin = `https://127.0.0.1:${port}`;
    // The certificate is checked against the origin (IP SAN), never the Host the client sent, and
    // requests for different authorities share connections (undici would reconnect on each change).
    const c = client(origin, {}, { ca });
    for (let i = 0; i < 8; i++) {
      const authority = i % 2 ? 'b.example' : 'a.example';
      const ok = await run(c, req('GET', '/tls', { authority })).done;
      assert.equal(ok.error, null);
      assert.equal(ok.body.toString(), `secure /tls ${authority}`);
    }
    assert.ok(sni.length <= 2, `8 requests used ${sni.length} connections`);
    assert.ok(sni.every((name) => name === false));
    const named = new H1Client({ origin, timeouts: TIMEOUTS, tls: { ca, servername: 'localhost' } });
    clients.push(named);
    sni.length = 0;
    assert.equal((await run(named, req('GET', '/sni')).done).error, null);
    assert.deepEqual(sni, ['localhost']);
    const refused = await run(client(origin), req('GET', '/tls')).done;
    assert.equal(refused.error?.kind, 'connect');
    assert.equal(refused.events.length, 1);
  });

  it('close() waits for the in-flight exchange', async () => {
    const { origin } = await httpServer((_rq, rs) => {
      setTimeout(() => rs.end('late'), 200);
    });
    const c = client(origin);
    const { done } = run(c, req('GET', '/'));
    await sleep(20);
    const order: string[] = [];
    void done.then(() => order.push('complete'));
    await c.close().then(() => order.push('closed'));
    const o = await done;
    assert.equal(o.body.toString(), 'late');
    assert.deepEqual(order, ['complete', 'closed']);
    assert.equal(c.inFlight, 0);
    const late = run(c, req('GET', '/'));
    assert.deepEqual(late.outcome.events, []);
    assert.equal((await late.done).error?.kind, 'connect', 'nothing reaches the backend after close()');
  });

  it('destroy() fails in-flight exchanges with reset', async () => {
    const { origin } = await httpServer((_rq, rs) => {
      rs.writeHead(200);
      rs.write('partial');
    });
    const c = client(origin);
    const a = run(c, req('GET', '/a'));
    const b = run(c, req('GET', '/b'));
    while (a.outcome.chunks.length === 0 || b.outcome.chunks.length === 0) await sleep(5);
    c.destroy();
    assert.deepEqual((await a.done).events, ['start', 'data', 'error reset']);
    assert.deepEqual((await b.done).events, ['start', 'data', 'error reset']);
    assert.equal(c.inFlight, 0);
  });
});
