/**
 * The retry stage (undici's RetryHandler shape): wraps the cluster's dispatch and, when an
 * attempt fails before the response, dispatches again (the cluster picks another backend). It
 * retries only an idempotent method, before any request body byte was sent and before any final
 * response went to the client, on a failure `resilience.retries.on` names, within the attempts
 * and the retry budget. When no other backend can take a retry, the last failure is reported.
 */
import type { Fields, UpstreamExchange, UpstreamHandler, UpstreamRequest } from '../upstream/dispatcher.js';
import type { UpstreamError } from '../upstream/errors.js';
import { type DispatchFn, type DispatchInterceptor, NoBackendError } from './dispatch.js';

/** RFC 9110 §9.2.2: safe to repeat. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export type RetryCondition = 'connect-failure' | 'refused-stream' | 'reset-before-response';

export interface RetryPolicy {
  /** Extra attempts after the first. */
  readonly attempts: number;
  readonly on: readonly RetryCondition[];
}

/** The Envoy-style budget (resilience/retry-budget.ts), shared by every request. */
export interface RetryBudgetLike {
  requestStarted(): void;
  requestEnded(): void;
  tryStartRetry(): boolean;
  retryEnded(): void;
}

export interface RetryOptions {
  readonly policy: RetryPolicy;
  readonly budget: RetryBudgetLike;
  /** A retry was started for this reason (metrics, the access log). */
  onRetry?(reason: RetryCondition): void;
}

export function retry(options: RetryOptions): DispatchInterceptor {
  return (dispatch) => (request, handler) => new RetryingExchange(dispatch, request, handler, options);
}

/** The condition a failure meets, before any response from the failed attempt. */
function conditionOf(err: UpstreamError, responded: boolean): RetryCondition | null {
  if (err.kind === 'connect') return 'connect-failure';
  if (err.kind === 'refused') return 'refused-stream';
  if (err.kind === 'reset' && !responded) return 'reset-before-response';
  return null;
}

class RetryingExchange implements UpstreamExchange {
  onRequestDrain: (() => void) | null = null;
  private inner: UpstreamExchange | null = null;
  /** Bumped per attempt: callbacks of an attempt that was replaced are dropped. */
  private generation = 0;
  private retriesLeft: number;
  private attemptIsRetry = false;
  private responseStarted = false;
  private bytesWritten = 0;
  private ended = false;
  private trailers: Fields | null = null;
  private finished = false;
  private lastError: UpstreamError | null = null;

  constructor(
    private readonly dispatch: DispatchFn,
    private readonly request: UpstreamRequest,
    readonly handler: UpstreamHandler,
    private readonly options: RetryOptions,
  ) {
    this.retriesLeft = IDEMPOTENT.has(request.method) ? options.policy.attempts : 0;
    options.budget.requestStarted();
    this.attempt();
  }

  private attempt(): void {
    const attempt = new AttemptHandler(this, ++this.generation);
    const inner = this.dispatch(this.request, attempt);
    if (!attempt.live) return;
    this.inner = inner;
    inner.onRequestDrain = this.requestDrained;
    if (this.ended) inner.end(this.trailers);
    // The caller may be waiting for room on the attempt that failed (bodyRoom 0, nothing written):
    // it asks the new attempt.
    else if (this.generation > 1) this.requestDrained();
  }

  private readonly requestDrained = () => this.onRequestDrain?.();

  /** Whether callbacks of attempt `gen` still count (it was not replaced, nothing finished). */
  isLive(gen: number): boolean {
    return gen === this.generation && !this.finished;
  }

  relayResponseStart(status: number, fields: Fields, endStream: boolean): void {
    this.responseStarted = true;
    this.handler.onResponseStart(status, fields, endStream);
  }

  completed(trailers: Fields | null): void {
    this.finish();
    this.handler.onComplete(trailers);
  }

  failed(err: UpstreamError, responded: boolean): void {
    this.endRetry();
    if (err instanceof NoBackendError && this.lastError) {
      // No other backend can take the retry: the client hears of the failure that caused it.
      this.finish();
      this.handler.onError(this.lastError);
      return;
    }
    const reason = this.retryable(err, responded);
    if (reason && this.options.budget.tryStartRetry()) {
      this.retriesLeft--;
      this.lastError = err;
      this.attemptIsRetry = true;
      this.options.onRetry?.(reason);
      this.attempt();
      return;
    }
    this.finish();
    this.handler.onError(err);
  }

  private retryable(err: UpstreamError, responded: boolean): RetryCondition | null {
    if (err instanceof NoBackendError || this.retriesLeft <= 0) return null;
    // Body bytes went to the failed backend, or the client already has a response head.
    if (this.bytesWritten > 0 || this.responseStarted) return null;
    const reason = conditionOf(err, responded);
    return reason !== null && this.options.policy.on.includes(reason) ? reason : null;
  }

  /** A retry holds budget until it ends, however it ends. */
  private endRetry(): void {
    if (!this.attemptIsRetry) return;
    this.attemptIsRetry = false;
    this.options.budget.retryEnded();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.endRetry();
    this.options.budget.requestEnded();
  }

  write(chunk: Uint8Array): boolean {
    this.bytesWritten += chunk.length;
    return this.inner ? this.inner.write(chunk) : true;
  }

  bodyRoom(): number {
    return this.inner ? this.inner.bodyRoom() : Number.POSITIVE_INFINITY;
  }

  end(trailers?: Fields | null): void {
    this.ended = true;
    this.trailers = trailers ?? null;
    this.inner?.end(trailers);
  }

  abort(): void {
    this.inner?.abort();
    this.finish();
  }

  pause(): void {
    this.inner?.pause();
  }

  resume(): void {
    this.inner?.resume();
  }
}

/** The handler of one attempt: drops the callbacks of an attempt that was replaced or finished. */
class AttemptHandler implements UpstreamHandler {
  private responded = false;

  constructor(
    private readonly owner: RetryingExchange,
    private readonly gen: number,
  ) {}

  get live(): boolean {
    return this.owner.isLive(this.gen);
  }

  onInformational(status: number, fields: Fields): void {
    if (this.live) this.owner.handler.onInformational(status, fields);
  }

  onResponseStart(status: number, fields: Fields, endStream: boolean): void {
    if (!this.live) return;
    this.responded = true;
    this.owner.relayResponseStart(status, fields, endStream);
  }

  onData(chunk: Uint8Array): boolean {
    return this.live ? this.owner.handler.onData(chunk) : true;
  }

  onComplete(trailers: Fields | null): void {
    if (this.live) this.owner.completed(trailers);
  }

  onError(err: UpstreamError): void {
    if (this.live) this.owner.failed(err, this.responded);
  }
}
