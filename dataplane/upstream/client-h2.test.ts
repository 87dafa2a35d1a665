import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { H2Client } from './client-h2.js';
import type { Fields, UpstreamExchange, UpstreamRequest } from './dispatcher.js';
import type { UpstreamError } from './errors.js';

const TIMEOUTS = { connectMs: 2000, headersMs: 5000, idleMs: 5000 };

interface Outcome {
  status: number;
  body: string;
  trailers: Fields | null;
  error: UpstreamError | null;
}

function dispatch(c: H2Client, request: UpstreamRequest): { exchange: UpstreamExchange; done: Promise<Outcome> } {
  const o: Outcome = { status: 0, body: '', trailers: null, error: null };
  let settle!: (o: Outcome) => void;
  const done = new Promise<Outcome>((resolve) => (settle = resolve));
  const exchange = c.dispatch(request, {
    onInformational() {},
    onResponseStart(status) {
      o.status = status;
    },
    onData(chunk) {
      o.body += Buffer.from(chunk).toString();
      return true;
    },
    onComplete(trailers) {
      o.trailers = trailers;
      settle(o);
    },
    onError(error) {
      o.error = error;
      settle(o);
    },
  });
  return { exchange, done };
}

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
