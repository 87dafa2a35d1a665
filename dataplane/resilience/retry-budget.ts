// Envoy-style retry budget: retries in flight may not exceed `budgetPercent` of the active
// requests, with a floor (`minRetryConcurrency`, default 3) so a quiet backend can still retry.
// A retry is part of its original request: call requestStarted/requestEnded once per client
// request and tryStartRetry/retryEnded around each extra attempt.

export class RetryBudget {
  readonly #budgetPercent: number;
  readonly #minRetryConcurrency: number;
  #active = 0;
  #retriesActive = 0;

  constructor(budgetPercent: number, minRetryConcurrency = 3) {
    this.#budgetPercent = Math.min(100, Math.max(0, budgetPercent));
    this.#minRetryConcurrency = Math.max(0, Math.floor(minRetryConcurrency));
  }

  /** Requests in flight (not counting their retries). */
  get active(): number {
    return this.#active;
  }

  /** Retries in flight. */
  get retriesActive(): number {
    return this.#retriesActive;
  }

  /** Retries that may be in flight at once right now. */
  get limit(): number {
    return Math.max(this.#minRetryConcurrency, Math.floor((this.#active * this.#budgetPercent) / 100));
  }

  requestStarted(): void {
    this.#active++;
  }

  /** Ignored when no request is active. */
  requestEnded(): void {
    if (this.#active > 0) this.#active--;
  }

  /** Reserves budget for one retry; false when the budget is spent (do not retry). */
  tryStartRetry(): boolean {
    if (this.#retriesActive >= this.limit) return false;
    this.#retriesActive++;
    return true;
  }

  /** Ignored when no retry is active. */
  retryEnded(): void {
    if (this.#retriesActive > 0) this.#retriesActive--;
  }
}
