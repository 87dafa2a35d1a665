import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { H1Client } from './client-h1.js';
import { H2Client } from './client-h2.js';
import type { Dispatcher, UpstreamTimeouts } from './dispatcher.js';
import { classifyUpstreamFailure, type UpstreamError, type UpstreamErrorKind } from './errors.js';

const TIMEOUTS: UpstreamTimeouts = { connectMs: 2000, headersMs: 5000, idleMs: 5000 };
const servers: net.Server[] = [];
const sockets = new Set<net.Socket>();
const clients: Dispatcher[] = [];

after(async () => {
  for (const c of clients) c.destroy();
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

/** A raw TCP backend on 127.0.0.1 that does `onSocket` with each connection. */
async function backend(onSocket: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    onSocket(socket);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The error kind one GET through `client` ends with, or `complete` when it does not fail. */
function failureKind(client: Dispatcher): Promise<UpstreamErrorKind | 'complete'> {
  clients.push(client);
  return new Promise((resolve) => {
    client.dispatch(
      { method: 'GET', path: '/', authority: 'backend.test', headers: [], hasBody: false },
      {
        onInformational() {},
        onResponseStart() {},
        onData: () => true,
        onComplete: () => resolve('complete'),
        onError: (e: UpstreamError) => resolve(e.kind),
      },
    );
  });
}

async function bothClients(origin: string, timeouts: Partial<UpstreamTimeouts> = {}) {
  const options = { origin, timeouts: { ...TIMEOUTS, ...timeouts } };
  return {
    http1: await failureKind(new H1Client(options)),
    h2: await failureKind(new H2Client(options)),
  };
}

describe('one classifier for both upstream clients', () => {
  it('a refused connection is connect for HTTP/1.1 and HTTP/2', async () => {
    const port = await closedPort();
    assert.deepEqual(await bothClients(`http://127.0.0.1:${port}`), { http1: 'connect', h2: 'connect' });
  });

  it('a TLS handshake the backend resets is connect (nothing reached it) for both', async () => {
    const port = await backend((socket) => socket.resetAndDestroy());
    assert.deepEqual(await bothClients(`https://127.0.0.1:${port}`), { http1: 'connect', h2: 'connect' });
  });

  it('a TLS handshake that outlasts the connect timeout is connect for both', async () => {
    const port = await backend(() => {}); // accepts, never answers
    assert.deepEqual(await bothClients(`https://127.0.0.1:${port}`, { connectMs: 150 }), {
      http1: 'connect',
      h2: 'connect',
    });
  });

  it('a connection reset once the request was sent is reset for both', async () => {
    const port = await backend((socket) => socket.once('data', () => socket.resetAndDestroy()));
    assert.deepEqual(await bothClients(`http://127.0.0.1:${port}`), { http1: 'reset', h2: 'reset' });
  });
});

describe('classifyUpstreamFailure', () => {
  const origin = 'http://10.0.0.1:8080';
  const err = (code: string, message = code) => Object.assign(new Error(message), { code });

  it('names DNS and certificate failures connect whatever the connection state', () => {
    for (const code of ['EAI_AGAIN', 'ENOTFOUND', 'ERR_SSL_WRONG_VERSION_NUMBER', 'SELF_SIGNED_CERT_IN_CHAIN']) {
      assert.equal(classifyUpstreamFailure(err(code), origin, true).kind, 'connect', code);
    }
  });

  it('keeps resets, unsendable requests and unparsable responses apart', () => {
    assert.equal(classifyUpstreamFailure(err('ECONNRESET'), origin, true).kind, 'reset');
    assert.equal(classifyUpstreamFailure(err('ECONNRESET'), origin, false).kind, 'connect');
    assert.equal(classifyUpstreamFailure(err('UND_ERR_NOT_SUPPORTED'), origin, true).kind, 'request_rejected');
    assert.equal(classifyUpstreamFailure(err('HPE_INVALID_STATUS'), origin, true).kind, 'protocol');
  });
});
