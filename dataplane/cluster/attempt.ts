/**
 * The stages of one attempt on one backend, innermost first: `checkResponse` turns a response
 * that cannot be relayed into a `bad_response` error, `circuitBreaker` feeds the backend's
 * breaker and latency, `accountAttempt` counts the attempt and frees its in-flight slot.
 */
import type { Fields, UpstreamHandler } from '../upstream/dispatcher.js';
import { UpstreamError } from '../upstream/errors.js';
import { type DispatchInterceptor, ExchangeStage } from './dispatch.js';

/**
 * Interim (1xx) responses relayed per request; one more fails it with 502 (docs/traffic.md).
 * Real exchanges have one or two (100 Continue, 103 Early Hints).
 */
export const MAX_INTERIM_RESPONSES = 8;

/** RFC 9110 §15: a status is three digits, 100–599 being the classes defined. */
function validStatus(status: number, interim: boolean): boolean {
  return Number.isInteger(status) && (interim ? status >= 100 && status < 200 : status >= 200 && status <= 599);
}

/** A status outside its class, or too many interim responses: abort and fail with `bad_response`. */
export function checkResponse(backendId: string): DispatchInterceptor {
  return (dispatch) => (request, handler) => new ResponseCheck(handler, backendId).run(dispatch, request);
}

class ResponseCheck extends ExchangeStage {
  private done = false;
  private interim = 0;

  constructor(
    handler: UpstreamHandler,
    private readonly backendId: string,
  ) {
    super(handler);
  }

  private reject(what: string): void {
    this.done = true;
    this.inner?.abort();
    this.handler.onError(new UpstreamError('bad_response', `${this.backendId} answered with ${what}`));
  }

  override onInformational(status: number, fields: Fields): void {
    if (this.done) return;
    if (!validStatus(status, true)) return this.reject(`interim status ${status}`);
    if (++this.interim > MAX_INTERIM_RESPONSES)
      return this.reject(`more than ${MAX_INTERIM_RESPONSES} interim responses`);
    this.handler.onInformational(status, fields);
  }

  override onResponseStart(status: number, fields: Fields, endStream: boolean): void {
    if (this.done) return;
    if (!validStatus(status, false)) return this.reject(`status ${status}`);
    this.handler.onResponseStart(status, fields, endStream);
  }

  override onData(chunk: Uint8Array): boolean {
    return this.done ? true : this.handler.onData(chunk);
  }

  override onComplete(trailers: Fields | null): void {
    if (this.done) return;
    this.done = true;
    this.handler.onComplete(trailers);
  }

  override onError(err: UpstreamError): void {
    if (this.done) return;
    this.done = true;
    this.handler.onError(err);
  }

  protected override aborted(): void {
    this.done = true;
  }
}

/** What the breaker stage reports to: the backend's breaker, latency and the adaptive limit. */
export interface BreakerTarget {
  /** Outcome of an attempt: a response (with its latency) or a failure that speaks of the backend. */
  record(ok: boolean, latencyMs: number | null): void;
  /** The attempt ended saying nothing of the backend: frees a half-open probe slot. */
  onCancel(): void;
}

/**
 * Feeds the backend's circuit breaker. Only failures that speak of the backend's availability
 * count against it. An idle body (a client that stopped reading or sending), our own abort, a
 * request the backend refused as malformed, or a response we will not relay say nothing of it: a
 * client could otherwise open the breaker for everyone with a few bad requests. They free a
 * half-open probe slot.
 */
export function circuitBreaker(
  target: BreakerTarget,
  now: () => number = () => performance.now(),
): DispatchInterceptor {
  return (dispatch) => (request, handler) => new BreakerStage(handler, target, now).run(dispatch, request);
}

class BreakerStage extends ExchangeStage {
  private readonly started: number;
  private done = false;

  constructor(
    handler: UpstreamHandler,
    private readonly target: BreakerTarget,
    private readonly now: () => number,
  ) {
    super(handler);
    this.started = now();
  }

  override onResponseStart(status: number, fields: Fields, endStream: boolean): void {
    this.target.record(true, this.now() - this.started);
    this.handler.onResponseStart(status, fields, endStream);
  }

  override onComplete(trailers: Fields | null): void {
    this.done = true;
    this.handler.onComplete(trailers);
  }

  override onError(err: UpstreamError): void {
    this.done = true;
    if (err.countsAgainstBackend) this.target.record(false, null);
    else if (err.kind !== 'aborted') this.target.onCancel();
    this.handler.onError(err);
  }

  protected override aborted(): void {
    if (this.done) return;
    this.done = true;
    this.target.onCancel();
  }
}

/** What an attempt on a backend reports when it responds and when it ends (per backend, shared). */
export interface AttemptAccount {
  /** Response headers arrived after `latencyMs`. */
  responded(latencyMs: number): void;
  /** The attempt ended (`ok`, the error kind, or `aborted`): frees its slot. Once per attempt. */
  release(outcome: string): void;
}

/** Releases the attempt's slot however it ends (once), with the outcome for the metrics. */
export function accountAttempt(
  account: AttemptAccount,
  now: () => number = () => performance.now(),
): DispatchInterceptor {
  return (dispatch) => (request, handler) => new AccountingStage(handler, account, now).run(dispatch, request);
}

class AccountingStage extends ExchangeStage {
  private readonly started: number;
  private released = false;

  constructor(
    handler: UpstreamHandler,
    private readonly account: AttemptAccount,
    private readonly now: () => number,
  ) {
    super(handler);
    this.started = now();
  }

  private release(outcome: string): void {
    if (this.released) return;
    this.released = true;
    this.account.release(outcome);
  }

  override onResponseStart(status: number, fields: Fields, endStream: boolean): void {
    this.account.responded(this.now() - this.started);
    this.handler.onResponseStart(status, fields, endStream);
  }

  override onComplete(trailers: Fields | null): void {
    this.release('ok');
    this.handler.onComplete(trailers);
  }

  override onError(err: UpstreamError): void {
    this.release(err.kind);
    this.handler.onError(err);
  }

  protected override aborted(): void {
    this.release('aborted');
  }
}
