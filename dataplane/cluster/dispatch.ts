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
    end: () => {},
    abort: () => {},
    pause: () => {},
    resume: () => {},
    onRequestDrain: null,
  };
}

/** An exchange handle that forwards to `inner` and runs `onAbort` after an abort of the caller's. */
export function watchAbort(inner: UpstreamExchange, onAbort: () => void): UpstreamExchange {
  return {
    write: (chunk) => inner.write(chunk),
    end: (trailers?: Fields | null) => inner.end(trailers),
    abort: () => {
      inner.abort();
      onAbort();
    },
    pause: () => inner.pause(),
    resume: () => inner.resume(),
    get onRequestDrain() {
      return inner.onRequestDrain;
    },
    set onRequestDrain(fn: (() => void) | null) {
      inner.onRequestDrain = fn;
    },
  };
}
