/**
 * The server role of HTTP/3: request streams in (HEADERS, DATA*, trailing HEADERS, validated as
 * RFC 9114 §4.1 says), responses out, with backpressure both ways, and GOAWAY-based drain.
 */
import type { Fields } from '../http/fields.js';
import type { ClientStream, RequestHandler } from '../proxy/client-stream.js';
import type { QuicConnection } from '../quic/connection.js';
import type { QuicStreamTransport } from '../quic/stream-transport.js';
import { certificateSubject } from '../tls/subject.js';
import { FieldSectionTooLarge, H3, H3Error } from './errors.js';
import { END_OF_STREAM, encodeFrameHeader, encodeHeadersFrame, Frame, FrameReader, type FrameSink } from './frames.js';
import { decodeFieldSection } from './qpack/decoder.js';
import { type H3Request, MalformedRequest, type RequestLimits, validateRequest } from './request-validation.js';
import { H3Session, READ_BUFFER, type SessionOptions } from './session.js';
import { StreamGuard } from './stream-guard.js';

export type { Fields };

export interface ServerSessionOptions extends SessionOptions, RequestLimits {
  /** A request stream's HEADERS must be complete this long after the stream opened (408 otherwise). */
  requestHeaderTimeoutMs: number;
}

enum In {
  Headers,
  Body,
  Trailers,
  /** Answered before dispatch (malformed, too large): further input is discarded. */
  Discard,
  Done,
}

export class H3ServerStream implements FrameSink, ClientStream {
  readonly protocol = 'h3';
  request: H3Request | null = null;
  /** Request body bytes received so far. */
  bodyBytes = 0;
  /** The request HEADERS were read before the handshake completed: 0-RTT early data (RFC 8470). */
  earlyData = false;
  /** Called with each request body chunk, lent for the call only (ClientStream.onData). */
  onData: ((chunk: Uint8Array) => void) | null = null;
  /** The body bytes `onData` takes now (ClientStream.bodyRoom): a read is no larger. */
  bodyRoom: (() => number) | null = null;
  /** The request body ended, with trailers if the client sent any. */
  onEnd: ((trailers: Fields | null) => void) | null = null;
  /** The exchange was aborted: client reset, connection gone, or a malformed body. */
  onAbort: ((code: number, reason: string) => void) | null = null;
  /** The response send queue drained after `write` returned false. */
  onDrain: (() => void) | null = null;
  headersSent = false;
  private finalSent = false;
  private outDone = false;
  private inState = In.Headers;
  private paused = false;
  private readonly reader: FrameReader;

  constructor(
    readonly id: number,
    readonly session: H3ServerSession<QuicStreamTransport>,
  ) {
    this.reader = new FrameReader(session.maxFieldSectionSize);
  }

  get quic(): QuicStreamTransport {
    return this.session.quic;
  }

  get clientIp(): string {
    return this.quic.peer.host;
  }

  get connectionKey(): string {
    return this.quic.originalDcid;
  }

  get clientCertSubject(): string | undefined {
    return this.session.clientCertSubject;
  }

  get responseEnded(): boolean {
    return this.outDone;
  }

  /** The stream is open and its request HEADERS have not arrived (completely) yet. */
  get awaitingHeaders(): boolean {
    return this.inState === In.Headers;
  }

  /** The HEADERS did not complete in time: answer 408 and discard whatever still comes. */
  headersTimedOut(timeoutMs: number): void {
    if (this.inState === In.Headers) this.reject(408, `request headers not complete within ${timeoutMs} ms`);
  }

  /** Stops reading the request body; QUIC flow control then slows the client down. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    // No packet may arrive to prompt us: read what quiche already holds, now. An upstream
    // connection wakes its streams waiting for window one after another and gives the next only
    // what this one left: read later, every woken stream would find room and most would find it
    // taken again (~1,100 wake-ups per 1 MiB upload instead of ~45). Inside another read this
    // waits for a microtask (H3Session.onStreamReadable).
    this.session.onStreamReadable(this.id);
  }

  /** Called by the session when quiche has data for this stream. */
  readAvailable(): void {
    while (!this.paused && this.inState !== In.Done) {
      let buf = READ_BUFFER;
      if (this.inState === In.Body && this.bodyRoom && !this.bodyComplete) {
        // Body frames are no larger than the bytes read: what the backend cannot take now stays
        // in QUIC (under the client's flow control) instead of being copied here.
        const room = this.bodyRoom();
        if (room <= 0) {
          this.paused = true; // the consumer's resume() follows once there is room
          return;
        }
        if (room < buf.length) buf = READ_BUFFER.subarray(0, room);
      }
      const r = this.quic.streamRead(this.id, buf);
      if (r === null) return;
      const [n, fin] = r;
      if (n > 0) {
        if (this.inState === In.Discard) {
          // Already answered; keep draining so flow control does not stall the connection.
        } else {
          this.reader.push(READ_BUFFER.subarray(0, n), this);
        }
      }
      if (fin) {
        this.onFin();
        return;
      }
      if (n === 0) return;
    }
  }

  /** All of a declared content-length arrived: only trailers or the FIN can follow, and need no room. */
  private get bodyComplete(): boolean {
    const length = this.request?.contentLength ?? -1;
    return length >= 0 && this.bodyBytes >= length;
  }

  private onFin(): void {
    const state = this.inState;
    this.inState = In.Done;
    // Answered early (or already finished): the rest of the request does not matter.
    if (state === In.Discard || state === In.Done) return this.maybeDone();
    if (this.reader.midFrame) throw new H3Error(H3.FRAME_ERROR, 'stream ended inside a frame');
    if (state === In.Headers) {
      throw new H3Error(H3.REQUEST_INCOMPLETE, 'request stream ended before HEADERS', 'stream');
    }
    const req = this.request as H3Request;
    if (req.contentLength >= 0 && this.bodyBytes !== req.contentLength) {
      this.malformed(`body of ${this.bodyBytes} bytes does not match content-length ${req.contentLength}`);
      return;
    }
    this.onEnd?.(this.trailers);
    this.maybeDone();
  }

  private trailers: Fields | null = null;

  onFrameData(chunk: Uint8Array): void {
    switch (this.inState) {
      case In.Body: {
        this.bodyBytes += chunk.length;
        const req = this.request as H3Request;
        if (req.contentLength >= 0 && this.bodyBytes > req.contentLength) {
          this.malformed(`body exceeds content-length ${req.contentLength}`);
          return;
        }
        // A view of READ_BUFFER, lent for the call (ClientStream.onData): no copy per QUIC read.
        this.onData?.(chunk);
        return;
      }
      case In.Discard:
      case In.Done:
        // Answered early (the answer may complete while the same read still holds body frames):
        // the rest of the request is unwanted, not an error. After a real FIN nothing arrives.
        return;
      default:
        throw new H3Error(
          H3.FRAME_UNEXPECTED,
          this.inState === In.Headers ? 'DATA before HEADERS' : 'DATA after trailers',
        );
    }
  }

  onFrame(type: number, payload: Uint8Array): void {
    if (type !== Frame.HEADERS) {
      // Unknown types never reach here; every other known type is forbidden on a request stream.
      throw new H3Error(H3.FRAME_UNEXPECTED, `frame 0x${type.toString(16)} on a request stream`);
    }
    if (this.inState === In.Discard || this.inState === In.Done) return;
    if (this.inState === In.Trailers) throw new H3Error(H3.FRAME_UNEXPECTED, 'HEADERS after trailers');
    let fields: Array<[string, string]>;
    try {
      fields = decodeFieldSection(payload, this.session.maxFieldSectionSize);
    } catch (e) {
      if (e instanceof FieldSectionTooLarge) return this.reject(431, e.message);
      throw e;
    }
    if (this.inState === In.Headers) {
      let req: H3Request;
      try {
        req = validateRequest(fields, this.session.limits);
      } catch (e) {
        if (e instanceof MalformedRequest) return this.reject(e.status, e.message);
        throw e;
      }
      this.request = req;
      // Read before the handshake completed, the request came in 0-RTT packets and may be a
      // replay. One read after completion cannot be: a replayer cannot finish the handshake.
      this.earlyData = this.quic.inEarlyData;
      this.inState = In.Body;
      this.session.dispatch(this, req);
      return;
    }
    // Trailers: no pseudo-headers allowed (§4.3).
    for (const [name] of fields) {
      if (name.charCodeAt(0) === 0x3a) return this.malformed(`pseudo-header ${name} in trailers`);
    }
    this.trailers = fields;
    this.inState = In.Trailers;
  }

  /** Answers before dispatch and discards the rest of the request. */
  private reject(status: number, reason: string): void {
    this.inState = In.Discard;
    this.session.handler.onRejected(this, status, reason);
  }

  /** A malformed message after dispatch: abort the exchange, answer 400 if still possible. */
  private malformed(reason: string): void {
    this.inState = In.Discard;
    this.onAbort?.(H3.MESSAGE_ERROR, reason);
    this.clearCallbacks();
    if (!this.headersSent) this.session.handler.onRejected(this, 400, reason);
    else this.reset(H3.MESSAGE_ERROR);
  }

  /** The rest of the request body is unwanted (answered early): drop it, STOP_SENDING at the end. */
  discardRequestBody(): void {
    if (this.inState === In.Body || this.inState === In.Trailers) {
      this.inState = In.Discard;
      this.clearCallbacks();
    }
  }

  /** Sends a response HEADERS frame (1xx interim or final). */
  respond(status: number, headers: Fields, endStream = false): void {
    if (this.outDone || this.finalSent) return;
    const fields: Array<readonly [string, string]> = [[':status', String(status)]];
    for (const h of headers) fields.push(h);
    this.writeHeaders(fields, endStream);
    if (status >= 200) {
      this.finalSent = true;
      this.headersSent = true;
    }
  }

  private writeHeaders(fields: Fields, fin: boolean): void {
    this.quic.streamWrite(this.id, encodeHeadersFrame(fields), fin);
    if (fin) this.finishOutput();
  }

  /** Writes body bytes as one DATA frame. Returns false when the caller should wait for onDrain. */
  write(chunk: Uint8Array): boolean {
    if (this.outDone) return true;
    if (chunk.length === 0) return true;
    this.quic.streamWrite(this.id, encodeFrameHeader(Frame.DATA, chunk.length), false);
    return this.quic.streamWrite(this.id, chunk, false);
  }

  /** Ends the response, with trailers when given. */
  end(trailers?: Fields | null): void {
    if (this.outDone) return;
    if (trailers && trailers.length > 0) this.writeHeaders(trailers, true);
    else {
      this.quic.streamWrite(this.id, END_OF_STREAM, true);
      this.finishOutput();
    }
  }

  /** Aborts both directions with an HTTP/3 error code. */
  reset(code: number): void {
    if (!this.outDone) this.quic.streamShutdown(this.id, 'write', code);
    if (this.inState !== In.Done) this.quic.streamShutdown(this.id, 'read', code);
    this.outDone = true;
    this.inState = In.Done;
    this.clearCallbacks();
    this.session.forgetStream(this);
  }

  private finishOutput(): void {
    this.outDone = true;
    if (this.paused && (this.inState === In.Body || this.inState === In.Trailers)) {
      // Answered while the request body waited (for the backend's room or backpressure): the
      // exchange is over and nobody resumes it, so the rest is unwanted.
      this.inState = In.Discard;
      this.clearCallbacks();
    }
    if (this.inState === In.Discard) {
      // The response is complete and the rest of the request is unwanted (§4.1).
      this.quic.streamShutdown(this.id, 'read', H3.NO_ERROR);
      this.inState = In.Done;
    }
    this.maybeDone();
  }

  private maybeDone(): void {
    if (this.outDone && this.inState === In.Done) this.session.forgetStream(this);
  }

  /** The peer aborted one direction, or the connection closed. */
  aborted(code: number, reason: string, resetCode: number = H3.REQUEST_CANCELLED): void {
    const cb = this.onAbort;
    this.clearCallbacks();
    if (!this.outDone) this.quic.streamShutdown(this.id, 'write', resetCode);
    if (this.inState !== In.Done) this.quic.streamShutdown(this.id, 'read', resetCode);
    this.outDone = true;
    this.inState = In.Done;
    this.session.forgetStream(this);
    cb?.(code, reason);
  }

  private clearCallbacks(): void {
    this.onData = null;
    this.bodyRoom = null;
    this.onEnd = null;
    this.onAbort = null;
    this.onDrain = null;
  }
}

/**
 * `C` defaults to the concrete connection so the data plane's wiring (connection guard: age,
 * shedding) keeps its types; the session itself uses only `QuicStreamTransport`.
 */
export class H3ServerSession<C extends QuicStreamTransport = QuicConnection> extends H3Session<C> {
  readonly streams = new Map<number, H3ServerStream>();
  readonly limits: RequestLimits;
  /** Once set, streams with ids at or above it are refused (after our GOAWAY). */
  private goawayId = -1;
  private highestStreamId = -4;
  /** Called when the session has no streams left after a drain began. */
  onDrained: (() => void) | null = null;
  /** Called once when the connection is gone. */
  onGone: (() => void) | null = null;
  /** The verified client certificate's subject (mTLS), set once the handshake completed. */
  clientCertSubject: string | undefined = undefined;
  /** Rapid-reset and slow-header limits of this connection. */
  private readonly guard: StreamGuard;
  private headerTimer: NodeJS.Timeout | null = null;

  constructor(
    quic: C,
    readonly handler: RequestHandler,
    options: ServerSessionOptions,
  ) {
    super(quic, true, options);
    this.limits = { maxHeaderCount: options.maxHeaderCount };
    this.guard = new StreamGuard(options.requestHeaderTimeoutMs);
  }

  get maxFieldSectionSize(): number {
    return this.options.maxFieldSectionSize;
  }

  override onEstablished(): void {
    // mTLS: the handshake only completes with a verified client certificate (see
    // buildQuicServerConfig); remember whose it is for the backends.
    const chain = this.quic.peerCertChain();
    if (chain && chain.length > 0) this.clientCertSubject = certificateSubject(chain[0]);
    super.onEstablished();
  }

  protected onRequestStreamReadable(streamId: number): void {
    let stream = this.streams.get(streamId);
    if (!stream) {
      if ((streamId & 1) !== 0) return; // server-initiated bidi: we open none
      if (this.goawayId >= 0 && streamId >= this.goawayId) {
        // Past our GOAWAY: the client may retry it elsewhere (§5.2).
        this.quic.streamShutdown(streamId, 'read', H3.REQUEST_REJECTED);
        this.quic.streamShutdown(streamId, 'write', H3.REQUEST_REJECTED);
        return;
      }
      stream = new H3ServerStream(streamId, this);
      this.streams.set(streamId, stream);
      if (streamId > this.highestStreamId) this.highestStreamId = streamId;
    }
    stream.readAvailable();
    // Nearly every request's HEADERS arrive with the stream's first packet: only the rest are
    // tracked, so the common path costs nothing here.
    if (stream.awaitingHeaders && this.streams.get(streamId) === stream) this.awaitHeaders(stream);
    else if (this.guard.awaitingHeaders > 0) this.guard.stopAwaitingHeaders(streamId);
  }

  private awaitHeaders(stream: H3ServerStream): void {
    if (!this.guard.startAwaitingHeaders(stream.id, performance.now())) {
      // Too many half-sent requests on one connection already: refuse this one (the client may retry).
      stream.reset(H3.REQUEST_REJECTED);
      return;
    }
    this.armHeaderTimer();
  }

  private armHeaderTimer(): void {
    if (this.headerTimer || this.closed) return;
    const next = this.guard.nextDeadline();
    if (next === null) return;
    this.headerTimer = setTimeout(this.onHeaderTimer, Math.max(1, Math.ceil(next - performance.now())));
    this.headerTimer.unref?.();
  }

  private readonly onHeaderTimer = (): void => {
    this.headerTimer = null;
    if (this.closed) return;
    for (const id of this.guard.takeExpired(performance.now())) {
      this.streams.get(id)?.headersTimedOut(this.guard.headerTimeoutMs);
    }
    this.armHeaderTimer();
  };

  dispatch(stream: H3ServerStream, request: H3Request): void {
    this.handler.onRequest(stream, request);
  }

  protected resetStream(streamId: number, code: number): void {
    const s = this.streams.get(streamId);
    // Our own verdict on the stream (H3_EXCESSIVE_LOAD, H3_MESSAGE_ERROR, ...): the client gets that code.
    if (s) s.aborted(code, 'stream error', code);
    else {
      this.quic.streamShutdown(streamId, 'read', code);
      this.quic.streamShutdown(streamId, 'write', code);
    }
  }

  forgetStream(stream: H3ServerStream): void {
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
    if (this.guard.awaitingHeaders > 0) this.guard.stopAwaitingHeaders(stream.id);
    // Only while draining: the answer may still be unacknowledged (see unacknowledged()).
    if (this.goawayId >= 0) this.finishing.add(stream.id);
    if (this.goawayId >= 0 && this.streams.size === 0) this.onDrained?.();
  }

  /** Streams answered during a drain whose bytes the client has not all acknowledged yet. */
  private readonly finishing = new Set<number>();

  /**
   * How many answered streams still wait for the client's ACKs. quiche forgets a stream once
   * everything on it is acknowledged; closing the connection before that would throw away the
   * end of a response that is already "finished" for the application.
   */
  unacknowledged(): number {
    for (const id of this.finishing) {
      if (!this.quic.streamAlive(id)) this.finishing.delete(id); // collected (or stopped): nothing left to deliver
    }
    return this.finishing.size;
  }

  protected onRequestStreamAborted(streamId: number, direction: 'read' | 'write', code: number): void {
    const s = this.streams.get(streamId);
    if (!s) return;
    // A reset request body or a refused response both end the exchange for the proxy.
    if (direction === 'read' && s.responseEnded) return;
    const premature = !s.responseEnded;
    s.aborted(code, direction === 'read' ? 'client reset the stream' : 'client stopped reading');
    if (premature && !this.guard.onPrematureReset(performance.now())) {
      this.closeWith(H3.EXCESSIVE_LOAD, 'too many request streams reset by the client');
    }
  }

  onStreamDrained(streamId: number): void {
    this.streams.get(streamId)?.onDrain?.();
  }

  /** Begins a graceful drain: GOAWAY with the first unprocessed stream id; existing streams finish. */
  beginDrain(): void {
    if (this.goawayId >= 0 || this.closed) return;
    this.goawayId = this.highestStreamId + 4;
    for (const id of this.streams.keys()) this.finishing.add(id);
    if (this.quic.isEstablished) this.sendGoaway(this.goawayId);
    if (this.streams.size === 0) this.onDrained?.();
  }

  protected onSessionClosed(): void {
    if (this.headerTimer) clearTimeout(this.headerTimer);
    this.headerTimer = null;
    for (const s of [...this.streams.values()]) s.aborted(H3.REQUEST_CANCELLED, 'connection closed');
    this.streams.clear();
    this.onGone?.();
  }
}
