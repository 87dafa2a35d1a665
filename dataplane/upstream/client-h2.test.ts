import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { H2Client } from './client-h2.js';
import type { UpstreamRequest } from './dispatcher.js';
import { recordExchange, streamLimitedBackend } from './h2/test-backend.js';

const TIMEOUTS = { connectMs: 2000, headersMs: 5000, idleMs: 5000 };

const dispatch = recordExchange;

describe('H2Client', () => {
  let server: http2.Http2Server;
  let origin: string;
  let client: H2Client;

  before(async () => {
    server = http2.createServer();
    server.on('stream', (stream, headers) => {
      if (headers[':path'] === '/not-modified') {
        // A 304 names the length of the representation it did not send.
        stream.respond({ ':status': 304, 'content-length': '1234', etag: '"v1"' }, { endStream: true });
        return;
      }
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        stream.respond({ ':status': 200 });
        stream.end(`${headers[':method']} ${Buffer.concat(chunks).toString()}`);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    client = new H2Client({ origin, timeouts: TIMEOUTS });
  });

  after(async () => {
    client.destroy();
    await new Promise((r) => server.close(r));
  });

  it('forwards a request with a body and reads the response', async () => {
    const { exchange, done } = dispatch(client, {
      method: 'POST',
      path: '/',
      authority: 'b.test',
      headers: [],
      hasBody: true,
    });
    exchange.write(Buffer.from('boo'));
    exchange.end();
    const o = await done;
    assert.equal(o.error, null);
    assert.equal(o.status, 200);
    assert.equal(o.body, 'POST boo');
  });

  it('a 304 with the content-length of the representation it did not send is complete, not cut short', async () => {
    const { done } = dispatch(client, {
      method: 'GET',
      path: '/not-modified',
      authority: 'b.test',
      headers: [['if-none-match', '"v1"']],
      hasBody: false,
    });
    const o = await done;
    assert.equal(o.error, null, String(o.error));
    assert.equal(o.status, 304);
    assert.equal(o.body, '');
  });

  it('a header node refuses to encode fails the exchange as request_rejected; writing and ending it meanwhile is harmless', async () => {
    // http2.request() throws synchronously here; the caller does not know yet and sends the body.
    const { exchange, done } = dispatch(client, {
      method: 'POST',
      path: '/',
      authority: 'b.test',
      headers: [['connection', 'close']],
      hasBody: true,
    });
    assert.doesNotThrow(() => {
      exchange.write(Buffer.from('body'));
      exchange.pause();
      exchange.resume();
      exchange.end([['x-trailer', 'v']]);
    });
    const o = await done;
    assert.equal(o.error?.kind, 'request_rejected', String(o.error));
    assert.equal(client.inFlight, 0, 'the exchange is no longer counted');
    // The session is unharmed: the next request is served.
    const next = dispatch(client, { method: 'GET', path: '/', authority: 'b.test', headers: [], hasBody: false });
    assert.equal((await next.done).status, 200);
  });
});

const get = (path: string): UpstreamRequest => ({
  method: 'GET',
  path,
  authority: 'b.test',
  headers: [],
  hasBody: false,
});

describe('H2Client session lifecycle (h2c on loopback)', () => {
  let server: http2.Http2Server;
  let origin: string;
  /** Sessions the server accepted: how many connections the client opened. */
  let sessions = 0;
  /** How each server-side stream ended (its RST_STREAM code, 0 for a clean close). */
  const closedWith = new Map<string, number>();
  const clients: H2Client[] = [];
  const newClient = (timeouts: Partial<typeof TIMEOUTS> = {}, at = origin): H2Client => {
    const c = new H2Client({ origin: at, timeouts: { ...TIMEOUTS, ...timeouts } });
    clients.push(c);
    return c;
  };

  before(async () => {
    server = http2.createServer();
    server.on('session', () => sessions++);
    server.on('stream', (stream, headers) => {
      const path = String(headers[':path']);
      stream.on('close', () => closedWith.set(path, stream.rstCode ?? 0));
      stream.on('error', () => {});
      switch (path) {
        case '/goaway':
          // No new streams on this session; this one is still answered (its id is the last one).
          stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR, stream.id);
          stream.respond({ ':status': 200 });
          stream.end('last');
          return;
        case '/destroy-session':
          stream.session?.destroy();
          return;
        case '/silent':
          return; // never answers
        case '/stall-body':
          stream.respond({ ':status': 200 });
          stream.write('part');
          return; // and nothing more
        case '/late':
          setTimeout(() => {
            if (stream.closed) return;
            stream.respond({ ':status': 200 });
            stream.end('late');
          }, 200);
          return;
        case '/reset-mid-body':
          stream.respond({ ':status': 200 });
          // destroy() resets at once; close(code) would first end the stream cleanly (END_STREAM).
          stream.write('part', () => stream.destroy(new Error('backend crashed')));
          return;
        case '/short-body':
          stream.respond({ ':status': 200, 'content-length': '100' });
          stream.end('only this');
          return;
        case '/refuse':
          stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
          return;
        case '/protocol-error':
          stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
          return;
        case '/trailers':
          stream.additionalHeaders({ ':status': 103, link: '</a.css>' });
          stream.respond({ ':status': 200 }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'ok' }));
          stream.end('body');
          return;
        case '/trailers-only':
          stream.respond({ ':status': 200, 'grpc-status': '5' }, { endStream: true });
          return;
        case '/echo-trailers': {
          stream.on('trailers', (t) => {
            stream.respond({ ':status': 200 });
            stream.end(`trailer ${t['x-checksum']}`);
          });
          stream.resume();
          return;
        }
        default:
          stream.respond({ ':status': 200 });
          stream.end('ok');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    for (const c of clients) c.destroy();
    await new Promise((r) => server.close(r));
  });

  it('reuses one session for sequential requests', async () => {
    const c = newClient();
    const before = sessions;
    for (let i = 0; i < 3; i++) assert.equal((await dispatch(c, get('/')).done).status, 200);
    assert.equal(sessions - before, 1);
  });

  it('after a GOAWAY the in-flight request completes and the next one opens a new session', async () => {
    const c = newClient();
    assert.equal((await dispatch(c, get('/')).done).status, 200);
    const before = sessions;
    const last = await dispatch(c, get('/goaway')).done;
    assert.equal(last.error, null, String(last.error));
    assert.equal(last.body, 'last');
    const next = await dispatch(c, get('/')).done;
    assert.equal(next.error, null, String(next.error));
    assert.equal(sessions - before, 1, 'one new session');
  });

  it('a session the server destroyed fails its request as reset, and is replaced', async () => {
    const c = newClient();
    const o = await dispatch(c, get('/destroy-session')).done;
    assert.equal(o.error?.kind, 'reset', String(o.error));
    assert.equal(c.inFlight, 0);
    const before = sessions;
    assert.equal((await dispatch(c, get('/')).done).status, 200);
    assert.equal(sessions - before, 1);
  });

  it('connect timeout: a TLS handshake that never completes fails as connect', async () => {
    // A TCP listener that accepts and says nothing: the TLS session never connects.
    const sockets: net.Socket[] = [];
    const mute = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    try {
      const at = `https://127.0.0.1:${(mute.address() as AddressInfo).port}`;
      const c = newClient({ connectMs: 100 }, at);
      const o = await dispatch(c, get('/')).done;
      assert.equal(o.error?.kind, 'connect', String(o.error));
      assert.match(o.error?.message ?? '', /timed out after 100 ms/);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => mute.close(r));
    }
  });

  it('headers timeout: no response head in time fails as headers_timeout and cancels the stream', async () => {
    const c = newClient({ headersMs: 100 });
    const o = await dispatch(c, get('/silent')).done;
    assert.equal(o.error?.kind, 'headers_timeout', String(o.error));
    for (let i = 0; i < 100 && !closedWith.has('/silent'); i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(closedWith.get('/silent'), http2.constants.NGHTTP2_CANCEL);
  });

  it('idle timeout: a body that stalls after the head fails as idle_timeout', async () => {
    const c = newClient({ idleMs: 100 });
    const o = await dispatch(c, get('/stall-body')).done;
    assert.equal(o.error?.kind, 'idle_timeout', String(o.error));
    assert.equal(o.status, 200);
    assert.equal(o.body, 'part');
  });

  it('the idle timeout does not run before the response head (the headers timeout does)', async () => {
    const c = newClient({ idleMs: 30, headersMs: 2000 });
    const o = await dispatch(c, get('/late')).done;
    assert.equal(o.error, null, String(o.error));
    assert.equal(o.body, 'late');
  });

  it('a reset mid-body, or a body shorter than its content-length, fails as reset', async () => {
    const c = newClient();
    const reset = await dispatch(c, get('/reset-mid-body')).done;
    assert.equal(reset.error?.kind, 'reset', String(reset.error));
    assert.equal(reset.status, 200);
    const short = await dispatch(c, get('/short-body')).done;
    assert.equal(short.error?.kind, 'reset', String(short.error));
    assert.equal(c.inFlight, 0);
  });

  it('REFUSED_STREAM fails as refused; PROTOCOL_ERROR before a response as request_rejected', async () => {
    const c = newClient();
    const refused = await dispatch(c, get('/refuse')).done;
    assert.equal(refused.error?.kind, 'refused', String(refused.error));
    const rejected = await dispatch(c, get('/protocol-error')).done;
    assert.equal(rejected.error?.kind, 'request_rejected', String(rejected.error));
    // Neither is the session's fault: it keeps serving.
    const before = sessions;
    assert.equal((await dispatch(c, get('/')).done).status, 200);
    assert.equal(sessions, before);
  });

  it('response trailers and interim responses reach the handler; a trailers-only answer ends at its head', async () => {
    const c = newClient();
    const o = await dispatch(c, get('/trailers')).done;
    assert.equal(o.error, null, String(o.error));
    assert.deepEqual(o.informational, [103]);
    assert.equal(o.body, 'body');
    assert.equal(o.endStream, false);
    assert.deepEqual(o.trailers, [
      ['grpc-status', '0'],
      ['grpc-message', 'ok'],
    ]);
    const only = await dispatch(c, get('/trailers-only')).done;
    assert.equal(only.error, null, String(only.error));
    assert.equal(only.endStream, true);
  });

  it('request trailers are sent after the body', async () => {
    const c = newClient({ headersMs: 1000 });
    const { exchange, done } = dispatch(c, {
      method: 'POST',
      path: '/echo-trailers',
      authority: 'b.test',
      headers: [['te', 'trailers']],
      hasBody: true,
    });
    exchange.write(Buffer.from('data'));
    exchange.end([['x-checksum', 'abc']]);
    const o = await done;
    assert.equal(o.error, null, String(o.error));
    assert.equal(o.body, 'trailer abc');
  });

  it('request trailers node refuses to encode fail the exchange as request_rejected (no throw)', async () => {
    const c = newClient();
    const { exchange, done } = dispatch(c, {
      method: 'POST',
      path: '/echo-trailers',
      authority: 'b.test',
      headers: [],
      hasBody: true,
    });
    exchange.write(Buffer.from('data'));
    exchange.end([['connection', 'close']]);
    const o = await done;
    assert.equal(o.error?.kind, 'request_rejected', String(o.error));
    assert.equal(c.inFlight, 0);
  });
});

describe("H2Client keeps to the backend's SETTINGS_MAX_CONCURRENT_STREAMS (h2c on loopback)", () => {
  const limitedBackend = streamLimitedBackend;

  it('spreads concurrent requests over more sessions instead of sending streams the backend would refuse', async () => {
    const b = await limitedBackend(3, 50);
    // Let the first session learn the limit (SETTINGS), as a warm upstream session has.
    const c = new H2Client({ origin: b.origin, timeouts: TIMEOUTS });
    try {
      assert.equal((await dispatch(c, get('/')).done).status, 200);
      const outcomes = await Promise.all(Array.from({ length: 20 }, () => dispatch(c, get('/')).done));
      assert.deepEqual(
        outcomes.map((o) => o.error?.message ?? o.status),
        outcomes.map(() => 200),
      );
      assert.ok(b.stats.peakPerSession <= 3, `peak ${b.stats.peakPerSession} streams on one session`);
      assert.ok(b.stats.sessions >= 7, `${b.stats.sessions} sessions for 20 concurrent streams at 3 each`);
      assert.equal(c.inFlight, 0);
    } finally {
      c.destroy();
      await b.close();
    }
  });

  it('past the session cap, streams wait for room on a session and all complete', async () => {
    const b = await limitedBackend(1, 20);
    const c = new H2Client({ origin: b.origin, timeouts: TIMEOUTS });
    try {
      assert.equal((await dispatch(c, get('/')).done).status, 200);
      const outcomes = await Promise.all(Array.from({ length: 80 }, () => dispatch(c, get('/')).done));
      assert.equal(
        outcomes.filter((o) => o.status === 200).length,
        80,
        JSON.stringify(outcomes.find((o) => o.error)?.error?.message),
      );
      assert.equal(b.stats.peakPerSession, 1);
      assert.ok(c.sessionCount <= 32, `${c.sessionCount} sessions`);
      assert.ok(b.stats.sessions <= 33, `${b.stats.sessions} sessions opened`);
    } finally {
      c.destroy();
      await b.close();
    }
  });

  it('a cold burst waits on the first session until the backend names its limit; then nothing is refused', async () => {
    const b = await limitedBackend(5, 20);
    const c = new H2Client({ origin: b.origin, timeouts: TIMEOUTS });
    try {
      // Before the backend's SETTINGS, nghttp2 sends up to 100 streams on the first session (RFC 9113
      // §5.1.2's recommended minimum) and a backend allowing 5 refuses the rest of those 100; the
      // others wait instead of going out on new sessions that would each be refused 95 more.
      const cold = await Promise.all(Array.from({ length: 300 }, () => dispatch(c, get('/')).done));
      const refused = cold.filter((o) => o.error?.kind === 'refused').length;
      assert.equal(cold.filter((o) => o.status === 200).length + refused, 300);
      assert.ok(refused <= 95, `${refused} refused`);
      const warm = await Promise.all(Array.from({ length: 300 }, () => dispatch(c, get('/')).done));
      assert.equal(warm.filter((o) => o.status === 200).length, 300, warm.find((o) => o.error)?.error?.message);
      assert.ok(b.stats.peakPerSession <= 5, `peak ${b.stats.peakPerSession}`);
    } finally {
      c.destroy();
      await b.close();
    }
  });
});
