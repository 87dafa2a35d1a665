/**
 * One HTTP/2 connection to a backend, client side (RFC 9113), on a socket someone else opened
 * (net or tls with ALPN h2). It owns framing, HPACK state, flow control in both directions,
 * SETTINGS, PING and GOAWAY, and multiplexes H2Stream objects; what a response means for the
 * proxy is the exchange's business (client-h2.ts).
 *
 * Writes made during one event-loop turn leave in one socket write at its end.
 */
import type { Socket } from 'node:net';
import {
  DEFAULT_MAX_FRAME_SIZE,
  ErrorCode,
  errorName,
  Flag,
  type Frame,
  FrameReader,
  FrameType,
  frame,
  goawayFrame,
  H2ConnectionError,
  headersFrames,
  MAX_WINDOW,
  PREFACE,
  pingFrame,
  rstStreamFrame,
  Setting,
  settingsFrame,
  unpad,
  windowUpdateFrame,
} from './frames.js';
import { CompressionError, encodeHeaderBlock, HeaderListTooLarge, HpackDecoder } from './hpack.js';
import { FrameOutput } from './output.js';
import { H2Stream, STREAM_WINDOW, type StreamEvents } from './stream.js';

export { H2Stream, STREAM_WINDOW, type StreamEvents };

/** The connection's receive window (raised from 65,535 with a WINDOW_UPDATE right after the preface). */
const CONNECTION_WINDOW = 16 * 1024 * 1024;
const HEADER_TABLE_SIZE = 4096;
export const MAX_HEADER_LIST_SIZE = 64 * 1024;
/** Streams assumed allowed until the backend's SETTINGS say (RFC 9113 §5.1.2 recommends ≥ 100). */
export const ASSUMED_MAX_STREAMS = 100;
/** A connection silent this long while streams are open is asked for a PING... */
const PING_AFTER_MS = 10_000;
/** ...and closed when the PING is not answered within this. */
const PING_TIMEOUT_MS = 10_000;
/** Past this stream id a connection takes no new requests; 2^31 − 1 is the last there is. */
const LAST_STREAM_ID = 2 ** 31 - 1 - 2 * 100_000;

export interface H2ConnectionOptions {
  origin: string;
  /** Streams to allow until the backend's SETTINGS arrive (what its other connections said). */
  initialMaxStreams?: number;
  /** Called once when the connection can take no new streams (GOAWAY, error, close). */
  onUnusable(): void;
  /** The backend's SETTINGS arrived (the first time and after every change). */
  onSettings?(maxConcurrentStreams: number): void;
  /** The last stream id to open before retiring the connection (tests lower it). */
  lastStreamId?: number;
  /** Liveness: PING after this much silence with streams open, fail if unanswered (tests shorten them). */
  pingAfterMs?: number;
  pingTimeoutMs?: number;
}

export class H2Connection {
  private readonly reader = new FrameReader(DEFAULT_MAX_FRAME_SIZE);
  private readonly decoder = new HpackDecoder(HEADER_TABLE_SIZE, MAX_HEADER_LIST_SIZE);
  private readonly streams = new Map<number, H2Stream>();
  /** Streams waiting for the backend's concurrency limit, with what opens each. */
  private readonly waiting: Array<{ stream: H2Stream; open: () => void }> = [];
  /** Streams with request body or an end to send at the turn's flush. */
  private readonly pending = new Set<H2Stream>();
  private nextStreamId = 1;
  private readonly output = new FrameOutput();
  private flushScheduled = false;
  private sendWindow = 65_535;
  private recvWindow = CONNECTION_WINDOW;
  private recvUnacked = 0;
  private peerInitialWindow = 65_535;
  private peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  /** The backend's SETTINGS_MAX_CONCURRENT_STREAMS. */
  peerMaxStreams = ASSUMED_MAX_STREAMS;
  /** A header block in progress (HEADERS without END_HEADERS, then CONTINUATION). */
  private headerBlock: { streamId: number; endStream: boolean; parts: Buffer[]; size: number } | null = null;
  private goawayLastId: number | null = null;
  /** Most stream ids used: no new requests (retireBeforeIdsRunOut). */
  private exhausted = false;
  private closed = false;
  private closeReason = '';
  private lastReceived = performance.now();
  private pingSentAt = 0;
  private liveness: NodeJS.Timeout | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly options: H2ConnectionOptions,
  ) {
    socket.setNoDelay(true);
    this.peerMaxStreams = options.initialMaxStreams ?? ASSUMED_MAX_STREAMS;
    this.queue(PREFACE);
    this.queue(
      settingsFrame([
        [Setting.ENABLE_PUSH, 0],
        [Setting.INITIAL_WINDOW_SIZE, STREAM_WINDOW],
        [Setting.MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST_SIZE],
      ]),
    );
    this.queue(windowUpdateFrame(0, CONNECTION_WINDOW - 65_535));
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    socket.on('error', (err) => this.fail(`connection lost with ${options.origin}: ${err.message}`));
    socket.on('close', () => this.fail(`${options.origin} closed the connection`));
  }

  /** Open streams plus those waiting for the backend's limit. */
  get streamCount(): number {
    return this.streams.size + this.waiting.length;
  }

  /** Whether a new stream may be started here (no GOAWAY, not closed, ids left). */
  get usable(): boolean {
    return !this.closed && this.goawayLastId === null && !this.exhausted;
  }

  /**
   * Starts a request. The HEADERS frame leaves at the end of the turn, or once the backend's
   * concurrency limit allows (streams wait in order, so ids stay increasing).
   */
  request(fields: ReadonlyArray<readonly [string, string]>, endStream: boolean, events: StreamEvents): H2Stream {
    const stream = new H2Stream(this, events, this.peerInitialWindow);
    const block = encodeHeaderBlock(fields);
    if (!this.usable) {
      queueMicrotask(() => this.finishStream(stream, () => events.onReset(null, this.unusableReason())));
      return stream;
    }
    const open = () => {
      stream.id = this.nextStreamId;
      this.nextStreamId += 2;
      // The window the backend allows now (a SETTINGS may have come while the stream waited).
      stream.sendWindow = this.peerInitialWindow;
      this.streams.set(stream.id, stream);
      this.retireBeforeIdsRunOut();
      if (endStream) stream.localClosed = true;
      this.queue(headersFrames(stream.id, block, endStream, this.peerMaxFrameSize));
      this.armLiveness();
      if (!endStream) this.markPending(stream);
    };
    if (this.streams.size < this.peerMaxStreams) open();
    else this.waiting.push({ stream, open });
    return stream;
  }

  /**
   * Stream ids are 31 bits and never reused (RFC 9113 §5.1.1): a connection that has used most
   * of them takes no new requests (the pool opens another) and closes once its streams are done.
   */
  private retireBeforeIdsRunOut(): void {
    if (this.exhausted || this.nextStreamId <= (this.options.lastStreamId ?? LAST_STREAM_ID)) return;
    this.exhausted = true;
    this.options.onUnusable();
  }

  private unusableReason(): string {
    return this.closed
      ? this.closeReason || `connection to ${this.options.origin} closed`
      : `${this.options.origin} sent GOAWAY`;
  }

  /** A stream has body or an end to send: it goes out with the turn's flush. */
  markPending(stream: H2Stream): void {
    this.pending.add(stream);
    this.scheduleFlush();
  }

  /**
   * Request body of an open stream with nothing queued, straight into this turn's output as far
   * as both windows allow (copied there: `chunk` is lent). Returns the bytes taken.
   */
  sendBody(stream: H2Stream, chunk: Uint8Array): number {
    if (stream.isFinished || stream.localClosed) return 0;
    const n = Math.min(chunk.length, this.bodyRoom(stream));
    if (n > 0) this.emitData(stream, n === chunk.length ? chunk : chunk.subarray(0, n));
    return n;
  }

  /** What `sendBody` would take now: both windows' room (0 once the connection is closed). */
  bodyRoom(stream: H2Stream): number {
    return this.closed ? 0 : Math.max(this.windowRoom(stream), 0);
  }

  /** Moves queued request body into DATA frames as far as both windows allow, then the end. */
  sendStreamData(stream: H2Stream): void {
    this.pending.delete(stream);
    if (this.closed || stream.isFinished || stream.localClosed) return;
    for (const c of stream.takeOutgoing(this.windowRoom(stream))) this.emitData(stream, c);
    const trailers = stream.pendingTrailers;
    if (trailers) {
      this.queue(headersFrames(stream.id, encodeHeaderBlock(trailers), true, this.peerMaxFrameSize));
      stream.localClosed = true;
      this.maybeClose(stream);
    } else if (stream.wantsEnd) {
      // END_STREAM on the DATA frame just written when there is one (no empty frame).
      this.output.endStream(stream.id);
      this.scheduleFlush();
      stream.localClosed = true;
      this.maybeClose(stream);
    }
    // The writer waits for room, not just for the queue to empty: every window increase (SETTINGS,
    // WINDOW_UPDATE) brings the stream back here.
    if (stream.needDrain && stream.buffered === 0 && !stream.isFinished && this.bodyRoom(stream) > 0) {
      stream.needDrain = false;
      stream.events.onDrain();
    }
  }

  /** What both flow-control windows let the stream send now (negative after a SETTINGS cut). */
  private windowRoom(stream: H2Stream): number {
    return Math.min(stream.sendWindow, this.sendWindow);
  }

  /** DATA for `chunk` into this turn's output, charged to both windows (the caller checked them). */
  private emitData(stream: H2Stream, chunk: Uint8Array): void {
    stream.sendWindow -= chunk.length;
    this.sendWindow -= chunk.length;
    this.output.data(stream.id, chunk, this.peerMaxFrameSize);
    this.scheduleFlush();
  }

  grantStream(stream: H2Stream, increment: number): void {
    if (!this.closed && !stream.isFinished) this.queue(windowUpdateFrame(stream.id, increment));
  }

  resetStream(stream: H2Stream, code: number): void {
    if (stream.id !== 0 && !this.closed) this.queue(rstStreamFrame(stream.id, code));
    const i = this.waiting.findIndex((w) => w.stream === stream);
    if (i >= 0) this.waiting.splice(i, 1);
    this.finishStream(stream, null);
  }

  /** GOAWAY(NO_ERROR) after the open streams; no new ones. */
  close(): void {
    if (this.closed) return;
    if (this.goawayLastId === null) this.goawayLastId = this.nextStreamId - 2;
    this.queue(goawayFrame(0, ErrorCode.NO_ERROR));
    this.options.onUnusable();
    if (this.streamCount === 0) this.endSocket();
  }

  destroy(reason = `connection to ${this.options.origin} destroyed`): void {
    this.fail(reason);
  }

  // ---- input -------------------------------------------------------------------------------

  private onBytes(chunk: Buffer): void {
    if (this.closed) return;
    this.lastReceived = performance.now();
    try {
      this.reader.push(chunk, (f) => this.onFrame(f));
    } catch (e) {
      if (e instanceof H2ConnectionError) this.connectionError(e.code, e.message);
      else this.connectionError(ErrorCode.INTERNAL_ERROR, (e as Error).message);
    }
  }

  private onFrame(f: Frame): void {
    if (this.closed) return;
    if (this.headerBlock && f.type !== FrameType.CONTINUATION) {
      throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, `${frameName(f.type)} inside a header block`);
    }
    switch (f.type) {
      case FrameType.DATA:
        return this.onData(f);
      case FrameType.HEADERS:
        return this.onHeadersFrame(f);
      case FrameType.CONTINUATION:
        return this.onContinuation(f);
      case FrameType.RST_STREAM:
        return this.onRstStream(f);
      case FrameType.SETTINGS:
        return this.onSettings(f);
      case FrameType.PING:
        return this.onPing(f);
      case FrameType.GOAWAY:
        return this.onGoaway(f);
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(f);
      case FrameType.PUSH_PROMISE:
        throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE with push disabled');
      case FrameType.PRIORITY:
        if (f.streamId === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        return;
      default:
        return; // §4.1: unknown frame types are ignored
    }
  }

  /** The stream a frame names: undefined for a closed one; an idle id is a PROTOCOL_ERROR. */
  private streamOf(f: Frame): H2Stream | undefined {
    if (f.streamId === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, `${frameName(f.type)} on stream 0`);
    const s = this.streams.get(f.streamId);
    if (s) return s;
    if (f.streamId % 2 === 0 || f.streamId >= this.nextStreamId) {
      throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, `${frameName(f.type)} on idle stream ${f.streamId}`);
    }
    return undefined;
  }

  private onData(f: Frame): void {
    const stream = this.streamOf(f);
    const length = f.payload.length;
    this.recvWindow -= length;
    if (this.recvWindow < 0) {
      throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
    }
    // Connection credit comes back as data arrives: each stream's own window bounds its buffer.
    this.recvUnacked += length;
    if (this.recvUnacked >= CONNECTION_WINDOW / 2) {
      this.recvWindow += this.recvUnacked;
      this.queue(windowUpdateFrame(0, this.recvUnacked));
      this.recvUnacked = 0;
    }
    const data = unpad(f);
    if (!stream || stream.isFinished) return;
    if (stream.remoteClosed) return this.streamError(stream, ErrorCode.STREAM_CLOSED, 'DATA after END_STREAM');
    if (!stream.responded) return this.streamError(stream, ErrorCode.PROTOCOL_ERROR, 'DATA before the response head');
    if (!stream.received(length))
      return this.streamError(stream, ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the stream window');
    const end = (f.flags & Flag.END_STREAM) !== 0;
    if (end) stream.remoteClosed = true;
    if (data.length > 0 || end) stream.events.onData(data, end);
    if (end) this.maybeClose(stream);
  }

  private onHeadersFrame(f: Frame): void {
    this.streamOf(f); // validates the id
    const fragment = unpad(f);
    const endStream = (f.flags & Flag.END_STREAM) !== 0;
    if (f.flags & Flag.END_HEADERS) return this.onHeaderBlock(f.streamId, endStream, fragment);
    this.headerBlock = { streamId: f.streamId, endStream, parts: [Buffer.from(fragment)], size: fragment.length };
  }

  private onContinuation(f: Frame): void {
    const hb = this.headerBlock;
    if (!hb || hb.streamId !== f.streamId) {
      throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION without a header block to continue');
    }
    hb.size += f.payload.length;
    // A block is bounded like the list it decodes to (plus Huffman's worst case): CONTINUATION
    // floods (a header block that never ends) cost at most this much.
    if (hb.size > MAX_HEADER_LIST_SIZE * 2) {
      throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'header block too large');
    }
    hb.parts.push(Buffer.from(f.payload));
    if (f.flags & Flag.END_HEADERS) {
      this.headerBlock = null;
      this.onHeaderBlock(hb.streamId, hb.endStream, Buffer.concat(hb.parts));
    }
  }

  private onHeaderBlock(streamId: number, endStream: boolean, block: Buffer): void {
    // Decoded whatever became of the stream: the table must follow the backend's encoder.
    let fields: Array<[string, string]> | null = null;
    let tooLarge = false;
    try {
      fields = this.decoder.decode(block);
    } catch (e) {
      if (e instanceof CompressionError) throw new H2ConnectionError(ErrorCode.COMPRESSION_ERROR, e.message);
      if (!(e instanceof HeaderListTooLarge)) throw e;
      tooLarge = true;
    }
    const stream = this.streams.get(streamId);
    if (!stream || stream.isFinished) return;
    if (stream.remoteClosed) return this.streamError(stream, ErrorCode.STREAM_CLOSED, 'HEADERS after END_STREAM');
    if (tooLarge || !fields) {
      return this.streamError(
        stream,
        ErrorCode.PROTOCOL_ERROR,
        `response head larger than ${MAX_HEADER_LIST_SIZE} bytes`,
      );
    }
    if (stream.responded && !endStream) {
      return this.streamError(stream, ErrorCode.PROTOCOL_ERROR, 'trailers without END_STREAM');
    }
    if (!stream.responded) {
      const status = fields.find(([n]) => n === ':status')?.[1];
      const interim = status !== undefined && /^1\d\d$/.test(status);
      if (interim && endStream)
        return this.streamError(stream, ErrorCode.PROTOCOL_ERROR, 'interim response with END_STREAM');
      if (!interim) stream.responded = true;
    }
    if (endStream) stream.remoteClosed = true;
    stream.events.onHeaders(fields, endStream);
    if (endStream) this.maybeClose(stream);
  }

  private onRstStream(f: Frame): void {
    if (f.payload.length !== 4) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM of the wrong size');
    const stream = this.streamOf(f);
    if (!stream || stream.isFinished) return;
    const code = f.payload.readUInt32BE(0);
    this.finishStream(stream, () =>
      stream.events.onReset(code, `${this.options.origin} reset the stream (${errorName(code)})`),
    );
  }

  private onSettings(f: Frame): void {
    if (f.streamId !== 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (f.flags & Flag.ACK) {
      if (f.payload.length !== 0)
        throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if (f.payload.length % 6 !== 0)
      throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS of the wrong size');
    for (let off = 0; off < f.payload.length; off += 6) {
      const id = f.payload.readUInt16BE(off);
      const value = f.payload.readUInt32BE(off + 2);
      switch (id) {
        case Setting.ENABLE_PUSH:
          // A server may not set it at all (§6.5.2); 0 is harmless, anything else is an error.
          if (value !== 0)
            throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH ${value} from a server`);
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW)
            throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1');
          const delta = value - this.peerInitialWindow;
          this.peerInitialWindow = value;
          for (const s of this.streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_WINDOW)
              throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'stream window above 2^31-1');
          }
          break;
        }
        case Setting.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME_SIZE || value > 16_777_215) {
            throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value} out of range`);
          }
          this.peerMaxFrameSize = value;
          break;
        case Setting.MAX_CONCURRENT_STREAMS:
          this.peerMaxStreams = value;
          break;
        default:
          break; // HEADER_TABLE_SIZE: our encoder never uses the table; unknown ids are ignored
      }
    }
    this.queue(frame(FrameType.SETTINGS, Flag.ACK, 0));
    this.options.onSettings?.(this.peerMaxStreams);
    this.openWaiting();
    for (const s of this.streams.values()) this.sendStreamData(s);
  }

  private onPing(f: Frame): void {
    if (f.streamId !== 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
    if (f.payload.length !== 8) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING of the wrong size');
    if (f.flags & Flag.ACK) this.pingSentAt = 0;
    else this.queue(pingFrame(f.payload, true));
  }

  private onGoaway(f: Frame): void {
    if (f.streamId !== 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (f.payload.length < 8) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY too short');
    const last = f.payload.readUInt32BE(0) & MAX_WINDOW;
    const code = f.payload.readUInt32BE(4);
    const first = this.goawayLastId === null;
    this.goawayLastId = Math.min(last, this.goawayLastId ?? last);
    if (first) this.options.onUnusable();
    // Streams above the last id were not processed (§6.8): refused, so safe to retry.
    for (const s of [...this.streams.values()]) {
      if (s.id > this.goawayLastId) {
        this.finishStream(s, () =>
          s.events.onReset(
            ErrorCode.REFUSED_STREAM,
            `${this.options.origin} sent GOAWAY (${errorName(code)}) before stream ${s.id}`,
          ),
        );
      }
    }
    for (const { stream: s } of this.waiting.splice(0)) {
      this.finishStream(s, () =>
        s.events.onReset(ErrorCode.REFUSED_STREAM, `${this.options.origin} sent GOAWAY (${errorName(code)})`),
      );
    }
    if (this.streams.size === 0) this.endSocket();
  }

  private onWindowUpdate(f: Frame): void {
    if (f.payload.length !== 4)
      throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE of the wrong size');
    const increment = f.payload.readUInt32BE(0) & MAX_WINDOW;
    if (f.streamId === 0) {
      if (increment === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW)
        throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
      for (const s of this.streams.values()) this.sendStreamData(s);
      return;
    }
    const stream = this.streamOf(f);
    if (!stream || stream.isFinished) return;
    if (increment === 0) return this.streamError(stream, ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW)
      return this.streamError(stream, ErrorCode.FLOW_CONTROL_ERROR, 'stream window above 2^31-1');
    this.sendStreamData(stream);
  }

  // ---- stream and connection ends ---------------------------------------------------------

  /** RST_STREAM with `code` for a backend's error on one stream; the exchange hears `reason`. */
  private streamError(stream: H2Stream, code: number, reason: string): void {
    this.queue(rstStreamFrame(stream.id, code));
    this.finishStream(stream, () => stream.events.onReset(null, `${this.options.origin}: ${reason}`));
  }

  /** Both directions done: forget the stream. */
  private maybeClose(stream: H2Stream): void {
    if (stream.localClosed && stream.remoteClosed) this.finishStream(stream, null);
  }

  private finishStream(stream: H2Stream, notify: (() => void) | null): void {
    if (!stream.markFinished()) return;
    if (stream.id !== 0) this.streams.delete(stream.id);
    notify?.();
    stream.events.onClosed();
    this.openWaiting();
    if (this.streams.size === 0 && this.waiting.length === 0) {
      this.disarmLiveness();
      if (this.goawayLastId !== null || this.exhausted) this.endSocket();
    }
  }

  private openWaiting(): void {
    // Streams that already waited here still open on an exhausted connection (ids remain).
    while (
      this.waiting.length > 0 &&
      this.streams.size < this.peerMaxStreams &&
      !this.closed &&
      this.goawayLastId === null
    ) {
      this.waiting.shift()?.open();
    }
  }

  private connectionError(code: number, message: string): void {
    if (this.closed) return;
    this.pending.clear();
    const last = this.nextStreamId - 2;
    this.queue(goawayFrame(Math.max(0, last), code, message.slice(0, 200)));
    this.flush();
    this.fail(`${this.options.origin} broke HTTP/2 (${errorName(code)}): ${message}`);
  }

  /** The connection is over: every stream fails with `reason`, the socket is destroyed. */
  private fail(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this.disarmLiveness();
    this.options.onUnusable();
    const all = [...this.streams.values(), ...this.waiting.splice(0).map((w) => w.stream)];
    for (const s of all) this.finishStream(s, () => s.events.onReset(null, reason));
    this.flush();
    this.socket.destroy();
  }

  private endSocket(): void {
    this.flush();
    this.socket.end();
    this.closed = true;
    this.closeReason ||= `connection to ${this.options.origin} closed`;
  }

  // ---- liveness -----------------------------------------------------------------------------

  private armLiveness(): void {
    if (this.liveness) return;
    this.liveness = setInterval(() => this.checkLiveness(), (this.options.pingAfterMs ?? PING_AFTER_MS) / 2);
    this.liveness.unref();
  }

  private disarmLiveness(): void {
    if (this.liveness) clearInterval(this.liveness);
    this.liveness = null;
    this.pingSentAt = 0;
  }

  private checkLiveness(): void {
    const now = performance.now();
    const timeout = this.options.pingTimeoutMs ?? PING_TIMEOUT_MS;
    if (this.pingSentAt > 0) {
      if (now - this.pingSentAt > timeout)
        this.fail(`${this.options.origin} did not answer a PING within ${timeout} ms`);
      return;
    }
    if (now - this.lastReceived >= (this.options.pingAfterMs ?? PING_AFTER_MS)) {
      this.pingSentAt = now;
      this.queue(pingFrame(Buffer.alloc(8), false));
    }
  }

  // ---- output -------------------------------------------------------------------------------

  private queue(buf: Buffer): void {
    this.output.append(buf);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushNow);
  }

  private readonly flushNow = (): void => this.flush();

  private flush(): void {
    this.flushScheduled = false;
    if (this.pending.size > 0) for (const s of [...this.pending]) this.sendStreamData(s);
    const data = this.output.take();
    if (!data || this.socket.destroyed) return;
    // Once written (at once for a plain socket, when encrypted and sent for TLS) the buffer
    // serves a later turn.
    this.socket.write(data, () => this.output.recycle(data));
  }
}

function frameName(type: number): string {
  return Object.entries(FrameType).find(([, v]) => v === type)?.[0] ?? `frame 0x${type.toString(16)}`;
}
