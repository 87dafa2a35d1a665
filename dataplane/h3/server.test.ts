// The HTTP/3 server's request-stream state machine (RFC 9114 §4.1) on an in-memory QUIC
// connection: frame orders, limits, resets both ways, and the drain.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClientRequest, ClientStream, Fields, RequestHandler } from '../proxy/client-stream.js';
import { CANCELLED_STREAMS_BURST } from '../resilience/cancelled-streams.js';
import { H3 } from './errors.js';
import { encodeFrame, encodeFrameHeader, Frame } from './frames.js';
import { dataFrame, decodeHeaders, headersFrame, MemoryTransport } from './memory-transport.js';
import { H3ServerSession, type H3ServerStream, type ServerSessionOptions } from './server.js';
import { MAX_STREAMS_AWAITING_HEADERS } from './stream-guard.js';

const GET: Fields = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':authority', 'example.com'],
  [':path', '/'],
];
const post = (contentLength?: number): Fields => [
  [':method', 'POST'],
  [':scheme', 'https'],
  [':authority', 'example.com'],
  [':path', '/upload'],
  ...(contentLength === undefined ? [] : ([['content-length', String(contentLength)]] as Fields)),
];
/** A reserved (greasing) frame type, 0x1f * N + 0x21 (§7.2.8): must be ignored. */
const GREASE = encodeFrame(0x1f * 3 + 0x21, Buffer.from('ignore me'));
/** A type this implementation does not know (§9): must be ignored. */
const UNKNOWN = encodeFrame(0x3f, Buffer.from([1, 2, 3]));

interface Exchange {
  stream: H3ServerStream;
  request: ClientRequest;
  body: string;
  trailers: Fields | null | undefined;
  aborted: { code: number; reason: string } | null;
}

class Handler implements RequestHandler {
  readonly exchanges: Exchange[] = [];
  readonly rejected: Array<{ stream: ClientStream; status: number; reason: string }> = [];
  /** Answer rejections at once, as the forwarder does. */
  answer = true;

  onRequest(stream: ClientStream, request: ClientRequest): void {
    const ex: Exchange = { stream: stream as H3ServerStream, request, body: '', trailers: undefined, aborted: null };
    stream.onData = (c) => {
      ex.body += Buffer.from(c).toString();
    };
    stream.onEnd = (t) => {
      ex.trailers = t;
    };
    stream.onAbort = (code, reason) => {
      ex.aborted = { code, reason };
    };
    this.exchanges.push(ex);
  }

  onRejected(stream: ClientStream, status: number, reason: string): void {
    this.rejected.push({ stream, status, reason });
    if (this.answer) stream.respond(status, [], true);
  }
}

function setup(options: Partial<ServerSessionOptions> = {}) {
  const t = new MemoryTransport();
  const handler = new Handler();
  const session = new H3ServerSession(t, handler, {
    maxFieldSectionSize: 16384,
    maxHeaderCount: 100,
    requestHeaderTimeoutMs: 60_000,
    ...options,
  });
  session.onEstablished();
  return { t, handler, session };
}

/** Read through a call: `assert.equal(t.closed, null)` would narrow the field to null for TypeScript. */
const closeCode = (t: MemoryTransport): number | undefined => t.closed?.code;
const cat = (...parts: Uint8Array[]): Uint8Array => Buffer.concat(parts);
const status = (payload: Uint8Array): string | undefined => decodeHeaders(payload).find((f) => f[0] === ':status')?.[1];

test('HEADERS, DATA, FIN: dispatched once, body streamed, ended without trailers', () => {
  const { t, handler } = setup();
  t.deliver(0, cat(headersFrame(post(11)), dataFrame('hello '), dataFrame('world')), true);
  assert.equal(handler.exchanges.length, 1);
  const ex = handler.exchanges[0];
  assert.equal(ex.request.method, 'POST');
  assert.equal(ex.request.path, '/upload');
  assert.equal(ex.request.authority, 'example.com');
  assert.equal(ex.body, 'hello world');
  assert.equal(ex.trailers, null);
  assert.equal(ex.stream.earlyData, false);
  assert.equal(ex.stream.clientIp, '192.0.2.7');
  assert.equal(ex.stream.connectionKey, '0a0b0c0d');
  assert.equal(t.closed, null);
});

test('frames split at every byte boundary parse the same as whole', () => {
  const { t, handler } = setup();
  const bytes = cat(headersFrame(post()), dataFrame('abc'), headersFrame([['x-checksum', '1']]));
  for (let i = 0; i < bytes.length; i++) t.deliver(0, bytes.subarray(i, i + 1), i === bytes.length - 1);
  assert.equal(handler.exchanges.length, 1);
  assert.equal(handler.exchanges[0].body, 'abc');
  assert.deepEqual(handler.exchanges[0].trailers, [['x-checksum', '1']]);
});

test('trailers after the body reach onEnd; a pseudo-header in trailers is malformed (400)', () => {
  const ok = setup();
  ok.t.deliver(0, cat(headersFrame(post()), dataFrame('x'), headersFrame([['grpc-status', '0']])), true);
  assert.deepEqual(ok.handler.exchanges[0].trailers, [['grpc-status', '0']]);

  const bad = setup();
  bad.t.deliver(0, cat(headersFrame(post()), dataFrame('x'), headersFrame([[':path', '/evil']])), true);
  const ex = bad.handler.exchanges[0];
  assert.equal(ex.aborted?.code, H3.MESSAGE_ERROR);
  assert.equal(ex.trailers, undefined, 'no onEnd');
  assert.equal(bad.handler.rejected[0]?.status, 400);
});

test('unknown and reserved frame types are ignored before HEADERS, between DATA and after trailers', () => {
  const { t, handler } = setup();
  t.deliver(
    0,
    cat(
      GREASE,
      UNKNOWN,
      headersFrame(post()),
      GREASE,
      dataFrame('a'),
      UNKNOWN,
      dataFrame('b'),
      headersFrame([['t', '1']]),
      GREASE,
    ),
    true,
  );
  assert.equal(t.closed, null);
  assert.equal(handler.exchanges[0].body, 'ab');
  assert.deepEqual(handler.exchanges[0].trailers, [['t', '1']]);
});

test('DATA before HEADERS closes the connection with H3_FRAME_UNEXPECTED', () => {
  const { t, handler } = setup();
  t.deliver(0, cat(dataFrame('early'), headersFrame(GET)));
  assert.equal(closeCode(t), H3.FRAME_UNEXPECTED);
  assert.equal(handler.exchanges.length, 0);
});

test('DATA or HEADERS after trailers closes the connection with H3_FRAME_UNEXPECTED', () => {
  for (const late of [dataFrame('late'), headersFrame([['again', '1']])]) {
    const { t, handler } = setup();
    t.deliver(0, cat(headersFrame(post()), dataFrame('x'), headersFrame([['t', '1']]), late));
    assert.equal(closeCode(t), H3.FRAME_UNEXPECTED);
    assert.equal(handler.exchanges[0].trailers, undefined, 'the body never ended');
    const ex = handler.exchanges[0];
    assert.equal(ex.aborted, null, 'the exchange ends when quiche retires the connection');
    t.finishClose();
    assert.equal((ex.aborted as Exchange['aborted'])?.code, H3.REQUEST_CANCELLED);
  }
});

test('control-stream frames and reserved HTTP/2 types on a request stream are H3_FRAME_UNEXPECTED', () => {
  const types = [
    Frame.CANCEL_PUSH,
    Frame.SETTINGS,
    Frame.PUSH_PROMISE,
    Frame.GOAWAY,
    Frame.MAX_PUSH_ID,
    0x02,
    0x06,
    0x08,
    0x09,
  ];
  for (const type of types) {
    for (const afterHeaders of [false, true]) {
      const { t } = setup();
      const frame = encodeFrame(type, Uint8Array.of(0));
      t.deliver(0, afterHeaders ? cat(headersFrame(GET), frame) : frame);
      assert.equal(closeCode(t), H3.FRAME_UNEXPECTED, `type 0x${type.toString(16)} after headers: ${afterHeaders}`);
    }
  }
});

test('FIN before HEADERS resets only that stream with H3_REQUEST_INCOMPLETE', () => {
  const { t, handler, session } = setup();
  t.deliver(0, cat(GREASE), true);
  assert.equal(t.closed, null);
  // The request side already ended with the FIN: only the response side is reset.
  assert.deepEqual(t.shutdownsOf(0), ['write:0x10d']);
  assert.equal(handler.exchanges.length, 0);
  assert.equal(session.streams.size, 0);
  // The connection goes on serving other streams.
  t.deliver(4, headersFrame(GET), true);
  assert.equal(handler.exchanges.length, 1);
});

test('FIN inside a frame closes the connection with H3_FRAME_ERROR', () => {
  const { t } = setup();
  const data = dataFrame('0123456789');
  t.deliver(0, cat(headersFrame(post()), data.subarray(0, 5)), true);
  assert.equal(closeCode(t), H3.FRAME_ERROR);
});

test('content-length mismatch: 400 before the response head, stream reset after it', () => {
  // Longer than declared, detected on the DATA frame.
  const long = setup();
  long.t.deliver(0, cat(headersFrame(post(3)), dataFrame('four')));
  assert.equal(long.handler.exchanges[0].aborted?.code, H3.MESSAGE_ERROR);
  assert.equal(long.handler.exchanges[0].body, '', 'no byte past the declared length is forwarded');
  assert.equal(long.handler.rejected[0].status, 400);
  // Shorter than declared, detected at FIN, after the response head went out.
  const short = setup();
  short.t.deliver(0, cat(headersFrame(post(10)), dataFrame('four')));
  const ex = short.handler.exchanges[0];
  ex.stream.respond(200, []);
  short.t.deliver(0, new Uint8Array(0), true);
  assert.equal(ex.aborted?.code, H3.MESSAGE_ERROR);
  assert.equal(ex.trailers, undefined);
  assert.equal(short.handler.rejected.length, 0);
  assert.deepEqual(short.t.shutdownsOf(0), ['write:0x10e', 'read:0x10e']);
  assert.equal(short.t.closed, null);
});

test('a malformed request head is answered (not dispatched) and the rest of the request discarded', () => {
  const { t, handler, session } = setup();
  handler.answer = false;
  t.deliver(0, cat(headersFrame([...GET, ['connection', 'keep-alive']]), dataFrame('ignored')));
  assert.equal(handler.exchanges.length, 0);
  assert.equal(handler.rejected[0].status, 400);
  t.deliver(0, dataFrame('more ignored'));
  assert.equal(t.closed, null, 'body frames after the answer are not an error');
  // Once the answer is complete the server stops reading (STOP_SENDING H3_NO_ERROR, §4.1).
  handler.rejected[0].stream.respond(400, [], true);
  assert.deepEqual(t.shutdownsOf(0), ['read:0x100']);
  assert.equal(session.streams.size, 0);
});

test('limits: header count and decoded size answer 431; an oversized HEADERS frame resets the stream', () => {
  const count = setup({ maxHeaderCount: 5 });
  count.t.deliver(0, headersFrame([...GET, ['a', '1'], ['b', '2']]), true);
  assert.equal(count.handler.rejected[0]?.status, 431);
  const atLimit = setup({ maxHeaderCount: 5 });
  atLimit.t.deliver(0, headersFrame([...GET, ['a', '1']]), true);
  assert.equal(atLimit.handler.exchanges.length, 1);

  // Decoded size counts name + value + 32 per field (RFC 9114 §4.2.2): the frame fits, the section does not.
  const size = setup({ maxFieldSectionSize: 300 });
  const many: Fields = [...GET, ...Array.from({ length: 6 }, (_, i) => [`x-${i}`, 'v'] as const)];
  const frame = headersFrame(many);
  assert.ok(frame.length < 300);
  size.t.deliver(0, frame, true);
  assert.equal(size.handler.rejected[0]?.status, 431);

  const huge = setup({ maxFieldSectionSize: 300 });
  huge.t.deliver(0, headersFrame([...GET, ['x-big', 'v'.repeat(400)]]), true);
  assert.deepEqual(huge.t.shutdownsOf(0), ['write:0x107', 'read:0x107']);
  assert.equal(huge.t.closed, null);
  assert.equal(huge.handler.rejected.length, 0);
});

test('responses: interim and final HEADERS, DATA frames, FIN on END_OF_STREAM or trailers', () => {
  const { t, handler, session } = setup();
  t.deliver(0, headersFrame(GET), true);
  const s = handler.exchanges[0].stream;
  s.respond(103, [['link', '</a.css>']]);
  assert.equal(s.headersSent, false, 'an interim response is not the head');
  s.respond(200, [['content-type', 'text/plain']]);
  s.respond(500, []); // ignored: the final head went out
  assert.equal(s.write(Buffer.from('body')), true);
  assert.equal(s.write(new Uint8Array(0)), true);
  s.end();
  s.write(Buffer.from('late')); // ignored
  const frames = t.frames(0);
  assert.deepEqual(
    frames.map((f) => f.type),
    [Frame.HEADERS, Frame.HEADERS, Frame.DATA, 0x21],
  );
  assert.equal(status(frames[0].payload), '103');
  assert.deepEqual(decodeHeaders(frames[1].payload), [
    [':status', '200'],
    ['content-type', 'text/plain'],
  ]);
  assert.equal(Buffer.from(frames[2].payload).toString(), 'body');
  assert.equal(t.finished(0), true);
  assert.equal(s.responseEnded, true);
  assert.equal(session.streams.size, 0, 'request and response both complete');

  const tr = setup();
  tr.t.deliver(0, headersFrame(GET), true);
  const s2 = tr.handler.exchanges[0].stream;
  s2.respond(200, []);
  s2.end([['grpc-status', '0']]);
  const f2 = tr.t.frames(0);
  assert.deepEqual(decodeHeaders(f2[1].payload), [['grpc-status', '0']]);
  assert.equal(tr.t.finished(0), true);
});

test('backpressure: write reports the transport full, onDrain fires when it drains', () => {
  const { t, handler, session } = setup();
  t.deliver(0, headersFrame(GET), true);
  const s = handler.exchanges[0].stream;
  let drained = 0;
  s.onDrain = () => drained++;
  s.respond(200, []);
  t.writeAccepted = false;
  assert.equal(s.write(Buffer.from('x')), false);
  session.onStreamDrained(0);
  assert.equal(drained, 1);
});

test('the client resets the request: the exchange aborts and the stream is reset back', () => {
  const { t, handler, session } = setup();
  t.deliver(0, headersFrame(post()));
  t.peerReset(0, H3.REQUEST_CANCELLED);
  const ex = handler.exchanges[0];
  assert.equal(ex.aborted?.code, H3.REQUEST_CANCELLED);
  assert.match(ex.aborted?.reason ?? '', /client reset/);
  assert.deepEqual(t.shutdownsOf(0), ['write:0x10c', 'read:0x10c']);
  assert.equal(session.streams.size, 0);
  assert.equal(t.closed, null);
});

test('a reset after the response ended does not abort the exchange', () => {
  const { t, handler } = setup();
  t.deliver(0, headersFrame(post()));
  const ex = handler.exchanges[0];
  ex.stream.respond(200, [], true);
  t.peerReset(0, H3.NO_ERROR);
  assert.equal(ex.aborted, null);
  assert.deepEqual(t.shutdownsOf(0), []);
});

test('the client stops reading (STOP_SENDING): the exchange aborts', () => {
  const { t, handler } = setup();
  t.deliver(0, headersFrame(GET), true);
  const ex = handler.exchanges[0];
  ex.stream.respond(200, []);
  t.peerStopSending(0, H3.REQUEST_CANCELLED);
  ex.stream.write(Buffer.from('x'));
  assert.equal(ex.aborted?.code, H3.REQUEST_CANCELLED);
  assert.match(ex.aborted?.reason ?? '', /stopped reading/);
  assert.equal(ex.stream.responseEnded, true);
});

test('the proxy resets a stream: both directions get the code and the callbacks are dropped', () => {
  const { t, handler, session } = setup();
  t.deliver(0, headersFrame(post()));
  const ex = handler.exchanges[0];
  ex.stream.reset(H3.INTERNAL_ERROR);
  assert.deepEqual(t.shutdownsOf(0), ['write:0x102', 'read:0x102']);
  assert.equal(ex.stream.onData, null);
  assert.equal(session.streams.size, 0);
  ex.stream.reset(H3.INTERNAL_ERROR);
  assert.equal(t.shutdownsOf(0).length, 2, 'a second reset sends nothing');
});

test('rapid reset: past the allowance of premature resets the connection closes with H3_EXCESSIVE_LOAD', () => {
  const { t } = setup();
  let id = 0;
  for (let i = 0; i < CANCELLED_STREAMS_BURST; i++, id += 4) {
    t.deliver(id, headersFrame(GET));
    t.peerReset(id, H3.REQUEST_CANCELLED);
  }
  assert.equal(t.closed, null, 'a burst is allowed');
  t.deliver(id, headersFrame(GET));
  assert.equal(t.closed, null);
  t.peerReset(id, H3.REQUEST_CANCELLED);
  assert.equal(closeCode(t), H3.EXCESSIVE_LOAD);
});

test(`at most ${MAX_STREAMS_AWAITING_HEADERS} streams may wait for their HEADERS; completing one frees a slot`, () => {
  const { t, handler } = setup();
  const partial = headersFrame(GET).subarray(0, 3);
  for (let i = 0; i < MAX_STREAMS_AWAITING_HEADERS; i++) t.deliver(i * 4, partial);
  assert.deepEqual(t.shutdowns, []);
  const next = MAX_STREAMS_AWAITING_HEADERS * 4;
  t.deliver(next, partial);
  assert.deepEqual(t.shutdownsOf(next), ['write:0x10b', 'read:0x10b']);
  // The first stream completes its HEADERS: a new half-sent stream is accepted again.
  t.deliver(0, headersFrame(GET).subarray(3));
  assert.equal(handler.exchanges.length, 1);
  t.deliver(next + 4, partial);
  assert.deepEqual(t.shutdownsOf(next + 4), []);
});

test('request_header_timeout: HEADERS not complete in time are answered 408', async () => {
  const { t, handler, session } = setup({ requestHeaderTimeoutMs: 20 });
  t.deliver(0, headersFrame(GET).subarray(0, 3));
  t.deliver(4, headersFrame(GET), true); // complete at once: never timed
  for (let i = 0; i < 200 && handler.rejected.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(handler.rejected.length, 1);
  assert.equal(handler.rejected[0].status, 408);
  assert.equal((handler.rejected[0].stream as H3ServerStream).id, 0);
  assert.equal(handler.exchanges.length, 1);
  t.finishClose();
  assert.equal(session.closed, true);
});

test('drain: GOAWAY names the first unprocessed stream; later streams are refused; onDrained when done', () => {
  const { t, handler, session } = setup();
  let drained = 0;
  session.onDrained = () => drained++;
  t.deliver(0, headersFrame(GET), true);
  t.deliver(4, headersFrame(GET), true);
  session.beginDrain();
  const control = t.frames(3, 1);
  assert.equal(control.at(-1)?.type, Frame.GOAWAY);
  assert.deepEqual([...control.at(-1)!.payload], [8]);
  t.deliver(8, headersFrame(GET), true);
  assert.deepEqual(t.shutdownsOf(8), ['read:0x10b', 'write:0x10b']);
  assert.equal(handler.exchanges.length, 2);
  handler.exchanges[0].stream.respond(200, [], true);
  assert.equal(drained, 0);
  handler.exchanges[1].stream.respond(200, [], true);
  assert.equal(drained, 1);
  // Answered streams count until quiche has every byte acknowledged (then it forgets them).
  t.alive.add(4);
  assert.equal(session.unacknowledged(), 1);
  t.alive.clear();
  assert.equal(session.unacknowledged(), 0);
  session.beginDrain(); // once only
  assert.equal(t.frames(3, 1).filter((f) => f.type === Frame.GOAWAY).length, 1);
});

test('the connection goes away: open exchanges abort, onGone fires once', () => {
  const { t, handler, session } = setup();
  let gone = 0;
  session.onGone = () => gone++;
  t.deliver(0, headersFrame(post()));
  t.finishClose({ local: false, isApp: false, code: 0, reason: '' });
  assert.equal(handler.exchanges[0].aborted?.code, H3.REQUEST_CANCELLED);
  assert.equal(gone, 1);
  assert.equal(session.streams.size, 0);
  t.deliver(4, headersFrame(GET), true);
  assert.equal(handler.exchanges.length, 1, 'nothing is read after the close');
});

test('HEADERS read in 0-RTT mark the request as early data', () => {
  const { t, handler } = setup();
  t.inEarlyData = true;
  t.deliver(0, headersFrame(GET), true);
  t.inEarlyData = false;
  t.deliver(4, headersFrame(GET), true);
  assert.deepEqual(
    handler.exchanges.map((e) => e.stream.earlyData),
    [true, false],
  );
});

test('pause stops reading the body; resume reads what arrived meanwhile', async () => {
  const { t, handler } = setup();
  t.deliver(0, cat(headersFrame(post()), dataFrame('a')));
  const ex = handler.exchanges[0];
  ex.stream.pause();
  t.deliver(0, dataFrame('b'), true);
  assert.equal(ex.body, 'a');
  ex.stream.resume();
  await new Promise((r) => queueMicrotask(() => r(null)));
  assert.equal(ex.body, 'ab');
  assert.equal(ex.trailers, null);
});

test('resume reads at once; inside another read it waits for a microtask (the read buffer is shared)', async () => {
  const { t, handler } = setup();
  t.deliver(0, headersFrame(post()));
  t.deliver(4, headersFrame(post()));
  const [first, second] = handler.exchanges;
  second.stream.pause();
  t.deliver(4, dataFrame('second'));
  assert.equal(second.body, '');
  second.stream.resume();
  assert.equal(second.body, 'second', 'read before resume returned');
  second.stream.pause();
  t.deliver(4, dataFrame('-later'));
  let seenInside = '';
  first.stream.onData = (c) => {
    second.stream.resume();
    seenInside = second.body;
    first.body += Buffer.from(c).toString(); // still what stream 0 was lent
  };
  t.deliver(0, dataFrame('first'));
  assert.equal(seenInside, 'second', 'not read inside stream 0 read');
  assert.equal(first.body, 'first');
  await new Promise((r) => queueMicrotask(() => r(null)));
  assert.equal(second.body, 'second-later');
});

test('bodyRoom: no read is larger than the consumer can take; at 0 reading waits for resume', async () => {
  const { t, handler } = setup();
  t.deliver(0, headersFrame(post()));
  const ex = handler.exchanges[0];
  let room = 10;
  const chunks: number[] = [];
  ex.stream.bodyRoom = () => room;
  ex.stream.onData = (c) => {
    chunks.push(c.length);
    ex.body += Buffer.from(c).toString();
    room -= c.length;
  };
  t.deliver(0, dataFrame('x'.repeat(40)), true);
  // The DATA frame's 2-byte header is read within the first 10 bytes, then the 2 bytes left.
  assert.deepEqual(chunks, [8, 2]);
  assert.equal(room, 0);
  assert.equal(ex.trailers, undefined, 'the rest and the FIN wait in QUIC');
  room = 1000;
  ex.stream.resume();
  await new Promise((r) => queueMicrotask(() => r(null)));
  assert.equal(ex.body, 'x'.repeat(40));
  assert.equal(ex.trailers, null);
});

test('bodyRoom: once the declared length arrived, the FIN is read without room', () => {
  const { t, handler } = setup();
  t.deliver(0, headersFrame(post(4)));
  const ex = handler.exchanges[0];
  let room = 6; // the DATA frame's 2-byte header and the 4 bytes
  ex.stream.bodyRoom = () => room;
  ex.stream.onData = (c) => {
    ex.body += Buffer.from(c).toString();
    room -= c.length + 2;
  };
  t.deliver(0, dataFrame('abcd'));
  assert.equal(ex.body, 'abcd');
  assert.equal(room, 0);
  t.deliver(0, new Uint8Array(0), true);
  assert.equal(ex.trailers, null, 'the FIN was read at room 0');
});

test('answered while the body waits for room: the rest is refused with STOP_SENDING(H3_NO_ERROR)', () => {
  const { t, handler, session } = setup();
  t.deliver(0, headersFrame(post()));
  const ex = handler.exchanges[0];
  ex.stream.bodyRoom = () => 0;
  t.deliver(0, dataFrame('never read'));
  assert.equal(ex.body, '');
  ex.stream.respond(413, [], true);
  assert.deepEqual(t.shutdownsOf(0), [`read:0x${H3.NO_ERROR.toString(16)}`]);
  assert.equal(session.streams.size, 0, 'the stream is forgotten');
});

test('discardRequestBody: later DATA is dropped, and reading stops once the response ends', () => {
  const { t, handler } = setup();
  t.deliver(0, cat(headersFrame(post()), dataFrame('a')));
  const ex = handler.exchanges[0];
  ex.stream.discardRequestBody();
  t.deliver(0, dataFrame('b'));
  assert.equal(ex.body, 'a');
  ex.stream.respond(413, [], true);
  assert.deepEqual(t.shutdownsOf(0), ['read:0x100']);
});

test('server-initiated bidirectional stream ids are not request streams', () => {
  const { t, handler, session } = setup();
  t.deliver(1, headersFrame(GET), true);
  assert.equal(handler.exchanges.length, 0);
  assert.equal(session.streams.size, 0);
  assert.equal(t.closed, null);
});

test('an encoded frame header alone (zero-length DATA) is not body', () => {
  const { t, handler } = setup();
  t.deliver(0, cat(headersFrame(post(0)), encodeFrameHeader(Frame.DATA, 0)), true);
  assert.equal(handler.exchanges[0].body, '');
  assert.equal(handler.exchanges[0].trailers, null);
});
