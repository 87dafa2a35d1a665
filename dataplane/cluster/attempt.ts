/**
 * The stages of one attempt on one backend, innermost first: `checkResponse` turns a response
 * that cannot be relayed into a `bad_response` error, `circuitBreaker` feeds the backend's
 * breaker and latency, `accountAttempt` counts the attempt and frees its in-flight slot.
 */
import type { UpstreamExchange } from '../upstream/dispatcher.js';
import { UpstreamError } from '../upstream/errors.js';
import { type DispatchInterceptor, watchAbort } from './dispatch.js';

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
  return (dispatch) => (request, handler) => {
    let done = false;
    let interim = 0;
    let exchange: UpstreamExchange | null = null;
    const reject = (what: string) => {
      done = true;
      exchange?.abort();
      handler.onError(new UpstreamError('bad_response', `${backendId} answered with ${what}`));
    };
    exchange = dispatch(request, {
      onInformational: (status, fields) => {
        if (done) return;
        if (!validStatus(status, true)) return reject(`interim status ${status}`);
        if (++interim > MAX_INTERIM_RESPONSES) return reject(`more than ${MAX_INTERIM_RESPONSES} interim responses`);
        handler.onInformational(status, fields);
      },
      onResponseStart: (status, fields, endStream) => {
        if (done) return;
        if (!validStatus(status, false)) return reject(`status ${status}`);
        handler.onResponseStart(status, fields, endStream);
      },
      onData: (chunk) => (done ? true : handler.onData(chunk)),
      onComplete: (trailers) => {
        if (done) return;
        done = true;
        handler.onComplete(trailers);
      },
      onError: (err) => {
        if (done) return;
        done = true;
        handler.onError(err);
      },
    });
    return watchAbort(exchange, () => {
      done = true;
    });
  };
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
  return (dispatch) => (request, handler) => {
    const started = now();
    let done = false;
    const exchange = dispatch(request, {
      onInformational: (status, fields) => handler.onInformational(status, fields),
      onResponseStart: (status, fields, endStream) => {
        target.record(true, now() - started);
        handler.onResponseStart(status, fields, endStream);
      },
      onData: (chunk) => handler.onData(chunk),
      onComplete: (trailers) => {
        done = true;
        handler.onComplete(trailers);
      },
      onError: (err) => {
        done = true;
        if (err.countsAgainstBackend) target.record(false, null);
        else if (err.kind !== 'aborted') target.onCancel();
        handler.onError(err);
      },
    });
    return watchAbort(exchange, () => {
      if (done) return;
      done = true;
      target.onCancel();
    });
  };
}

/** One attempt's reservation on a backend (its in-flight slot) and its metrics. */
export interface AttemptLease {
  /** Response headers arrived after `latencyMs`. */
  responded(latencyMs: number): void;
  /** The attempt ended (`ok`, the error kind, or `aborted`): frees the slot; once only. */
  release(outcome: string): void;
}

/** Releases the attempt's lease however it ends, with the outcome for the metrics. */
export function accountAttempt(lease: AttemptLease, now: () => number = () => performance.now()): DispatchInterceptor {
  return (dispatch) => (request, handler) => {
    const started = now();
    const exchange = dispatch(request, {
      onInformational: (status, fields) => handler.onInformational(status, fields),
      onResponseStart: (status, fields, endStream) => {
        lease.responded(now() - started);
        handler.onResponseStart(status, fields, endStream);
      },
      onData: (chunk) => handler.onData(chunk),
      onComplete: (trailers) => {
        lease.release('ok');
        handler.onComplete(trailers);
      },
      onError: (err) => {
        lease.release(err.kind);
        handler.onError(err);
      },
    });
    return watchAbort(exchange, () => lease.release('aborted'));
  };
}
