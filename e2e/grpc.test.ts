/**
 * Issue #13, item 6: gRPC through Spooky, end to end, with a real `@grpc/grpc-js` server as the
 * backend (h2c). Over the TCP listener (HTTP/2 over TLS) a real grpc-js client makes unary,
 * server-streaming, client-streaming and bidi calls, gets error statuses (a trailers-only NOT_FOUND
 * with trailing metadata, and a status in trailers after messages), and cancels: a deadline and an
 * explicit cancel reach the backend as a cancelled call. A trailers-only response (HEADERS with
 * END_STREAM) used to go out without END_STREAM and grpc-js reported "Call ended without gRPC
 * status". Over HTTP/3, Spooky's own client builds the gRPC frames by hand and reads grpc-status
 * from the trailers, or from the response HEADERS of a trailers-only response followed by FIN.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type ClientResponse, H3ClientSession } from '../dataplane/h3/client.js';
import { type EchoBackend, grpcFrame, grpcMessages, path, startEchoBackend } from './support/grpc-echo.js';
import { dataplaneConfig, devCert, type RunningDataplane, startDataplane } from './support/harness.js';

const HOST = 'grpc.example';
const raw = (b: Buffer): Buffer => b;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `cond` holds, up to `ms`. */
async function eventually(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!cond() && performance.now() < deadline) await sleep(20);
  return cond();
}

let backend: EchoBackend;
let dp: RunningDataplane;

before(async () => {
  backend = await startEchoBackend();
  dp = await startDataplane(
    dataplaneConfig(`  grpc:\n    route: { host: ${HOST} }\n    backends: [{ id: g, address: "${backend.origin}" }]\n`),
  );
});

after(async () => {
  await dp?.stop();
  await backend?.close();
});

describe('gRPC through the TCP listener with a grpc-js client', () => {
  let client: grpc.Client;

  before(async () => {
    client = new grpc.Client(`127.0.0.1:${dp.port}`, grpc.credentials.createSsl(readFileSync(devCert().certFile)), {
      'grpc.ssl_target_name_override': 'localhost',
      'grpc.default_authority': HOST,
    });
    await new Promise<void>((resolve, reject) =>
      client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())),
    );
  });

  after(() => client?.close());

  type UnaryResult = { err: grpc.ServiceError | null; reply?: string };

  function unary(method: string, request: string, options: grpc.CallOptions = {}): Promise<UnaryResult> {
    return new Promise((resolve) => {
      client.makeUnaryRequest(
        path(method),
        raw,
        raw,
        Buffer.from(request),
        new grpc.Metadata(),
        options,
        (err, reply) => resolve({ err, reply: reply?.toString() }),
      );
    });
  }

  /** A server-streaming call: the messages received and how it ended. */
  function serverStream(method: string, request: string): Promise<{ messages: string[]; status: grpc.StatusObject }> {
    return new Promise((resolve) => {
      const call = client.makeServerStreamRequest(path(method), raw, raw, Buffer.from(request), new grpc.Metadata(), {
        deadline: Date.now() + 10_000,
      });
      const messages: string[] = [];
      call.on('data', (m: Buffer) => messages.push(m.toString()));
      call.on('error', () => {}); // the status below says it
      call.on('status', (status: grpc.StatusObject) => resolve({ messages, status }));
    });
  }

  it('answers a unary call', async () => {
    const r = await unary('Unary', 'spooky', { deadline: Date.now() + 10_000 });
    assert.equal(r.err, null);
    assert.equal(r.reply, 'hello spooky');
  });

  it('relays a trailers-only NOT_FOUND with its message and trailing metadata', async () => {
    const r = await unary('Unary', 'missing', { deadline: Date.now() + 10_000 });
    assert.ok(r.err, 'the call must fail');
    assert.equal(r.err.code, grpc.status.NOT_FOUND, `${r.err.code}: ${r.err.details}`);
    assert.equal(r.err.details, 'no such key: missing');
    assert.deepEqual(r.err.metadata.get('x-missing-key'), ['missing']);
  });

  it('streams server messages, then the status from the trailers', async () => {
    const ok = await serverStream('Count', '5');
    assert.deepEqual(ok.messages, ['#1', '#2', '#3', '#4', '#5']);
    assert.equal(ok.status.code, grpc.status.OK, ok.status.details);
    const failed = await serverStream('Count', '2!');
    assert.deepEqual(failed.messages, ['#1', '#2']);
    assert.equal(failed.status.code, grpc.status.RESOURCE_EXHAUSTED, failed.status.details);
    assert.equal(failed.status.details, 'quota spent');
  });

  it('streams client messages into one reply', async () => {
    const reply = await new Promise<UnaryResult>((resolve) => {
      const options = { deadline: Date.now() + 10_000 };
      const call = client.makeClientStreamRequest(path('Join'), raw, raw, new grpc.Metadata(), options, (err, r) =>
        resolve({ err, reply: r?.toString() }),
      );
      for (const m of ['a', 'b', 'c']) call.write(Buffer.from(m));
      call.end();
    });
    assert.equal(reply.err, null);
    assert.equal(reply.reply, 'a+b+c');
  });

  it('streams both ways, each reply before the next request (bidi)', async () => {
    const call = client.makeBidiStreamRequest(path('Shout'), raw, raw, new grpc.Metadata(), {
      deadline: Date.now() + 20_000,
    });
    const replies: string[] = [];
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    call.on('error', () => {});
    call.on('data', (m: Buffer) => replies.push(m.toString()));
    for (const [i, word] of ['boo', 'eek', 'ooh'].entries()) {
      call.write(Buffer.from(word));
      // The reply to each message arrives while the request stream is still open.
      assert.ok(await eventually(() => replies.length === i + 1, 5000), `reply ${i + 1}: ${replies.join(',')}`);
    }
    call.end();
    assert.equal((await status).code, grpc.status.OK);
    assert.deepEqual(replies, ['BOO', 'EEK', 'OOH']);
  });

  it('ends a call past its deadline with DEADLINE_EXCEEDED, and the backend sees it cancelled', async () => {
    const started = performance.now();
    const r = await unary('Slow', 'deadline', { deadline: Date.now() + 300 });
    assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED, `${r.err?.code}: ${r.err?.details}`);
    assert.ok(performance.now() - started < 5000, 'the deadline ends the call, not the slow handler');
    assert.ok(await eventually(() => backend.slowCancelled.has('deadline'), 5000), 'backend never saw the cancel');
  });

  it('carries a client cancel to the backend (nothing else tells it)', async () => {
    let result: grpc.ServiceError | null | undefined;
    const call = client.makeUnaryRequest(path('Slow'), raw, raw, Buffer.from('cancel'), (err) => {
      result = err;
    });
    assert.ok(await eventually(() => backend.slowStarted.has('cancel'), 5000), 'the call never reached the backend');
    call.cancel();
    assert.ok(await eventually(() => result !== undefined, 5000));
    assert.equal(result?.code, grpc.status.CANCELLED);
    assert.ok(await eventually(() => backend.slowCancelled.has('cancel'), 5000), 'backend never saw the cancel');
  });
});

describe('gRPC through HTTP/3 with Spooky’s client (frames built by hand)', () => {
  let h3: H3ClientSession;

  before(async () => {
    h3 = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
  });

  after(async () => {
    await h3?.close();
  });

  const field = (fields: ReadonlyArray<readonly [string, string]>, name: string) =>
    fields.find((f) => f[0] === name)?.[1];

  function call(method: string, messages: string[], headers: Array<[string, string]> = []): Promise<ClientResponse> {
    return h3.fetch({
      method: 'POST',
      authority: HOST,
      path: path(method),
      headers: [['content-type', 'application/grpc'], ['te', 'trailers'], ...headers],
      body: Buffer.concat(messages.map(grpcFrame)),
    });
  }

  /** grpc-status and grpc-message from the trailers, or from the headers of a trailers-only response. */
  function status(r: ClientResponse): { code: number; message: string | undefined; trailersOnly: boolean } {
    const trailersOnly = r.trailers === null;
    const from = r.trailers ?? r.headers;
    const code = field(from, 'grpc-status');
    assert.ok(code !== undefined, `no grpc-status (headers ${JSON.stringify(r.headers)})`);
    const message = field(from, 'grpc-message');
    return { code: Number(code), message: message && decodeURIComponent(message), trailersOnly };
  }

  it('answers a unary call with the status in trailers', async () => {
    const r = await call('Unary', ['h3']);
    assert.equal(r.status, 200);
    assert.equal(field(r.headers, 'content-type'), 'application/grpc+proto');
    assert.deepEqual(grpcMessages(r.body), ['hello h3']);
    assert.deepEqual(status(r), { code: grpc.status.OK, message: 'OK', trailersOnly: false });
  });

  it('relays a trailers-only NOT_FOUND as one HEADERS frame and FIN', async () => {
    const r = await call('Unary', ['missing']);
    assert.equal(r.status, 200);
    assert.equal(r.bodyBytes, 0);
    assert.deepEqual(status(r), { code: grpc.status.NOT_FOUND, message: 'no such key: missing', trailersOnly: true });
    assert.equal(field(r.headers, 'x-missing-key'), 'missing');
  });

  it('streams server messages, and a status after them', async () => {
    const ok = await call('Count', ['3']);
    assert.deepEqual(grpcMessages(ok.body), ['#1', '#2', '#3']);
    assert.equal(status(ok).code, grpc.status.OK);
    const failed = await call('Count', ['2!']);
    assert.deepEqual(grpcMessages(failed.body), ['#1', '#2']);
    assert.deepEqual(status(failed), {
      code: grpc.status.RESOURCE_EXHAUSTED,
      message: 'quota spent',
      trailersOnly: false,
    });
  });

  it('takes several client messages in one request body', async () => {
    const r = await call('Join', ['x', 'y', 'z']);
    assert.deepEqual(grpcMessages(r.body), ['x+y+z']);
    assert.equal(status(r).code, grpc.status.OK);
  });

  it('relays the backend’s DEADLINE_EXCEEDED for a grpc-timeout (trailers-only)', async () => {
    const r = await call('Slow', ['h3-deadline'], [['grpc-timeout', '200m']]);
    assert.equal(r.status, 200);
    assert.deepEqual(status(r), {
      code: grpc.status.DEADLINE_EXCEEDED,
      message: 'Deadline exceeded',
      trailersOnly: true,
    });
    assert.ok(await eventually(() => backend.slowCancelled.has('h3-deadline'), 5000));
  });
});
