/**
 * HTTP/2 upstream client: Spooky's own HTTP/2 (h2/connection.ts: framing, HPACK, flow control)
 * on `net`/`tls` sockets, pooled per backend. `http://` origins use cleartext HTTP/2 with prior
 * knowledge; `https://` origins use TLS with ALPN h2.
 *
 * The pool keeps to the backend's SETTINGS_MAX_CONCURRENT_STREAMS the way Envoy's HTTP/2 pool
 * does: a stream goes on the first connection with room, and when every connection is full
 * another is opened (up to MAX_CONNECTIONS; past that streams wait on the least busy one until
 * a slot frees). Streams beyond the backend's limit would otherwise be refused.
 */
import net from 'node:net';
import tls from 'node:tls';
import { backendServername, type UpstreamTlsOptions } from '../../lib/upstream-tls.js';
import { CONNECTION_SPECIFIC, HOP_BY_HOP } from '../http/fields.js';
import type {
  Dispatcher,
  Fields,
  UpstreamExchange,
  UpstreamHandler,
  UpstreamRequest,
  UpstreamTimeouts,
} from './dispatcher.js';
import { UpstreamError } from './errors.js';
import { ExchangeTimers } from './exchange-timers.js';
import { ASSUMED_MAX_STREAMS, H2Connection, type H2Stream, type StreamEvents } from './h2/connection.js';
import { ErrorCode } from './h2/frames.js';

/** Connections per backend at most (per worker). */
const MAX_CONNECTIONS = 32;
/** A connection other than the first that has carried no stream for this long is closed. */
const SPARE_IDLE_MS = 30_000;

export interface H2ClientOptions {
  /** `http://host:port` or `https://host:port`. */
  origin: string;
  timeouts: UpstreamTimeouts;
  /** TLS settings for https origins (CA, verification, SNI, client certificate). */
  tls?: UpstreamTlsOptions;
  /** Tests: the stream id past which a connection is retired (default near 2^31). */
  lastStreamId?: number;
}

export type { UpstreamTlsOptions };

/** One connection to the backend and what the pool knows of it. */
class PooledConnection {
  /** TCP (and TLS) established: a failure from now on may have reached the backend. */
  connected = false;
  usable = true;
  idleTimer: NodeJS.Timeout | null = null;
  conn!: H2Connection;

  get streams(): number {
    return this.conn.streamCount;
  }

  get hasRoom(): boolean {
    return this.usable && this.conn.streamCount < this.conn.peerMaxStreams;
  }
}

export class H2Client implements Dispatcher {
  private connections: PooledConnection[] = [];
  /** Until the backend's SETTINGS arrived once, a cold burst stays on the first connection. */
  private limitKnown = false;
  /** The backend's last announced stream limit: a new connection assumes it until its own SETTINGS. */
  private learnedMaxStreams = ASSUMED_MAX_STREAMS;
  private active = 0;
  private closing = false;
  private readonly host: string;
  private readonly port: number;
  private readonly secure: boolean;

  constructor(private readonly options: H2ClientOptions) {
    const url = new URL(options.origin);
    this.secure = url.protocol === 'https:';
    this.host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    this.port = Number(url.port) || (this.secure ? 443 : 80);
  }

  get inFlight(): number {
    return this.active;
  }

  /** Live connections (tests). */
  get sessionCount(): number {
    return this.connections.length;
  }

  get origin(): string {
    return this.options.origin;
  }

  get timeouts(): UpstreamTimeouts {
    return this.options.timeouts;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamExchange {
    this.active++;
    return new H2Exchange(this, request, handler);
  }

  /** A connection with room for one more stream: an existing one, a new one, or the least busy. */
  pick(): PooledConnection {
    let least: PooledConnection | null = null;
    for (const p of this.connections) {
      if (p.hasRoom || (!this.limitKnown && p.usable)) return p;
      if (p.usable && (!least || p.streams < least.streams)) least = p;
    }
    if (least && this.connections.length >= MAX_CONNECTIONS) return least;
    return this.connect();
  }

  private connect(): PooledConnection {
    const { origin, timeouts, tls: tlsOptions } = this.options;
    const pooled = new PooledConnection();
    const socket = this.secure
      ? tls.connect({
          ...tlsOptions,
          host: this.host,
          port: this.port,
          servername: backendServername(this.host, tlsOptions?.servername),
          ALPNProtocols: ['h2'],
        })
      : net.connect({ host: this.host, port: this.port });
    const connectTimer = setTimeout(() => {
      pooled.conn.destroy(`cannot connect to ${origin}: connect timed out after ${timeouts.connectMs} ms`);
    }, timeouts.connectMs);
    socket.once(this.secure ? 'secureConnect' : 'connect', () => {
      clearTimeout(connectTimer);
      if (this.secure && (socket as tls.TLSSocket).alpnProtocol !== 'h2') {
        pooled.conn.destroy(`cannot connect to ${origin}: it did not agree to HTTP/2 (ALPN)`);
        return;
      }
      pooled.connected = true;
    });
    socket.once('close', () => clearTimeout(connectTimer));
    socket.unref();
    pooled.conn = new H2Connection(socket, {
      origin,
      initialMaxStreams: this.learnedMaxStreams,
      lastStreamId: this.options.lastStreamId,
      onUnusable: () => this.retire(pooled),
      onSettings: (max) => {
        this.limitKnown = true;
        this.learnedMaxStreams = Math.max(1, Math.min(max, 2 ** 31));
        // A limit of 0 takes no new streams here; the next request opens another connection.
        if (max === 0) this.retire(pooled);
      },
    });
    this.connections.push(pooled);
    return pooled;
  }

  private retire(pooled: PooledConnection): void {
    pooled.usable = false;
    if (pooled.idleTimer) clearTimeout(pooled.idleTimer);
    pooled.idleTimer = null;
    const i = this.connections.indexOf(pooled);
    if (i >= 0) this.connections.splice(i, 1);
  }

  /** A stream on `pooled` closed: an idle spare connection closes after SPARE_IDLE_MS. */
  streamClosed(pooled: PooledConnection): void {
    if (this.closing && this.active === 0) {
      for (const p of [...this.connections]) p.conn.close();
      return;
    }
    if (pooled.streams > 0 || !pooled.usable || pooled.idleTimer || this.connections[0] === pooled) return;
    pooled.idleTimer = setTimeout(() => {
      pooled.idleTimer = null;
      if (pooled.streams > 0 || !pooled.usable) return;
      this.retire(pooled);
      pooled.conn.close();
    }, SPARE_IDLE_MS);
    pooled.idleTimer.unref();
  }

  streamOpened(pooled: PooledConnection): void {
    if (pooled.idleTimer) clearTimeout(pooled.idleTimer);
    pooled.idleTimer = null;
  }

  exchangeEnded(): void {
    this.active--;
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.active > 0) return;
    for (const p of [...this.connections]) p.conn.close();
  }

  destroy(): void {
    this.closing = true;
    const all = this.connections;
    this.connections = [];
    for (const p of all) {
      if (p.idleTimer) clearTimeout(p.idleTimer);
      p.conn.destroy();
    }
  }
}

/** RFC 9110 field-name token, lowercase as HTTP/2 requires (RFC 9113 §8.2.1). */
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
/** NUL, CR and LF are never valid in a field value (RFC 9113 §8.2.1). */
const BAD_VALUE = /[\0\r\n]/;

/** Why a request cannot go out as HTTP/2 as it is, or null. */
function unsendable(fields: Fields): string | null {
  for (const [name, value] of fields) {
    if (!FIELD_NAME.test(name)) return `field name ${JSON.stringify(name)} is not a lowercase token`;
    if (BAD_VALUE.test(value)) return `field ${name} has a value with NUL, CR or LF`;
    if (CONNECTION_SPECIFIC.has(name)) return `connection-specific field ${name}`;
    if (name === 'te' && value.trim().toLowerCase() !== 'trailers') return 'te other than trailers';
  }
  return null;
}

/** A response head or trailers as read in one pass: what the exchange needs and what it relays. */
interface ReadFields {
  /** The head's :status (0 for trailers). */
  status: number;
  /** The head's content-length value, if any. */
  contentLength: string | undefined;
  /** As relayed: no pseudo-headers, nothing that stays on the backend hop. */
  relayed: Fields;
}

/**
 * Reads a response head (`head`) or trailers in one pass: why they are malformed (RFC 9113 §8.2,
 * §8.3), or their :status, content-length and the fields to relay. Connection-specific fields are
 * malformed, so no `Connection` header can name more hop-by-hop fields here.
 */
function readFields(fields: Array<[string, string]>, head: boolean): ReadFields | string {
  let status = 0;
  let regular = false;
  let contentLength: string | undefined;
  const relayed: Array<readonly [string, string]> = [];
  for (const field of fields) {
    const [name, value] = field;
    if (name.charCodeAt(0) === 0x3a) {
      if (!head || name !== ':status' || regular || status !== 0) return `pseudo-header ${name} out of place`;
      status = /^\d{3}$/.test(value) ? Number(value) : -1;
      continue;
    }
    regular = true;
    if (!FIELD_NAME.test(name)) return `field name ${JSON.stringify(name)} is not a lowercase token`;
    if (BAD_VALUE.test(value)) return `field ${name} has a value with NUL, CR or LF`;
    if (CONNECTION_SPECIFIC.has(name)) return `connection-specific field ${name}`;
    if (name === 'content-length' && contentLength === undefined) contentLength = value;
    if (!HOP_BY_HOP.has(name)) relayed.push(field);
  }
  if (head && status === 0) return 'no :status';
  if (head && status < 0) return ':status is not three digits';
  return { status, contentLength, relayed };
}

class H2Exchange implements UpstreamExchange, StreamEvents {
  onRequestDrain: (() => void) | null = null;
  private readonly stream: H2Stream | null = null;
  private readonly pooled: PooledConnection | null = null;
  private readonly timers: ExchangeTimers;
  private done = false;
  private responded = false;
  private declaredLength = -1;
  private received = 0;
  private trailers: Fields | null = null;

  constructor(
    private readonly client: H2Client,
    private readonly request: UpstreamRequest,
    private readonly handler: UpstreamHandler,
  ) {
    const { origin, timeouts } = client;
    this.timers = new ExchangeTimers(timeouts, origin, (e) => this.fail(e));
    const problem = unsendable(request.headers);
    if (problem) {
      // The caller may write the body or end the request before hearing of it: every method
      // below treats a missing stream as an exchange that is already over.
      queueMicrotask(() =>
        this.fail(new UpstreamError('request_rejected', `cannot send request to ${origin}: ${problem}`)),
      );
      return;
    }
    const fields: Array<readonly [string, string]> = [
      [':method', request.method],
      [':scheme', origin.startsWith('https:') ? 'https' : 'http'],
      [':authority', request.authority],
      [':path', request.path],
      ...request.headers,
    ];
    const pooled = client.pick();
    this.pooled = pooled;
    this.stream = pooled.conn.request(fields, !request.hasBody, this);
    client.streamOpened(pooled);
    this.timers.startHeaders();
  }

  // ---- StreamEvents (from the connection) ----------------------------------------------------

  onHeaders(fields: Array<[string, string]>, endStream: boolean): void {
    if (this.done) return;
    const origin = this.client.origin;
    const read = readFields(fields, !this.responded);
    if (typeof read === 'string') {
      this.stream?.cancel(ErrorCode.PROTOCOL_ERROR);
      this.fail(new UpstreamError('protocol', `${origin} sent a malformed response: ${read}`));
      return;
    }
    if (this.responded) {
      // Trailers (the connection checked END_STREAM).
      this.trailers = read.relayed;
      this.complete();
      return;
    }
    const { status, contentLength: cl } = read;
    if (status >= 100 && status < 200) {
      this.handler.onInformational(status, read.relayed);
      return;
    }
    this.responded = true;
    this.timers.responded();
    // HEAD, 204 and 304 answers never have content: their content-length describes the
    // representation (RFC 9110 §8.6), not bytes to expect.
    const hasContent = this.request.method !== 'HEAD' && status !== 204 && status !== 304;
    if (cl !== undefined && /^\d+$/.test(cl) && hasContent) this.declaredLength = Number(cl);
    // HEADERS with END_STREAM: the whole response (gRPC's trailers-only answer), which the client
    // must get the same way. A body the headers promise but never send is a failure.
    this.handler.onResponseStart(status, read.relayed, endStream && this.declaredLength <= 0);
    if (endStream && !this.done) this.complete();
  }

  onData(chunk: Buffer, endStream: boolean): void {
    if (this.done) return;
    this.timers.activity();
    if (chunk.length > 0) {
      this.received += chunk.length;
      if (!this.handler.onData(chunk)) this.stream?.pause();
    }
    if (endStream && !this.done) this.complete();
  }

  onReset(code: number | null, reason: string): void {
    if (this.done) return;
    if (code === ErrorCode.REFUSED_STREAM) {
      this.fail(new UpstreamError('refused', `${this.client.origin} refused the stream (${reason})`));
    } else if (code === ErrorCode.PROTOCOL_ERROR && !this.responded) {
      // RST_STREAM(PROTOCOL_ERROR) before any response: the backend's verdict on this one request.
      this.fail(
        new UpstreamError('request_rejected', `${this.client.origin} reset the request as malformed (PROTOCOL_ERROR)`),
      );
    } else if (code === null && !this.pooled?.connected) {
      // Nothing reached the backend: a refused or timed-out connect, a TLS failure.
      const origin = this.client.origin;
      const why = reason.startsWith('cannot connect')
        ? reason
        : `cannot connect to ${origin}: ${reason.replace(`connection lost with ${origin}: `, '')}`;
      this.fail(new UpstreamError('connect', why));
    } else {
      this.fail(new UpstreamError('reset', reason));
    }
  }

  onDrain(): void {
    if (this.done) return;
    this.timers.activity();
    this.onRequestDrain?.();
  }

  onClosed(): void {
    if (this.pooled) this.client.streamClosed(this.pooled);
  }

  // ---- the exchange's end ---------------------------------------------------------------------

  /** The response ended: complete, unless its body fell short of its content-length. */
  private complete(): void {
    if (this.declaredLength >= 0 && this.received < this.declaredLength) {
      this.fail(
        new UpstreamError(
          'reset',
          `${this.client.origin} ended the response early (${this.received} of ${this.declaredLength} bytes)`,
        ),
      );
      return;
    }
    this.finish();
    // A complete answer before the whole request body (RFC 9113 §8.1): the rest of the body is
    // not needed. Left half-open, the stream would hold its slot here and at the backend until
    // the backend reset it, which it need not do.
    if (this.stream && !this.stream.requestEnding) this.stream.cancel();
    this.handler.onComplete(this.trailers);
  }

  private finish(): void {
    this.done = true;
    this.timers.clear();
    this.client.exchangeEnded();
  }

  private fail(error: UpstreamError): void {
    if (this.done) return;
    this.finish();
    this.stream?.cancel();
    this.handler.onError(error);
  }

  // ---- UpstreamExchange (from the proxy) ------------------------------------------------------

  write(chunk: Uint8Array): boolean {
    const stream = this.stream;
    if (this.done || !stream) return true;
    this.timers.activity();
    return stream.write(chunk);
  }

  bodyRoom(): number {
    const stream = this.stream;
    return this.done || !stream ? Number.POSITIVE_INFINITY : stream.bodyRoom();
  }

  end(trailers?: Fields | null): void {
    const stream = this.stream;
    if (this.done || !stream) return;
    const t = trailers && trailers.length > 0 ? trailers : null;
    if (t && unsendable(t)) {
      this.fail(new UpstreamError('request_rejected', `cannot send request trailers: ${unsendable(t)}`));
      return;
    }
    stream.end(t ? t.map(([n, v]) => [n, v] as [string, string]) : null);
  }

  abort(): void {
    if (this.done) return;
    this.finish();
    this.stream?.cancel();
  }

  pause(): void {
    if (!this.done) this.stream?.pause();
  }

  resume(): void {
    if (!this.done) this.stream?.resume();
  }
}
