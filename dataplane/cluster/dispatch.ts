/**
 * The decorator shape of the upstream path, after undici's `Dispatcher.compose`: a dispatch
 * function takes a request and a handler and returns the exchange handle; an interceptor takes a
 * dispatch function and returns one that wraps the handler (retries, the circuit breaker,
 * metrics) and, when it must see aborts, the exchange.
 */
import type { OverloadReason } from '../metrics.js';
import type { Fields, UpstreamExchange, UpstreamHandler, UpstreamRequest } from '../upstream/dispatcher.js';
import { UpstreamError } from '../upstream/errors.js';

export type DispatchFn = (request: UpstreamRequest, handler: UpstreamHandler) => UpstreamExchange;
export type DispatchInterceptor = (dispatch: DispatchFn) => DispatchFn;

/** `compose(d, a, b)` is `a(b(d))`: the first interceptor is the outermost. */
export function compose(dispatch: DispatchFn, ...interceptors: DispatchInterceptor[]): DispatchFn {
  let d = dispatch;
  for (let i = interceptors.length - 1; i >= 0; i--) d = (interceptors[i] as DispatchInterceptor)(d);
  return d;
}

/**
 * No backend of the cluster could take the attempt (none in service, every circuit open, every
 * one at its in-flight limit): nothing reached a backend. Raised above the per-backend stages, so
 * no breaker sees it.
 */
export class NoBackendError extends UpstreamError {
  constructor(readonly reason: OverloadReason) {
    super('connect', `no backend can take the request: ${reason}`);
    this.name = 'NoBackendError';
  }
}

/** The handle of an exchange that never started (its handler already had onError). */
export function closedExchange(): UpstreamExchange {
  return {
    write: () => true,
    bodyRoom: () => Number.POSITIVE_INFINITY,
    end: () => {},
    abort: () => {},
    pause: () => {},
    resume: () => {},
    onRequestDrain: null,
  };
}

/**
 * One stage of one exchange as one object: the handler the inner dispatch reports to and the
 * handle the outer caller holds, forwarding both ways; a stage overrides what it watches. (Each
 * stage used to be a handler of closures plus a handle of closures per attempt: about a quarter
 * of the data plane's allocations per request, and most of what reached the old generation.)
 */
export abstract class ExchangeStage implements UpstreamHandler, UpstreamExchange {
  /** The inner exchange: null until the inner dispatch returned. */
  protected inner: UpstreamExchange | null = null;

  constructor(protected readonly handler: UpstreamHandler) {}

  /** Dispatches `request` with this stage as the handler; returns this stage as the handle. */
  run(dispatch: DispatchFn, request: UpstreamRequest): UpstreamExchange {
    this.inner = dispatch(request, this);
    return this;
  }

  onInformational(status: number, headers: Fields): void {
    this.handler.onInformational(status, headers);
  }

  onResponseStart(status: number, headers: Fields, endStream: boolean): void {
    this.handler.onResponseStart(status, headers, endStream);
  }

  onData(chunk: Uint8Array): boolean {
    return this.handler.onData(chunk);
  }

  onComplete(trailers: Fields | null): void {
    this.handler.onComplete(trailers);
  }

  onError(error: UpstreamError): void {
    this.handler.onError(error);
  }

  write(chunk: Uint8Array): boolean {
    return this.inner ? this.inner.write(chunk) : true;
  }

  bodyRoom(): number {
    return this.inner ? this.inner.bodyRoom() : Number.POSITIVE_INFINITY;
  }

  end(trailers?: Fields | null): void {
    this.inner?.end(trailers);
  }

  /** Aborts the inner exchange, then runs `aborted` (the caller's abort, seen by this stage). */
  abort(): void {
    this.inner?.abort();
    this.aborted();
  }

  protected aborted(): void {}

  pause(): void {
    this.inner?.pause();
  }

  resume(): void {
    this.inner?.resume();
  }

  get onRequestDrain(): (() => void) | null {
    return this.inner?.onRequestDrain ?? null;
  }

  set onRequestDrain(fn: (() => void) | null) {
    if (this.inner) this.inner.onRequestDrain = fn;
  }
}
