/**
 * HTTP/1.1 upstream client: an undici keep-alive `Pool` per backend (`connections` sockets, one
 * request per socket at a time, no pipelining), driven through undici's low-level `dispatch()` so
 * both bodies stream with backpressure. It behaves like client-h2.ts: the headers and idle
 * timeouts run on the same timers with the same meaning, and errors get the same kinds.
 */

import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type { Pool, Dispatcher as Undici } from 'undici';
import { backendServername, type UpstreamTlsOptions } from '../../lib/upstream-tls.js';
import { fieldsFromRaw, HOP_BY_HOP, withoutHopByHop } from '../http/fields.js';
import type {
  Dispatcher,
  Fields,
  UpstreamExchange,
  UpstreamHandler,
  UpstreamRequest,
  UpstreamTimeouts,
} from './dispatcher.js';
import { classifyUpstreamFailure, UpstreamError } from './errors.js';
import { ExchangeTimers } from './exchange-timers.js';

/** Request-body bytes buffered per exchange before the client is paused (as in client-h2). */
const REQUEST_BODY_BUFFER = 256 * 1024;

export interface H1ClientOptions {
  /** `http://host:port` or `https://host:port`. */
  origin: string;
  timeouts: UpstreamTimeouts;
  /** TLS settings for https origins (CA, verification, SNI, client certificate). */
  tls?: UpstreamTlsOptions;
  /** Keep-alive sockets to the backend, each carrying one request at a time; default 64. */
  connections?: number;
}

type UndiciModule = typeof import('undici');
let undici: UndiciModule | null = null;

/**
 * undici, loaded with the first HTTP/1.1 backend rather than at start: it is about 5 MiB of V8
 * heap, which a data plane with only HTTP/2 backends would carry for nothing (and, at V8's
 * growing factor of 3, up to three times that in peak RSS under load).
 */
function loadUndici(): UndiciModule {
  undici ??= createRequire(import.meta.url)('undici') as UndiciModule;
  return undici;
}

export class H1Client implements Dispatcher {
  private readonly pool: Pool;
  private active = 0;
  readonly origin: string;
  readonly timeouts: UpstreamTimeouts;
  /** Constant per-request `servername`, so undici never derives one from each request's Host. */
  readonly servername: string;

  constructor(options: H1ClientOptions) {
    const { origin, timeouts, tls } = options;
    this.origin = origin;
    this.timeouts = timeouts;
    const hostname = new URL(origin).hostname.replace(/^\[(.*)\]$/, '$1');
    // SNI and the certificate name, chosen as http2.connect does: tls.servername, else the
    // origin's host name (no SNI for an IP). Left alone, undici takes them from the Host header
    // (the public authority) and reconnects whenever a request's Host differs from the last one.
    const sni = backendServername(hostname, tls?.servername);
    this.servername = sni ?? hostname;
    const { buildConnector, Pool } = loadUndici();
    const connector = buildConnector({ ...tls, allowH2: false, timeout: timeouts.connectMs });
    this.pool = new Pool(origin, {
      connections: options.connections ?? 64,
      pipelining: 1,
      allowH2: false,
      connect: (opts, callback) => connector({ ...opts, servername: sni }, callback),
      // Headers and idle timeouts run on H1Exchange's own timers, as in client-h2: undici's start
      // only once the request is on a socket, ignore uploads, and never fire while paused.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
  }

  get inFlight(): number {
    return this.active;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamExchange {
    this.active++;
    const exchange = new H1Exchange(this, handler, request.hasBody);
    exchange.start(this.pool, request);
    return exchange;
  }

  exchangeEnded(): void {
    this.active--;
  }

  /** undici's close is graceful: queued and running requests finish, then the sockets close. */
  async close(): Promise<void> {
    await this.pool.close().catch(() => {}); // already destroyed
  }

  destroy(): void {
    this.pool.destroy().catch(() => {});
  }
}

class H1Exchange implements UpstreamExchange {
  onRequestDrain: (() => void) | null = null;
  private readonly body: Readable | null;
  private controller: Undici.DispatchController | null = null;
  private readonly timers: ExchangeTimers;
  private done = false;
  /** undici put the request on a connected socket (errors before that are connect errors). */
  private started = false;
  private inDispatch = false;
  private bodyEnded = false;
  private needDrain = false;
  private wantPaused = false;
  /** An abort that came before undici handed us the request's controller. */
  private pendingAbort: Error | null = null;

  constructor(
    private readonly client: H1Client,
    private readonly handler: UpstreamHandler,
    hasBody: boolean,
  ) {
    this.timers = new ExchangeTimers(client.timeouts, client.origin, (e) => this.fail(e));
    this.body = hasBody
      ? new Readable({
          highWaterMark: REQUEST_BODY_BUFFER,
          // undici reads again once the socket drained: the buffer is below the mark.
          read: () => {
            if (!this.needDrain) return;
            this.needDrain = false;
            this.onRequestDrain?.();
          },
        })
      : null;
  }

  start(pool: Pool, request: UpstreamRequest): void {
    this.timers.startHeaders();
    // `servername` is a Request option undici's typings leave out (see H1Client's constructor).
    const opts: Undici.DispatchOptions & { servername: string } = {
      method: request.method,
      path: request.path,
      headers: requestHeaders(request),
      body: this.body,
      servername: this.client.servername,
    };
    this.inDispatch = true;
    try {
      pool.dispatch(opts, this.undiciHandler());
    } finally {
      this.inDispatch = false;
    }
  }

  private undiciHandler(): Undici.DispatchHandler {
    const { origin } = this.client;
    return {
      onRequestStart: (controller) => {
        this.controller = controller;
        this.started = true;
        if (this.pendingAbort) controller.abort(this.pendingAbort);
        else if (this.wantPaused) controller.pause();
      },
      onResponseStart: (controller, status) => {
        if (this.done) return;
        const fields = responseFields(controller.rawHeaders);
        // undici surfaces 102/103 here; a 100 it never asked for makes it drop the connection.
        if (status < 200) return this.handler.onInformational(status, fields);
        this.timers.responded();
        this.handler.onResponseStart(status, fields, false);
      },
      onResponseData: (controller, chunk) => {
        if (this.done) return;
        this.timers.activity();
        if (!this.handler.onData(chunk)) {
          this.wantPaused = true;
          controller.pause();
        }
      },
      onResponseEnd: (controller) => {
        if (this.done) return;
        const trailers = responseFields(controller.rawTrailers);
        this.finish();
        this.handler.onComplete(trailers.length > 0 ? trailers : null);
      },
      onResponseError: (_controller, err) => {
        if (this.done) return;
        const error = classifyUpstreamFailure(err, origin, this.started);
        // Bad headers fail inside pool.dispatch(): report them once the caller holds the exchange.
        if (this.inDispatch) queueMicrotask(() => this.fail(error));
        else this.fail(error);
      },
    };
  }

  private finish(): void {
    this.done = true;
    this.timers.clear();
    this.client.exchangeEnded();
  }

  /** Stops the undici request (it closes the socket: HTTP/1.1 cannot cancel one request). */
  private cancel(reason: Error): void {
    if (this.controller) this.controller.abort(reason);
    else this.pendingAbort = reason;
  }

  private fail(error: UpstreamError): void {
    if (this.done) return;
    this.finish();
    this.cancel(error);
    this.handler.onError(error);
  }

  write(chunk: Uint8Array): boolean {
    if (this.done || !this.body || this.bodyEnded) return true;
    this.timers.activity();
    // undici reads the body later: a copy (the chunk is lent for this call only).
    if (this.body.push(Buffer.from(chunk))) return true;
    this.needDrain = true;
    return false;
  }

  /** undici reads the body later: every chunk is copied, so there is no room to wait for. */
  bodyRoom(): number {
    return Number.POSITIVE_INFINITY;
  }

  end(_trailers?: Fields | null): void {
    if (this.done || !this.body || this.bodyEnded) return;
    this.bodyEnded = true;
    // Request trailers are dropped: HTTP/1.1 can only carry them in a chunked body, most servers
    // and frameworks (Node's included) never hand them to the application, and undici has no
    // way to send them. Nothing that needs request trailers (gRPC) runs over HTTP/1.1.
    this.body.push(null);
  }

  abort(): void {
    if (this.done) return;
    this.finish();
    this.cancel(new UpstreamError('aborted', `exchange with ${this.client.origin} aborted`));
  }

  pause(): void {
    if (this.done) return;
    this.wantPaused = true;
    this.controller?.pause();
  }

  resume(): void {
    if (this.done) return;
    this.wantPaused = false;
    // undici's resume parses buffered bytes synchronously, calling onData from inside resume();
    // defer it a tick, like a Node stream's resume() (client-h2), and let a later pause() win.
    process.nextTick(() => {
      if (!this.done && !this.wantPaused) this.controller?.resume();
    });
  }
}

/** Request fields for HTTP/1.1: `host` from the authority, no pseudo or connection-specific fields. */
function requestHeaders(request: UpstreamRequest): string[] {
  const out = ['host', request.authority];
  let cookie: string | null = null;
  for (const [rawName, value] of request.headers) {
    const name = rawName.toLowerCase();
    // `expect` too: undici refuses it (NotSupportedError), and the backend reads the body anyway.
    if (name.charCodeAt(0) === 0x3a || name === 'host' || name === 'expect' || HOP_BY_HOP.has(name)) continue;
    // HTTP/2 and HTTP/3 split cookies into several fields; HTTP/1.1 wants one (RFC 9113 §8.2.3).
    if (name === 'cookie') cookie = cookie === null ? value : `${cookie}; ${value}`;
    else out.push(name, value);
  }
  if (cookie !== null) out.push('cookie', cookie);
  return out;
}

/** undici's raw header list (name, value, name, value…) as fields, minus connection-specific ones. */
function responseFields(raw: Undici.DispatchController['rawHeaders']): Fields {
  // The HTTP/1.1 parser always hands over arrays (of Buffers); the object form is HTTP/2's.
  return Array.isArray(raw) ? withoutHopByHop(fieldsFromRaw(raw)) : [];
}
