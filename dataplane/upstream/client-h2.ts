/**
 * HTTP/2 upstream client: one multiplexed `node:http2` session per backend, reused by every
 * exchange, replaced when it dies (error, GOAWAY, close). `http://` origins use cleartext HTTP/2
 * with prior knowledge; `https://` origins use TLS with ALPN h2.
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

export class H2Client implements Dispatcher {
  private session: http2.ClientHttp2Session | null = null;
  private active = 0;
  private closing = false;

  constructor(private readonly options: H2ClientOptions) {}

  get inFlight(): number {
    return this.active;
  }

  /** The live session, or a new one. Requests may be issued before it connects; http2 queues them. */
  private getSession(): http2.ClientHttp2Session {
    const s = this.session;
    if (s && !s.closed && !s.destroyed) return s;
    const { origin, timeouts, tls } = this.options;
    // node's default 10 MB session-memory cap is reached by one busy upstream session carrying
    // hundreds of streams (each with flow-control windows of data): nghttp2 then refuses new
    // streams with ENHANCE_YOUR_CALM (502s in bursts under load). Per-stream buffering is bounded
    // by backpressure; this only lifts the session-wide accounting cap.
    const session = http2.connect(origin, { ...tls, peerMaxConcurrentStreams: 1000, maxSessionMemory: 256 });
    this.session = session;
    const connectTimer = setTimeout(() => {
      session.destroy(new UpstreamError('connect', `connect to ${origin} timed out after ${timeouts.connectMs} ms`));
    }, timeouts.connectMs);
    session.once('connect', () => clearTimeout(connectTimer));
    const retire = () => {
      clearTimeout(connectTimer);
      if (this.session === session) this.session = null;
    };
    // Errors reach each stream too; the session-level handler only retires the session.
    session.on('error', retire);
    session.on('close', retire);
    session.on('goaway', retire);
    session.unref();
    return session;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamExchange {
    const pseudo = { ':method': request.method, ':path': request.path, ':authority': request.authority };
    const headers = nodeHeaderObject(request.headers, Object.assign(Object.create(null) as NodeHeaderObject, pseudo));
    return new H2Exchange(this, request, headers, handler);
  }

  /** Opens the HTTP/2 stream for an exchange (called by H2Exchange). */
  openStream(headers: http2.OutgoingHttpHeaders, endStream: boolean): http2.ClientHttp2Stream {
    // With a body the stream waits after its last DATA ('wantTrailers'), so request trailers
    // (gRPC) can follow; without trailers it ends with an empty DATA frame.
    return this.getSession().request(headers, { endStream, waitForTrailers: !endStream });
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
    if (this.closing && this.active === 0) this.session?.close();
  }

  async close(): Promise<void> {
    this.closing = true;
    const s = this.session;
    if (!s || this.active > 0) return;
    await new Promise<void>((resolve) => s.close(resolve));
  }

  destroy(): void {
    this.closing = true;
    this.session?.destroy();
    this.session = null;
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
    try {
      stream = client.openStream(headers, !request.hasBody);
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
