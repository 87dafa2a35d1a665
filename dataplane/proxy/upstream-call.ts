/**
 * One client request's way to a backend: pick (healthy, undrained, circuit-closed, with room),
 * reserve its in-flight slot, dispatch, stream both ways, and on a failure before the response
 * retry on another backend when the method is idempotent, no body byte has been sent, the
 * failure is one `resilience.retries.on` names, and the retry budget allows it.
 */
import type { RuntimeBackend } from '../../model/config/runtime.js';
import type { BackendRuntime } from '../backend-runtime.js';
import type { BackendStates } from '../backend-states.js';
import { requestHashKey } from '../balancer/hash-key.js';
import { H3 } from '../h3/errors.js';
import type { DataPlaneMetrics, OverloadReason } from '../metrics.js';
import type { PoolState, Snapshot } from '../snapshot.js';
import type { UpstreamAgent } from '../upstream/agent.js';
import type { UpstreamExchange } from '../upstream/dispatcher.js';
import { UpstreamError } from '../upstream/errors.js';
import type { ClientRequest, ClientStream, Fields } from './client-stream.js';

/** RFC 9110 §9.2.2: safe to repeat. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/**
 * Interim (1xx) responses relayed per request; one more fails it with 502 (docs/traffic.md).
 * Real exchanges have one or two (100 Continue, 103 Early Hints).
 */
export const MAX_INTERIM_RESPONSES = 8;

/** RFC 9110 §15: a status is three digits, 100–599 being the classes defined. */
function validStatus(status: number, interim: boolean): boolean {
  return Number.isInteger(status) && (interim ? status >= 100 && status < 200 : status >= 200 && status <= 599);
}

/** What the call needs from the forwarder that owns it. */
export interface CallHost {
  readonly agent: UpstreamAgent;
  readonly backendStates: BackendStates;
  readonly runtime: BackendRuntime;
  readonly metrics: DataPlaneMetrics;
  responseFields(fields: Fields, requestId: string | null): Fields;
  /** A response Spooky makes itself (503 shed, 502/504 after the last attempt). */
  generate(status: number, message: string, extra?: Fields): void;
  /** The client-visible outcome is settled (for the access log). */
  finished(): void;
  /** The backend failed after the response started: reset the client stream. */
  failedMidResponse(err: UpstreamError): void;
}

/** The access-log record the call fills in. */
export interface CallRecord {
  readonly requestId: string;
  backend: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  retries: number;
  error: string | undefined;
}

interface Attempt {
  readonly backend: RuntimeBackend;
  readonly exchange: UpstreamExchange;
  readonly started: number;
  responded: boolean;
  done: boolean;
  /** A retry: counts against the retry budget until it ends. */
  readonly retry: boolean;
}

export class UpstreamCall {
  private readonly tried = new Set<string>();
  private attempt: Attempt | null = null;
  private requestEnded = false;
  private trailers: Fields | null = null;
  private retriesLeft: number;
  private settled = false;
  private nextIsRetry = false;
  private readonly hashKey: string | undefined;

  constructor(
    private readonly host: CallHost,
    private readonly snap: Snapshot,
    private readonly pool: PoolState,
    private readonly stream: ClientStream,
    private readonly request: ClientRequest,
    private readonly headers: Fields,
    private readonly record: CallRecord,
  ) {
    const retries = snap.config.resilience.retries;
    this.retriesLeft = IDEMPOTENT.has(request.method) ? retries.attempts : 0;
    const p = pool.pool;
    this.hashKey =
      p.policy === 'sticky-cid'
        ? stream.connectionKey
        : p.policy === 'consistent-hash' && p.hashKey !== undefined
          ? requestHashKey(p.hashKey, request, stream.clientIp)
          : undefined;
  }

  start(): void {
    const { stream } = this;
    const maxBody = this.snap.config.performance.max_request_body_bytes;
    this.host.runtime.retryBudget.requestStarted();
    stream.onDrain = () => this.attempt?.exchange.resume();
    stream.onData = (chunk) => {
      this.record.bytesIn += chunk.length;
      const a = this.attempt;
      if (this.record.bytesIn > maxBody) {
        a?.exchange.abort();
        this.release(a, 'aborted');
        stream.onData = null;
        stream.onEnd = null;
        if (!stream.headersSent) this.fail(413, `request body over ${maxBody} bytes`);
        else stream.reset(H3.EXCESSIVE_LOAD);
        return;
      }
      if (a && !a.exchange.write(chunk)) stream.pause();
    };
    stream.onEnd = (trailers) => {
      this.requestEnded = true;
      this.trailers = trailers;
      if (this.hasBody) this.attempt?.exchange.end(trailers);
    };
    stream.onAbort = (code, reason) => {
      const a = this.attempt;
      a?.exchange.abort();
      if (a && !a.done) this.host.runtime.breaker(a.backend.id).onCancel();
      this.release(a, 'aborted');
      this.record.error = `client aborted: ${reason} (0x${code.toString(16)})`;
      this.record.status ||= 499;
      this.settle();
    };
    this.tryNext(null);
  }

  /** Without content-length the body's presence is known only at FIN, so the stream stays open. */
  private get hasBody(): boolean {
    return this.request.contentLength !== 0;
  }

  private tryNext(lastError: UpstreamError | null): void {
    const now = performance.now();
    const { runtime, backendStates } = this.host;
    const limits = runtime.limits;
    const eligible = (b: RuntimeBackend) =>
      !this.tried.has(b.id) &&
      backendStates.eligible(b.id) &&
      runtime.breaker(b.id).allows(now) &&
      limits.backendHasRoom(b.id);
    for (;;) {
      const backend = this.pool.balancer.pick({ hashKey: this.hashKey }, eligible);
      if (!backend) {
        if (this.nextIsRetry) this.host.runtime.retryBudget.retryEnded();
        this.nextIsRetry = false;
        if (lastError) return this.upstreamFailed(lastError);
        return this.shed(this.shedReason(now));
      }
      this.tried.add(backend.id);
      if (limits.tryAcquire(this.pool.pool.name, backend.id) !== null) continue;
      if (!runtime.breaker(backend.id).tryAcquire(now)) {
        limits.release(this.pool.pool.name, backend.id);
        continue;
      }
      this.dispatch(backend);
      return;
    }
  }

  /** Why no backend could take the request. */
  private shedReason(now: number): OverloadReason {
    const { runtime, backendStates } = this.host;
    const backends = this.pool.pool.backends;
    const inService = backends.filter((b) => backendStates.eligible(b.id));
    if (inService.length === 0) return 'no_healthy_backend';
    if (inService.every((b) => !runtime.breaker(b.id).allows(now))) return 'circuit_open';
    return 'backend_inflight';
  }

  private dispatch(backend: RuntimeBackend): void {
    this.record.backend = backend.id;
    const { stream, request } = this;
    const bodyless = request.method === 'HEAD';
    const dispatcher = this.host.agent.get(backend, this.pool.pool);
    let attempt: Attempt | null = null;
    let interim = 0;
    const exchange = dispatcher.dispatch(
      {
        method: request.method,
        path: request.path,
        authority: request.authority,
        headers: this.headers,
        hasBody: this.hasBody,
      },
      {
        onInformational: (status, fields) => {
          const a = attempt as Attempt;
          if (a.done) return;
          if (!validStatus(status, true)) return this.badResponse(a, `interim status ${status}`);
          if (++interim > MAX_INTERIM_RESPONSES) {
            return this.badResponse(a, `more than ${MAX_INTERIM_RESPONSES} interim responses`);
          }
          stream.respond(status, this.host.responseFields(fields, null));
        },
        onResponseStart: (status, fields, endStream) => {
          const a = attempt as Attempt;
          if (a.done) return;
          if (!validStatus(status, false)) return this.badResponse(a, `status ${status}`);
          a.responded = true;
          const ms = performance.now() - a.started;
          this.host.runtime.record(backend.id, true, ms);
          this.host.metrics.upstreamDuration.observe({ route: this.pool.pool.name, backend: backend.id }, ms / 1000);
          this.record.status = status;
          // A response that ended with its headers ends there for the client too (trailers-only).
          stream.respond(status, this.host.responseFields(fields, this.record.requestId), endStream);
        },
        onData: (chunk) => {
          if (bodyless) return true;
          this.record.bytesOut += chunk.length;
          return stream.write(chunk);
        },
        onComplete: (trailers) => {
          this.release(attempt);
          stream.end(trailers);
          this.settle();
        },
        onError: (err) => this.onAttemptError(attempt as Attempt, err),
      },
    );
    attempt = { backend, exchange, started: performance.now(), responded: false, done: false, retry: this.nextIsRetry };
    this.nextIsRetry = false;
    this.attempt = attempt;
    exchange.onRequestDrain = () => stream.resume();
    if (this.requestEnded && this.hasBody) exchange.end(this.trailers);
  }

  /** The backend's response cannot be relayed: stop the exchange and answer 502 instead. */
  private badResponse(a: Attempt, what: string): void {
    a.exchange.abort();
    this.onAttemptError(a, new UpstreamError('bad_response', `${a.backend.id} answered with ${what}`));
  }

  private onAttemptError(a: Attempt, err: UpstreamError): void {
    // Only failures that speak of the backend's availability feed its breaker. An idle body (a
    // client that stopped reading or sending), our own abort, a request the backend refused as
    // malformed, or a response we will not relay say nothing of it: a client could otherwise
    // open the breaker for everyone with a few bad requests. They free a half-open probe slot.
    if (err.countsAgainstBackend) this.host.runtime.record(a.backend.id, false, null);
    else if (err.kind !== 'aborted') this.host.runtime.breaker(a.backend.id).onCancel();
    this.release(a, err.kind);
    const reason = this.retryReason(a, err);
    if (reason && !this.stream.headersSent && this.retriesLeft > 0 && this.host.runtime.retryBudget.tryStartRetry()) {
      this.retriesLeft--;
      this.record.retries++;
      this.host.metrics.retries.inc({ reason });
      this.nextIsRetry = true;
      this.tryNext(err);
      return;
    }
    this.upstreamFailed(err);
  }

  /** The `resilience.retries.on` condition this failure meets, if a retry is allowed at all. */
  private retryReason(a: Attempt, err: UpstreamError): string | null {
    if (this.record.bytesIn > 0) return null; // body bytes went to the failed backend
    const on = this.snap.config.resilience.retries.on;
    const reason =
      err.kind === 'connect'
        ? 'connect-failure'
        : err.kind === 'refused'
          ? 'refused-stream'
          : err.kind === 'reset' && !a.responded
            ? 'reset-before-response'
            : null;
    return reason !== null && on.includes(reason as (typeof on)[number]) ? reason : null;
  }

  private release(a: Attempt | null, outcome = 'ok'): void {
    if (!a || a.done) return;
    a.done = true;
    this.host.metrics.upstreamRequests.inc({ route: this.pool.pool.name, backend: a.backend.id, outcome });
    this.host.runtime.release(this.pool.pool.name, a.backend.id);
    if (a.retry) this.host.runtime.retryBudget.retryEnded();
  }

  private shed(reason: OverloadReason): void {
    this.host.metrics.shed(reason);
    this.fail(503, `overloaded: ${reason}`, [['retry-after', '1']]);
  }

  private fail(status: number, message: string, extra: Fields = []): void {
    this.host.generate(status, message, extra);
    this.settle();
  }

  private upstreamFailed(err: UpstreamError): void {
    this.record.error = err.message;
    const { stream } = this;
    stream.onData = null;
    stream.onEnd = null;
    stream.onAbort = null;
    if (!stream.headersSent) {
      this.fail(err.status, err.kind === 'headers_timeout' ? 'backend timed out' : 'backend failed');
      return;
    }
    this.host.failedMidResponse(err);
    this.settle();
  }

  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.host.runtime.retryBudget.requestEnded();
    this.host.finished();
  }
}
