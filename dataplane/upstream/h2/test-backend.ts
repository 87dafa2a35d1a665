/**
 * Test support for the upstream HTTP/2 client: a scripted HTTP/2 backend for frame-level tests (a
 * TCP server that reads the client's preface and frames and lets each test answer with whatever
 * frames it likes, well-formed or not: the misbehaving backends of RFC 9113's error cases), a
 * stream-limited backend, and a handler that records what one exchange delivered.
 */
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import type { Dispatcher, Fields, UpstreamExchange, UpstreamRequest } from '../dispatcher.js';
import type { UpstreamError } from '../errors.js';
import { type Frame, FrameReader, FrameType, frame, PREFACE, settingsFrame } from './frames.js';
import { encodeHeaderBlock, HpackDecoder } from './hpack.js';

export interface BackendConnection {
  socket: net.Socket;
  /** Every frame the client sent, in order. */
  frames: Frame[];
  /** Header blocks the client sent, decoded, by stream id. */
  requests: Map<number, Array<[string, string]>>;
  send(buf: Buffer): void;
  headers(streamId: number, fields: Array<[string, string]>, flags: number): void;
  data(streamId: number, body: string | Buffer, flags: number): void;
  /** Resolves with the first frame the client sends that matches. */
  next(match: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
}

export interface ScriptedBackend {
  origin: string;
  connections: BackendConnection[];
  close(): Promise<void>;
}

/**
 * `onStream` runs for each request HEADERS the client opens; `settings` is what the backend
 * announces right after the client's preface (none: an empty SETTINGS).
 */
export async function scriptedBackend(opts: {
  settings?: Array<[number, number]>;
  onStream?: (c: BackendConnection, streamId: number, fields: Array<[string, string]>) => void;
  onConnection?: (c: BackendConnection) => void;
}): Promise<ScriptedBackend> {
  const connections: BackendConnection[] = [];
  const server = net.createServer((socket) => {
    const decoder = new HpackDecoder(4096, 1 << 20);
    const reader = new FrameReader(1 << 24);
    const waiters: Array<{ match: (f: Frame) => boolean; resolve: (f: Frame) => void }> = [];
    const c: BackendConnection = {
      socket,
      frames: [],
      requests: new Map(),
      send: (buf) => {
        if (!socket.destroyed) socket.write(buf);
      },
      headers: (id, fields, flags) => c.send(frame(FrameType.HEADERS, flags, id, encodeHeaderBlock(fields))),
      data: (id, body, flags) => c.send(frame(FrameType.DATA, flags, id, Buffer.from(body))),
      next: (match, timeoutMs = 5000) =>
        new Promise((resolve, reject) => {
          const seen = c.frames.find(match);
          if (seen) return resolve(seen);
          const t = setTimeout(() => reject(new Error('the client sent no such frame')), timeoutMs);
          waiters.push({
            match,
            resolve: (f) => {
              clearTimeout(t);
              resolve(f);
            },
          });
        }),
    };
    connections.push(c);
    let preface = Buffer.alloc(0);
    let started = false;
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      let rest = chunk;
      if (!started) {
        preface = Buffer.concat([preface, chunk]);
        if (preface.length < PREFACE.length) return;
        started = true;
        rest = preface.subarray(PREFACE.length);
        c.send(settingsFrame(opts.settings ?? []));
        opts.onConnection?.(c);
      }
      try {
        reader.push(rest, (f) => {
          c.frames.push(f);
          for (const w of [...waiters]) {
            if (w.match(f)) {
              waiters.splice(waiters.indexOf(w), 1);
              w.resolve(f);
            }
          }
          if (f.type === FrameType.HEADERS && !c.requests.has(f.streamId)) {
            const fields = decoder.decode(f.payload);
            c.requests.set(f.streamId, fields);
            opts.onStream?.(c, f.streamId, fields);
          }
        });
      } catch {
        socket.destroy();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections,
    close: () =>
      new Promise<void>((r) => {
        for (const c of connections) c.socket.destroy();
        server.close(() => r());
      }),
  };
}

/**
 * A `node:http2` backend allowing `limit` concurrent streams per connection, answering 200 after
 * `delayMs`; records connections, the peak of streams open on one, and answers served.
 */
export async function streamLimitedBackend(limit: number, delayMs: number) {
  const stats = { sessions: 0, peakPerSession: 0, served: 0 };
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createServer({ settings: { maxConcurrentStreams: limit } });
  server.on('session', (session) => {
    stats.sessions++;
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    let open = 0;
    session.on('stream', (stream) => {
      open++;
      stats.peakPerSession = Math.max(stats.peakPerSession, open);
      stream.on('close', () => open--);
      stream.on('error', () => {});
      setTimeout(() => {
        if (stream.closed) return;
        stats.served++;
        stream.respond({ ':status': 200, 'content-type': 'text/plain' });
        stream.end('ok\n');
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stats,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

/** What one exchange delivered to its handler. */
export interface RecordedOutcome {
  status: number;
  /** The body as latin1 text. */
  body: string;
  trailers: Fields | null;
  error: UpstreamError | null;
  /** The response head said it was the whole response (HEADERS with END_STREAM). */
  endStream: boolean;
  informational: number[];
}

/**
 * Dispatches `request` with a handler that records everything; `done` settles at onComplete or
 * onError. `paused`: onData asks the backend to pause (returns false).
 */
export function recordExchange(
  d: Pick<Dispatcher, 'dispatch'>,
  request: UpstreamRequest,
  opts: { paused?: boolean } = {},
): { exchange: UpstreamExchange; done: Promise<RecordedOutcome> } {
  const o: RecordedOutcome = { status: 0, body: '', trailers: null, error: null, endStream: false, informational: [] };
  let settle!: (o: RecordedOutcome) => void;
  const done = new Promise<RecordedOutcome>((resolve) => (settle = resolve));
  const exchange = d.dispatch(request, {
    onInformational(status) {
      o.informational.push(status);
    },
    onResponseStart(status, _headers, endStream) {
      o.status = status;
      o.endStream = endStream;
    },
    onData(chunk) {
      o.body += Buffer.from(chunk).toString('latin1');
      return !opts.paused;
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
