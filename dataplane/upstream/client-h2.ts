/**
 * HTTP/2 upstream client: `node:http2` sessions per backend, shared by every exchange, as many as
 * the backend's stream limit asks for, replaced when they die (error, GOAWAY, close). `http://`
 * origins use cleartext HTTP/2 with prior knowledge; `https://` origins use TLS with ALPN h2.
 */
import http2 from 'node:http2';
import type { UpstreamTlsOptions } from '../../lib/upstream-tls.js';
import { fieldsFromNodeHeaders, type NodeHeaderObject, nodeHeaderObject, withoutHopByHop } from '../http/fields.js';
import type {
  Dispatcher,
  Fields,
  UpstreamExchange,
  UpstreamHandler,
  UpstreamRequest,
  UpstreamTimeouts,
} from './dispatcher.js';
import { classifyUpstreamFailure, UpstreamError } from './errors.js';

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL, NGHTTP2_PROTOCOL_ERROR } = http2.constants;

/** Node's synchronous refusals of a header list it will not encode: the request's fault. */
const UNSENDABLE_REQUEST = new Set([
  'ERR_HTTP2_INVALID_HEADER_VALUE',
  'ERR_HTTP2_INVALID_CONNECTION_HEADERS',
  'ERR_HTTP2_HEADER_SINGLE_VALUE',
  'ERR_HTTP2_INVALID_PSEUDOHEADER',
  'ERR_INVALID_HTTP_TOKEN',
  'ERR_INVALID_CHAR',
]);

/** A backend's response head or trailers as fields, without what stays on the backend hop. */
const responseFields = (h: http2.IncomingHttpHeaders): Fields => withoutHopByHop(fieldsFromNodeHeaders(h));

/** Request-body bytes buffered per upstream stream before the client is paused. */
const REQUEST_BODY_BUFFER = 256 * 1024;

export interface H2ClientOptions {
  /** `http://host:port` or `https://host:port`. */
  origin: string;
  timeouts: UpstreamTimeouts;
  /** TLS settings for https origins (CA, verification, SNI, client certificate). */
  tls?: UpstreamTlsOptions;
}

export type { UpstreamTlsOptions };

/**
 * Streams a new session may carry until the backend's SETTINGS name its own limit: RFC 9113
 * §5.1.2 recommends a server allow at least 100 (nginx allows 128, nghttpd 100).
 */
const ASSUMED_MAX_STREAMS = 100;
/** Sessions per backend at most (per worker): past it new streams queue on the least busy session. */
const MAX_SESSIONS = 32;
/** A session other than the first that has carried no stream for this long is closed. */
const SPARE_IDLE_MS = 30_000;

/** One HTTP/2 connection to the backend and the streams open on it. */
class PooledSession {
  streams = 0;
  usable = true;
  idleTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly session: http2.ClientHttp2Session,
    /** The backend's SETTINGS_MAX_CONCURRENT_STREAMS once its SETTINGS arrived; assumed until then. */
    public maxStreams: number,
  ) {}

  get hasRoom(): boolean {
    return this.usable && this.streams < this.maxStreams;
  }
}

/**
 * HTTP/2 upstream client. It keeps to the backend's SETTINGS_MAX_CONCURRENT_STREAMS the way
 * Envoy's HTTP/2 pool does: a stream goes on the first session with room, and when every session
 * is full another is opened (up to MAX_SESSIONS; past that nghttp2 holds the stream until one
 * ends). Streams beyond the backend's limit would otherwise be refused (REFUSED_STREAM: 502s,
 * then an open circuit breaker) by any backend with a finite limit.
 */
export class H2Client implements Dispatcher {
  private sessions: PooledSession[] = [];
  /** The backend's last announced stream limit: a new session assumes it until its own SETTINGS. */
  private learnedMaxStreams = ASSUMED_MAX_STREAMS;
  private limitKnown = false;
  private active = 0;
  private closing = false;

  constructor(private readonly options: H2ClientOptions) {}

  get inFlight(): number {
    return this.active;
  }

  /** Live sessions (for tests and stats). */
  get sessionCount(): number {
    return this.sessions.length;
  }

  /** A session with room for one more stream: an existing one, a new one, or the least busy. */
  private pick(): PooledSession {
    let least: PooledSession | null = null;
    for (const p of this.sessions) {
      // Until the backend has said its limit once, a cold burst waits on the first session
      // (nghttp2 holds streams past the assumed 100) rather than opening sessions that would each
      // send 100 streams a backend with a lower limit refuses.
      if (p.hasRoom || (!this.limitKnown && p.usable)) return p;
      if (!least || p.streams < least.streams) least = p;
    }
    if (least && this.sessions.length >= MAX_SESSIONS) return least;
    return this.connect();
  }

  /** Opens a session; requests may be issued before it connects (http2 queues them). */
  private connect(): PooledSession {
    const { origin, timeouts, tls } = this.options;
    // node's default 10 MB session-memory cap is reached by one busy upstream session carrying
    // hundreds of streams (each with flow-control windows of data): nghttp2 then refuses new
    // streams with ENHANCE_YOUR_CALM (502s in bursts under load). Per-stream buffering is bounded
    // by backpressure; this only lifts the session-wide accounting cap.
    const assumed = this.learnedMaxStreams;
    const session = http2.connect(origin, { ...tls, peerMaxConcurrentStreams: assumed, maxSessionMemory: 256 });
    const pooled = new PooledSession(session, assumed);
    this.sessions.push(pooled);
    const connectTimer = setTimeout(() => {
      session.destroy(new UpstreamError('connect', `connect to ${origin} timed out after ${timeouts.connectMs} ms`));
    }, timeouts.connectMs);
    session.once('connect', () => clearTimeout(connectTimer));
    session.on('remoteSettings', (settings) => {
      // 0 would refuse every stream (RFC 9113 §5.1.2): such a session takes no new ones.
      pooled.maxStreams = settings.maxConcurrentStreams ?? 2 ** 31;
      this.learnedMaxStreams = Math.max(1, Math.min(pooled.maxStreams, 2 ** 31));
      this.limitKnown = true;
    });
    const retire = () => {
      clearTimeout(connectTimer);
      this.retire(pooled);
    };
    // Errors reach each stream too; the session-level handler only retires the session.
    session.on('error', retire);
    session.on('close', retire);
    session.on('goaway', retire);
    session.unref();
    return pooled;
  }

  /** Takes a session out of the pool; its open streams finish on it. */
  private retire(pooled: PooledSession): void {
    pooled.usable = false;
    if (pooled.idleTimer) clearTimeout(pooled.idleTimer);
    pooled.idleTimer = null;
    const i = this.sessions.indexOf(pooled);
    if (i >= 0) this.sessions.splice(i, 1);
  }

  /** Called by the exchange when its stream closed: the stream's slot on its session is free. */
  streamClosed(pooled: PooledSession): void {
    pooled.streams--;
    if (pooled.streams > 0 || !pooled.usable || pooled.idleTimer || this.sessions[0] === pooled) return;
    pooled.idleTimer = setTimeout(() => {
      pooled.idleTimer = null;
      if (pooled.streams > 0 || !pooled.usable) return;
      this.retire(pooled);
      pooled.session.close();
    }, SPARE_IDLE_MS);
    pooled.idleTimer.unref();
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamExchange {
    const pseudo = { ':method': request.method, ':path': request.path, ':authority': request.authority };
    const headers = nodeHeaderObject(request.headers, Object.assign(Object.create(null) as NodeHeaderObject, pseudo));
    return new H2Exchange(this, request, headers, handler);
  }

  /**
   * Opens the HTTP/2 stream for an exchange (called by H2Exchange, which calls streamClosed with
   * the returned session when the stream closes).
   */
  openStream(
    headers: http2.OutgoingHttpHeaders,
    endStream: boolean,
  ): { stream: http2.ClientHttp2Stream; pooled: PooledSession } {
    const pooled = this.pick();
    // With a body the stream waits after its last DATA ('wantTrailers'), so request trailers
    // (gRPC) can follow; without trailers it ends with an empty DATA frame.
    const stream = pooled.session.request(headers, { endStream, waitForTrailers: !endStream });
    pooled.streams++;
    if (pooled.idleTimer) clearTimeout(pooled.idleTimer);
    pooled.idleTimer = null;
    return { stream, pooled };
  }

  get timeouts(): UpstreamTimeouts {
    return this.options.timeouts;
  }

  get origin(): string {
    return this.options.origin;
  }

  exchangeStarted(): void {
    this.active++;
  }

  exchangeEnded(): void {
    this.active--;
    if (this.closing && this.active === 0) for (const p of this.sessions) p.session.close();
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.active > 0) return;
    const sessions = this.sessions.map((p) => p.session);
    await Promise.all(sessions.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  destroy(): void {
    this.closing = true;
    const sessions = this.sessions;
    this.sessions = [];
    for (const p of sessions) {
      if (p.idleTimer) clearTimeout(p.idleTimer);
      p.session.destroy();
    }
  }
}

class H2Exchange implements UpstreamExchange {
  onRequestDrain: (() => void) | null = null;
  /** Null when node refused to open it (the exchange then fails on the next microtask). */
  private readonly stream: http2.ClientHttp2Stream | null;
  private headersTimer: NodeJS.Timeout | null;
  private done = false;
  private responded = false;
  private requestTrailers: Fields | null = null;

  constructor(
    private readonly client: H2Client,
    request: UpstreamRequest,
    headers: http2.OutgoingHttpHeaders,
    private readonly handler: UpstreamHandler,
  ) {
    client.exchangeStarted();
    const { timeouts, origin } = client;
    let stream: http2.ClientHttp2Stream;
    let pooled: PooledSession;
    try {
      ({ stream, pooled } = client.openStream(headers, !request.hasBody));
    } catch (e) {
      // Invalid header values and sessions closing underneath us surface here, synchronously.
      // The caller may write the body or end the request before the failure is reported:
      // every method below treats a missing stream as an exchange that is already over.
      this.stream = null;
      this.headersTimer = null;
      const kind = UNSENDABLE_REQUEST.has((e as NodeJS.ErrnoException).code ?? '') ? 'request_rejected' : 'protocol';
      queueMicrotask(() =>
        this.fail(new UpstreamError(kind, `cannot send request to ${origin}: ${(e as Error).message}`)),
      );
      return;
    }
    this.stream = stream;
    if (request.hasBody) stream.once('wantTrailers', () => this.sendRequestTrailers(stream));
    this.headersTimer = setTimeout(() => {
      this.fail(
        new UpstreamError('headers_timeout', `no response headers from ${origin} within ${timeouts.headersMs} ms`),
      );
    }, timeouts.headersMs);
    stream.setTimeout(timeouts.idleMs, () => {
      if (this.responded) this.fail(new UpstreamError('idle_timeout', `${origin} idle for ${timeouts.idleMs} ms`));
    });
    stream.on('headers', (h) => {
      if (this.done) return; // aborted: more interim responses may still be queued
      const status = Number(h[':status']);
      if (status >= 100 && status < 200) handler.onInformational(status, responseFields(h));
    });
    let declaredLength = -1;
    let received = 0;
    stream.on('response', (h, flags) => {
      this.clearHeadersTimer();
      this.responded = true;
      const cl = h['content-length'];
      const status = Number(h[':status']);
      // HEAD, 204 and 304 answers never have content: their content-length describes the
      // representation (RFC 9110 §8.6), not bytes to expect.
      const hasContent = request.method !== 'HEAD' && status !== 204 && status !== 304;
      if (typeof cl === 'string' && /^\d+$/.test(cl) && hasContent) declaredLength = Number(cl);
      // HEADERS with END_STREAM: the whole response (gRPC's trailers-only answer). The client must
      // get it the same way: its status would otherwise look like headers with trailers to come.
      // A body the headers promise but never send is a failure, reported at 'end'.
      const endStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0 && declaredLength <= 0;
      handler.onResponseStart(status, responseFields(h), endStream);
    });
    stream.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (!this.done && !handler.onData(chunk)) stream.pause();
    });
    let trailers: Fields | null = null;
    stream.on('trailers', (h) => {
      trailers = responseFields(h);
    });
    stream.on('end', () => {
      if (this.done) return;
      if (!this.responded) return; // 'close' reports what went wrong
      // node also ends the readable side when the session dies mid-body: a stream reset or a body
      // shorter than its content-length is a failure, never a complete response.
      const code = stream.rstCode;
      if (
        (code !== undefined && code !== http2.constants.NGHTTP2_NO_ERROR) ||
        (declaredLength >= 0 && received < declaredLength)
      ) {
        this.fail(
          new UpstreamError(
            'reset',
            `${origin} ended the response early (${received} of ${declaredLength < 0 ? 'unknown' : declaredLength} bytes, code ${code ?? 'none'})`,
          ),
        );
        return;
      }
      this.finish();
      handler.onComplete(trailers);
    });
    stream.on('drain', () => this.onRequestDrain?.());
    stream.on('error', (err: NodeJS.ErrnoException) => {
      // RST_STREAM(PROTOCOL_ERROR) on a live session before any response: the backend's verdict
      // on this one request (or nghttp2's on this one response), not on the backend.
      if (
        !this.responded &&
        err.code === 'ERR_HTTP2_STREAM_ERROR' &&
        stream.rstCode === NGHTTP2_PROTOCOL_ERROR &&
        !stream.session?.destroyed
      ) {
        this.fail(new UpstreamError('request_rejected', `${origin} reset the request as malformed (PROTOCOL_ERROR)`));
        return;
      }
      // A stream with an error of its own was open on a connected session (queued ones fail with
      // ERR_HTTP2_STREAM_CANCEL, which the classifier reads as not connected).
      this.fail(classifyUpstreamFailure(err, origin, true));
    });
    stream.on('close', () => {
      client.streamClosed(pooled);
      if (this.done) return;
      const code = stream.rstCode;
      if (code === NGHTTP2_REFUSED_STREAM) this.fail(new UpstreamError('refused', `${origin} refused the stream`));
      else this.fail(new UpstreamError('reset', `${origin} closed the stream (code ${code ?? 'none'})`));
    });
  }

  private clearHeadersTimer(): void {
    if (this.headersTimer) clearTimeout(this.headersTimer);
    this.headersTimer = null;
  }

  private finish(): void {
    this.done = true;
    this.clearHeadersTimer();
    this.client.exchangeEnded();
  }

  private fail(error: UpstreamError): void {
    if (this.done) return;
    this.finish();
    if (this.stream && !this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
    this.handler.onError(error);
  }

  write(chunk: Uint8Array): boolean {
    const stream = this.stream;
    if (this.done || !stream) return true;
    stream.write(chunk);
    // http2's own 16 KiB mark would pause the client every few packets; keep a deeper buffer so
    // the upload stays pipelined ('drain' still fires once the buffer empties).
    return stream.writableLength < REQUEST_BODY_BUFFER;
  }

  end(trailers?: Fields | null): void {
    const stream = this.stream;
    if (this.done || !stream) return;
    if (trailers && trailers.length > 0) this.requestTrailers = trailers;
    stream.end();
  }

  /** After the last DATA frame: the request's trailers, or none (the stream then just ends). */
  private sendRequestTrailers(stream: http2.ClientHttp2Stream): void {
    const t = Object.create(null) as http2.OutgoingHttpHeaders;
    for (const [k, v] of this.requestTrailers ?? []) t[k] = v;
    try {
      stream.sendTrailers(t);
    } catch (e) {
      // Node refuses some fields (connection-specific ones): inside an event handler that must not throw.
      this.fail(new UpstreamError('request_rejected', `cannot send request trailers: ${(e as Error).message}`));
    }
  }

  abort(): void {
    if (this.done) return;
    this.finish();
    if (this.stream && !this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
  }

  pause(): void {
    if (!this.done) this.stream?.pause();
  }

  resume(): void {
    if (!this.done) this.stream?.resume();
  }
}
