/**
 * The upstream HTTP/2 client against misbehaving backends, frame by frame (RFC 9113's error
 * cases): each backend is a scripted TCP server (test-backend.ts) that answers with the frames a
 * test chooses, and each test checks both what the proxy's exchange saw and what the client sent
 * back (GOAWAY and RST_STREAM codes, WINDOW_UPDATEs, PING ACKs).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { H2Client } from '../client-h2.js';
import type { UpstreamRequest } from '../dispatcher.js';
import { H2Connection, STREAM_WINDOW } from './connection.js';
import {
  ErrorCode,
  Flag,
  type Frame,
  FrameType,
  frame,
  goawayFrame,
  pingFrame,
  rstStreamFrame,
  Setting,
  settingsFrame,
  windowUpdateFrame,
} from './frames.js';
import { encodeHeaderBlock } from './hpack.js';
import { type BackendConnection, type RecordedOutcome, recordExchange, scriptedBackend } from './test-backend.js';

const TIMEOUTS = { connectMs: 2000, headersMs: 3000, idleMs: 3000 };
const OK: Array<[string, string]> = [[':status', '200']];

type Outcome = RecordedOutcome;
/** A request whose body the test writes itself. */
const UPLOAD: UpstreamRequest = { method: 'POST', path: '/', authority: 'b.test', headers: [], hasBody: true };

function exchange(c: H2Client, request: Partial<UpstreamRequest> = {}, body?: Buffer, paused = false) {
  const { exchange: ex, done } = recordExchange(
    c,
    { method: 'GET', path: '/', authority: 'b.test', headers: [], hasBody: body !== undefined, ...request },
    { paused },
  );
  if (body) {
    ex.write(body);
    ex.end();
  }
  return done;
}

/** The DATA frames of an upload on stream `id`, once its END_STREAM arrived. */
async function uploaded(conn: BackendConnection, id: number): Promise<Frame[]> {
  await conn.next((f) => f.type === FrameType.DATA && f.streamId === id && (f.flags & Flag.END_STREAM) !== 0);
  return conn.frames.filter((f) => f.type === FrameType.DATA && f.streamId === id);
}

const isGoaway = (f: Frame) => f.type === FrameType.GOAWAY;
const goawayCode = (f: Frame) => f.payload.readUInt32BE(4);
const isRst = (id: number) => (f: Frame) => f.type === FrameType.RST_STREAM && f.streamId === id;

/** One request against a backend that answers every stream with `answer`. */
async function against(
  answer: (c: BackendConnection, id: number) => void,
  settings?: Array<[number, number]>,
): Promise<{ outcome: Outcome; conn: BackendConnection; close: () => Promise<void> }> {
  const b = await scriptedBackend({ settings, onStream: (c, id) => answer(c, id) });
  const client = new H2Client({ origin: b.origin, timeouts: TIMEOUTS });
  const outcome = await exchange(client);
  return {
    outcome,
    conn: b.connections[0] as BackendConnection,
    close: async () => {
      client.destroy();
      await b.close();
    },
  };
}

describe('upstream HTTP/2 against misbehaving backends (frame level)', () => {
  it('a well-formed answer split over HEADERS and CONTINUATION, padded DATA and trailers', async () => {
    const r = await against((c, id) => {
      const block = encodeHeaderBlock([
        [':status', '200'],
        ['x-long', 'v'.repeat(300)],
      ]);
      c.send(frame(FrameType.HEADERS, 0, id, block.subarray(0, 100)));
      c.send(frame(FrameType.CONTINUATION, 0, id, block.subarray(100, 200)));
      c.send(frame(FrameType.CONTINUATION, Flag.END_HEADERS, id, block.subarray(200)));
      // PADDED: pad length 3, "abc", three bytes of padding.
      c.send(frame(FrameType.DATA, Flag.PADDED, id, Buffer.from([3, 0x61, 0x62, 0x63, 0, 0, 0])));
      c.headers(id, [['grpc-status', '0']], Flag.END_STREAM | Flag.END_HEADERS);
    });
    try {
      assert.equal(r.outcome.error, null, String(r.outcome.error));
      assert.equal(r.outcome.status, 200);
      assert.equal(r.outcome.body, 'abc');
      assert.deepEqual(r.outcome.trailers, [['grpc-status', '0']]);
    } finally {
      await r.close();
    }
  });

  it('a frame between HEADERS and its CONTINUATION: GOAWAY PROTOCOL_ERROR, the request fails as reset', async () => {
    const r = await against((c, id) => {
      const block = encodeHeaderBlock(OK);
      c.send(frame(FrameType.HEADERS, 0, id, block));
      c.send(pingFrame(Buffer.alloc(8), false));
    });
    try {
      assert.equal(r.outcome.error?.kind, 'reset', String(r.outcome.error));
      assert.equal(goawayCode(await r.conn.next(isGoaway)), ErrorCode.PROTOCOL_ERROR);
    } finally {
      await r.close();
    }
  });

  it('a CONTINUATION flood (a header block that never ends) is cut off with ENHANCE_YOUR_CALM', async () => {
    const r = await against((c, id) => {
      c.send(frame(FrameType.HEADERS, 0, id, Buffer.from([0x88])));
      const junk = Buffer.alloc(16_000, 0x80 | 0x3f);
      for (let i = 0; i < 20; i++) c.send(frame(FrameType.CONTINUATION, 0, id, junk));
    });
    try {
      assert.equal(r.outcome.error?.kind, 'reset', String(r.outcome.error));
      assert.equal(goawayCode(await r.conn.next(isGoaway)), ErrorCode.ENHANCE_YOUR_CALM);
    } finally {
      await r.close();
    }
  });

  it('DATA on stream 0, DATA before the head, and a header block HPACK cannot read', async () => {
    const cases: Array<[string, (c: BackendConnection, id: number) => void, number | null]> = [
      ['DATA on stream 0', (c) => c.send(frame(FrameType.DATA, 0, 0, Buffer.from('x'))), ErrorCode.PROTOCOL_ERROR],
      [
        'a bad header block',
        (c, id) => c.send(frame(FrameType.HEADERS, Flag.END_HEADERS, id, Buffer.from([0x80]))),
        ErrorCode.COMPRESSION_ERROR,
      ],
      [
        'PUSH_PROMISE',
        (c, id) => c.send(frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, id, Buffer.alloc(4))),
        ErrorCode.PROTOCOL_ERROR,
      ],
      ['a frame above 16 KiB', (c, id) => c.data(id, Buffer.alloc(20_000), 0), ErrorCode.FRAME_SIZE_ERROR],
      [
        'SETTINGS_MAX_FRAME_SIZE below 16384',
        (c) => c.send(settingsFrame([[Setting.MAX_FRAME_SIZE, 100]])),
        ErrorCode.PROTOCOL_ERROR,
      ],
      [
        'SETTINGS_ENABLE_PUSH 1 from a server',
        (c) => c.send(settingsFrame([[Setting.ENABLE_PUSH, 1]])),
        ErrorCode.PROTOCOL_ERROR,
      ],
      ['WINDOW_UPDATE of 0 on the connection', (c) => c.send(windowUpdateFrame(0, 0)), ErrorCode.PROTOCOL_ERROR],
      ['a frame on an idle stream', (c) => c.data(99, 'x', 0), ErrorCode.PROTOCOL_ERROR],
    ];
    for (const [what, answer, code] of cases) {
      const r = await against(answer);
      try {
        assert.equal(r.outcome.error?.kind, 'reset', `${what}: ${r.outcome.error}`);
        assert.equal(goawayCode(await r.conn.next(isGoaway)), code, what);
      } finally {
        await r.close();
      }
    }
  });

  it('stream errors reset only the stream: DATA before the head, a malformed head, trailers without END_STREAM', async () => {
    const cases: Array<[string, (c: BackendConnection, id: number) => void, number, string]> = [
      ['DATA before the head', (c, id) => c.data(id, 'x', 0), ErrorCode.PROTOCOL_ERROR, 'reset'],
      [
        'a head without :status',
        (c, id) => c.headers(id, [['x-a', 'b']], Flag.END_HEADERS),
        ErrorCode.PROTOCOL_ERROR,
        'protocol',
      ],
      [
        'an upper-case field name',
        (c, id) =>
          c.headers(
            id,
            [
              [':status', '200'],
              ['X-Upper', 'b'],
            ],
            Flag.END_HEADERS,
          ),
        ErrorCode.PROTOCOL_ERROR,
        'protocol',
      ],
      [
        'a connection-specific field',
        (c, id) =>
          c.headers(
            id,
            [
              [':status', '200'],
              ['connection', 'close'],
            ],
            Flag.END_HEADERS,
          ),
        ErrorCode.PROTOCOL_ERROR,
        'protocol',
      ],
      [
        'trailers without END_STREAM',
        (c, id) => {
          c.headers(id, OK, Flag.END_HEADERS);
          c.headers(id, [['x-t', '1']], Flag.END_HEADERS);
        },
        ErrorCode.PROTOCOL_ERROR,
        'reset',
      ],
    ];
    for (const [what, answer, code, kind] of cases) {
      const b = await scriptedBackend({
        onStream: (c, id) => (id === 1 ? answer(c, id) : c.headers(id, OK, Flag.END_HEADERS | Flag.END_STREAM)),
      });
      const client = new H2Client({ origin: b.origin, timeouts: TIMEOUTS });
      try {
        const o = await exchange(client);
        assert.equal(o.error?.kind, kind, `${what}: ${o.error}`);
        const c = b.connections[0] as BackendConnection;
        assert.equal((await c.next(isRst(1))).payload.readUInt32BE(0), code, what);
        // The connection is fine: the next request on it is answered.
        const next = await exchange(client);
        assert.equal(next.status, 200, `${what}, next request: ${next.error}`);
        assert.equal(b.connections.length, 1, what);
        assert.equal(c.frames.some(isGoaway), false, `${what}: no GOAWAY`);
      } finally {
        client.destroy();
        await b.close();
      }
    }
  });

  it('DATA past the stream window while the client is paused: RST_STREAM FLOW_CONTROL_ERROR', async () => {
    const b = await scriptedBackend({
      onStream: (c, id) => {
        c.headers(id, OK, Flag.END_HEADERS);
        // The consumer pauses at the first chunk, so no credit comes back: the window is all.
        const chunk = Buffer.alloc(16_384, 0x61);
        for (let sent = 0; sent <= STREAM_WINDOW; sent += chunk.length) c.data(id, chunk, 0);
      },
    });
    const client = new H2Client({ origin: b.origin, timeouts: TIMEOUTS });
    try {
      const o = await exchange(client, {}, undefined, true);
      assert.equal(o.error?.kind, 'reset', String(o.error));
      const c = b.connections[0] as BackendConnection;
      assert.equal((await c.next(isRst(1))).payload.readUInt32BE(0), ErrorCode.FLOW_CONTROL_ERROR);
      assert.equal(c.frames.some(isGoaway), false, 'a stream error, not a connection error');
    } finally {
      client.destroy();
      await b.close();
    }
  });

  it('RST_STREAM: REFUSED_STREAM is refused (retryable), CANCEL mid-body is reset', async () => {
    const refused = await against((c, id) => c.send(rstStreamFrame(id, ErrorCode.REFUSED_STREAM)));
    try {
      assert.equal(refused.outcome.error?.kind, 'refused', String(refused.outcome.error));
    } finally {
      await refused.close();
    }
    const cancelled = await against((c, id) => {
      c.headers(id, OK, Flag.END_HEADERS);
      c.data(id, 'part', 0);
      c.send(rstStreamFrame(id, ErrorCode.CANCEL));
    });
    try {
      assert.equal(cancelled.outcome.error?.kind, 'reset', String(cancelled.outcome.error));
      assert.equal(cancelled.outcome.body, 'part');
    } finally {
      await cancelled.close();
    }
  });

  it('GOAWAY mid-stream: streams up to its last id complete, later ones are refused, new requests take a new connection', async () => {
    const held: Array<[BackendConnection, number]> = [];
    const b = await scriptedBackend({
      onStream: (c, id) => {
        if (b.connections.indexOf(c) > 0) return c.headers(id, OK, Flag.END_HEADERS | Flag.END_STREAM);
        held.push([c, id]);
        if (held.length === 2) {
          const [[first, id1]] = held as [[BackendConnection, number]];
          first.send(goawayFrame(id1, ErrorCode.NO_ERROR));
          first.headers(id1, OK, Flag.END_HEADERS);
          first.data(id1, 'done', Flag.END_STREAM);
        }
      },
    });
    const client = new H2Client({ origin: b.origin, timeouts: TIMEOUTS });
    try {
      const [a, z] = await Promise.all([exchange(client), exchange(client)]);
      assert.equal(a.error, null, String(a.error));
      assert.equal(a.body, 'done');
      assert.equal(z.error?.kind, 'refused', String(z.error));
      const next = await exchange(client);
      assert.equal(next.status, 200, String(next.error));
      assert.equal(b.connections.length, 2);
    } finally {
      client.destroy();
      await b.close();
    }
  });

  it('a backend PING is answered with the same payload; the client acknowledges SETTINGS', async () => {
    const payload = Buffer.from('spooky!!');
    const r = await against((c, id) => {
      c.send(pingFrame(payload, false));
      c.headers(id, OK, Flag.END_HEADERS | Flag.END_STREAM);
    });
    try {
      assert.equal(r.outcome.status, 200);
      const ack = await r.conn.next((f) => f.type === FrameType.PING && (f.flags & Flag.ACK) !== 0);
      assert.deepEqual(Buffer.from(ack.payload), payload);
      await r.conn.next((f) => f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) !== 0);
    } finally {
      await r.close();
    }
  });

  it('flow control: an upload waits for WINDOW_UPDATE; SETTINGS_INITIAL_WINDOW_SIZE changes apply to open streams', async () => {
    const body = Buffer.alloc(100_000, 0x62);
    let conn!: BackendConnection;
    let stream = 0;
    const b = await scriptedBackend({
      // 1,000 bytes per stream until told otherwise; the connection window is ample.
      settings: [[Setting.INITIAL_WINDOW_SIZE, 1000]],
      onConnection: (c) => c.send(windowUpdateFrame(0, 1 << 20)),
      onStream: (c, id) => {
        conn = c;
        stream = id;
        if (id === 1) c.headers(id, OK, Flag.END_HEADERS | Flag.END_STREAM);
      },
    });
    const client = new H2Client({ origin: b.origin, timeouts: TIMEOUTS });
    try {
      // A first request: the client has the backend's SETTINGS before the upload starts.
      assert.equal((await exchange(client)).status, 200);
      const done = exchange(client, { method: 'POST' }, body);
      const received = () =>
        conn.frames
          .filter((f) => f.type === FrameType.DATA && f.streamId === stream)
          .reduce((n, f) => n + f.payload.length, 0);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(stream, 3);
      assert.equal(received(), 1000, 'no more than the stream window');
      conn.send(windowUpdateFrame(stream, 9000));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(received(), 10_000);
      // Raising the initial window by 90,000 opens every open stream's window by as much.
      conn.send(settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 91_000]]));
      await conn.next((f) => f.type === FrameType.DATA && (f.flags & Flag.END_STREAM) !== 0);
      assert.equal(received(), 100_000);
      conn.headers(stream, OK, Flag.END_HEADERS | Flag.END_STREAM);
      assert.equal((await done).status, 200);
    } finally {
      client.destroy();
      await b.close();
    }
  });

  it('a complete answer before the whole request body: the client resets the stream (CANCEL) and its slot is free again', async () => {
    const b = await scriptedBackend({
      // One stream per connection and a 1,000-byte window: the upload cannot finish before the
      // answer, and a stream left half-open would hold the connection's only slot.
      settings: [
        [Setting.MAX_CONCURRENT_STREAMS, 1],
        [Setting.INITIAL_WINDOW_SIZE, 1000],
      ],
      onStream: (c, id) => c.headers(id, OK, Flag.END_HEADERS | Flag.END_STREAM),
    });
    const client = new H2Client({ origin: b.origin, timeouts: TIMEOUTS });
    try {
      assert.equal((await exchange(client)).status, 200, 'the client has the SETTINGS');
      const early = recordExchange(client, UPLOAD);
      early.exchange.write(Buffer.alloc(100_000, 0x61));
      const outcome = await early.done;
      assert.equal(outcome.status, 200);
      assert.equal(outcome.error, null);
      const conn = b.connections[0] as BackendConnection;
      const rst = await conn.next(isRst(3));
      assert.equal(rst.payload.readUInt32BE(0), ErrorCode.CANCEL);
      // The rest of the body is dropped, and ending it later sends nothing.
      early.exchange.write(Buffer.alloc(1000, 0x61));
      early.exchange.end();
      assert.equal((await exchange(client)).status, 200, 'the next request');
      assert.equal(b.connections.length, 1, 'on the same connection: the slot was freed');
      const after = conn.frames.slice(conn.frames.indexOf(rst) + 1);
      assert.ok(!after.some((f) => f.streamId === 3), 'nothing more on the reset stream');
    } finally {
      client.destroy();
      await b.close();
    }
  });

  it('request body is lent: the caller reuses its buffer after every write; a turn of writes is one DATA frame with END_STREAM', async () => {
    let uploadOpened!: (c: BackendConnection) => void;
    const upload = new Promise<BackendConnection>((r) => (uploadOpened = r));
    const b = await scriptedBackend({
      onStream: (c, id) => {
        if (id === 1) c.headers(id, OK, Flag.END_HEADERS | Flag.END_STREAM);
        else uploadOpened(c);
      },
    });
    const client = new H2Client({ origin: b.origin, timeouts: TIMEOUTS });
    try {
      // A first request opens the connection, so the upload's stream opens as it is dispatched.
      assert.equal((await exchange(client)).status, 200);
      const { exchange: ex, done } = recordExchange(client, UPLOAD);
      // What the HTTP/3 listener does: one buffer, refilled for every read.
      const lent = Buffer.alloc(1000);
      for (const ch of 'abcde') {
        lent.fill(ch);
        ex.write(lent);
      }
      ex.end();
      lent.fill('z');
      const conn = await upload;
      const data = await uploaded(conn, 3);
      assert.equal(data.length, 1, 'one DATA frame');
      assert.equal(data[0]?.payload.toString(), ['a', 'b', 'c', 'd', 'e'].map((c) => c.repeat(1000)).join(''));
      conn.headers(3, OK, Flag.END_HEADERS | Flag.END_STREAM);
      assert.equal((await done).status, 200);
    } finally {
      client.destroy();
      await b.close();
    }
  });

  it('bodyRoom: a writer that takes no more than the windows allow is never copied; the drain comes with room', async () => {
    let conn!: BackendConnection;
    const b = await scriptedBackend({
      settings: [[Setting.INITIAL_WINDOW_SIZE, 1000]],
      onConnection: (c) => c.send(windowUpdateFrame(0, 1 << 20)),
      onStream: (c, id) => {
        conn = c;
        if (id === 1) c.headers(id, OK, Flag.END_HEADERS | Flag.END_STREAM);
      },
    });
    const client = new H2Client({ origin: b.origin, timeouts: TIMEOUTS });
    const settle = () => new Promise((r) => setTimeout(r, 50));
    try {
      assert.equal((await exchange(client)).status, 200);
      const { exchange: ex, done } = recordExchange(client, UPLOAD);
      let drains = 0;
      ex.onRequestDrain = () => drains++;
      assert.equal(ex.bodyRoom(), 1000, 'the stream window');
      assert.equal(ex.write(Buffer.alloc(1000, 0x61)), true, 'taken whole, nothing kept');
      assert.equal(ex.bodyRoom(), 0);
      await settle();
      assert.equal(drains, 0, 'no room yet');
      conn.send(windowUpdateFrame(3, 300));
      await settle();
      assert.equal(drains, 1, 'room again');
      assert.equal(ex.bodyRoom(), 300);
      // A writer that ignores the room still works: the rest is copied and waits. Once it is sent
      // the queue is empty but the window is not open again: the drain waits for room.
      assert.equal(ex.write(Buffer.alloc(500, 0x62)), false);
      conn.send(windowUpdateFrame(3, 200));
      await settle();
      assert.equal(drains, 1, 'queue sent, window closed again: no drain yet');
      conn.send(windowUpdateFrame(3, 100));
      await settle();
      assert.equal(drains, 2);
      ex.write(Buffer.alloc(100, 0x63));
      ex.end();
      const sent = (await uploaded(conn, 3)).map((f) => f.payload.toString()).join('');
      assert.equal(sent, `${'a'.repeat(1000)}${'b'.repeat(500)}${'c'.repeat(100)}`);
      conn.headers(3, OK, Flag.END_HEADERS | Flag.END_STREAM);
      assert.equal((await done).status, 200);
    } finally {
      client.destroy();
      await b.close();
    }
  });

  it('the client returns receive credit: a 1 MiB response on one stream arrives whole', async () => {
    const r = await against((c, id) => {
      c.headers(id, OK, Flag.END_HEADERS);
      let sent = 0;
      const chunk = Buffer.alloc(16_384, 0x6d);
      // The stream window is 256 KiB: the rest is sent as the client's WINDOW_UPDATEs arrive.
      const pump = () => {
        while (sent < 1 << 20 && sent < credit) {
          c.data(id, chunk, sent + chunk.length >= 1 << 20 ? Flag.END_STREAM : 0);
          sent += chunk.length;
        }
      };
      let credit = STREAM_WINDOW;
      c.socket.on('data', () => {
        for (const f of c.frames.splice(0))
          if (f.type === FrameType.WINDOW_UPDATE && f.streamId === id) credit += f.payload.readUInt32BE(0);
        pump();
      });
      pump();
    });
    try {
      assert.equal(r.outcome.error, null, String(r.outcome.error));
      assert.equal(r.outcome.body.length, 1 << 20);
    } finally {
      await r.close();
    }
  });

  it('SETTINGS_MAX_CONCURRENT_STREAMS 1: never two streams on one connection; more connections instead', async () => {
    const open = new Map<BackendConnection, number>();
    let peak = 0;
    const b = await scriptedBackend({
      settings: [[Setting.MAX_CONCURRENT_STREAMS, 1]],
      onStream: (c, id) => {
        open.set(c, (open.get(c) ?? 0) + 1);
        peak = Math.max(peak, open.get(c) ?? 0);
        setTimeout(() => {
          open.set(c, (open.get(c) ?? 1) - 1);
          c.headers(id, OK, Flag.END_HEADERS | Flag.END_STREAM);
        }, 10);
      },
    });
    const client = new H2Client({ origin: b.origin, timeouts: TIMEOUTS });
    try {
      assert.equal((await exchange(client)).status, 200);
      const all = await Promise.all(Array.from({ length: 5 }, () => exchange(client)));
      assert.deepEqual(
        all.map((o) => o.status),
        [200, 200, 200, 200, 200],
      );
      assert.equal(peak, 1);
      assert.equal(b.connections.length, 5);
    } finally {
      client.destroy();
      await b.close();
    }
  });
});

describe('upstream HTTP/2 stream ids', () => {
  it('a connection that has used its stream ids takes no new requests and closes when done; the next goes on a new one', async () => {
    const b = await scriptedBackend({ onStream: (c, id) => c.headers(id, OK, Flag.END_HEADERS | Flag.END_STREAM) });
    const client = new H2Client({ origin: b.origin, timeouts: TIMEOUTS, lastStreamId: 5 });
    try {
      for (let i = 0; i < 4; i++) assert.equal((await exchange(client)).status, 200);
      assert.equal(b.connections.length, 2);
      assert.deepEqual([...(b.connections[0] as BackendConnection).requests.keys()], [1, 3, 5]);
      assert.deepEqual([...(b.connections[1] as BackendConnection).requests.keys()], [1]);
      // The retired connection was closed once its last stream ended.
      const first = b.connections[0] as BackendConnection;
      for (let i = 0; i < 100 && !first.socket.readableEnded; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(first.socket.readableEnded, 'the client ended the retired connection');
    } finally {
      client.destroy();
      await b.close();
    }
  });
});

describe('upstream HTTP/2 liveness', () => {
  it('a backend that stops answering PINGs while a stream is open: the connection fails its streams', async () => {
    const b = await scriptedBackend({});
    const socket = net.connect(Number(new URL(b.origin).port), '127.0.0.1');
    const conn = new H2Connection(socket, { origin: b.origin, onUnusable() {}, pingAfterMs: 100, pingTimeoutMs: 200 });
    try {
      const reset = await new Promise<string>((resolve) => {
        conn.request(
          [
            [':method', 'GET'],
            [':scheme', 'http'],
            [':authority', 'b.test'],
            [':path', '/'],
          ],
          true,
          {
            onHeaders() {},
            onData() {},
            onDrain() {},
            onClosed() {},
            onReset: (_code, reason) => resolve(reason),
          },
        );
      });
      assert.match(reset, /did not answer a PING within 200 ms/);
      const c = b.connections[0] as BackendConnection;
      assert.ok(
        c.frames.some((f) => f.type === FrameType.PING && (f.flags & Flag.ACK) === 0),
        'a PING was sent',
      );
    } finally {
      conn.destroy();
      await b.close();
    }
  });
});
