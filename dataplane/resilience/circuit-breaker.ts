// Per-backend circuit breaker (request-path.md, "Health"): `consecutiveFailures` connect errors,
// resets or timeouts open the circuit for `openMs`; then up to `halfOpenProbes` real requests at a
// time test it. Pure: every call is given the time, and open → half-open happens lazily when a
// call observes that `openMs` has passed.

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerPolicy {
  enabled: boolean;
  consecutiveFailures: number;
  openMs: number;
  halfOpenProbes: number;
}

export class CircuitBreaker {
  readonly #policy: BreakerPolicy;
  #state: BreakerState = 'closed';
  #failures = 0;
  #openedAt = 0;
  // Half-open only: probes let through and not yet resolved, and probes that succeeded.
  #probesInFlight = 0;
  #probeSuccesses = 0;
  #transitions = 0;

  constructor(policy: BreakerPolicy) {
    this.#policy = {
      enabled: policy.enabled,
      consecutiveFailures: Math.max(1, Math.floor(policy.consecutiveFailures)),
      openMs: Math.max(0, policy.openMs),
      halfOpenProbes: Math.max(1, Math.floor(policy.halfOpenProbes)),
    };
  }

  /** Number of state changes so far (closed→open, open→half-open, half-open→closed/open). */
  get transitions(): number {
    return this.#transitions;
  }

  state(nowMs: number): BreakerState {
    this.#advance(nowMs);
    return this.#state;
  }

  /**
   * May a request go to this backend now? In half-open at most `halfOpenProbes` requests at a
   * time are let through; each `true` takes a probe slot until onSuccess/onFailure/onCancel.
   */
  tryAcquire(nowMs: number): boolean {
    if (!this.allows(nowMs)) return false;
    if (this.#state === 'half-open') this.#probesInFlight++;
    return true;
  }

  /** Whether a pick could use this backend now, without taking a probe slot. */
  allows(nowMs: number): boolean {
    if (!this.#policy.enabled) return true;
    this.#advance(nowMs);
    if (this.#state === 'closed') return true;
    if (this.#state === 'open') return false;
    return this.#probesInFlight < this.#policy.halfOpenProbes;
  }

  /**
   * Closed: resets the failure count. Half-open: the probe succeeded; once `halfOpenProbes`
   * probes have succeeded (one with the default) the breaker closes. Open: a late result of a
   * request sent before the circuit opened; ignored.
   */
  onSuccess(nowMs: number): void {
    if (!this.#policy.enabled) return;
    this.#advance(nowMs);
    if (this.#state === 'closed') {
      this.#failures = 0;
    } else if (this.#state === 'half-open' && this.#probesInFlight > 0) {
      this.#probesInFlight--;
      if (++this.#probeSuccesses >= this.#policy.halfOpenProbes) this.#close();
    }
  }

  /**
   * Closed: counts; the `consecutiveFailures`-th in a row opens the circuit. Half-open: any
   * failed probe opens it again for another `openMs`. Open: ignored (does not extend it).
   */
  onFailure(nowMs: number): void {
    if (!this.#policy.enabled) return;
    this.#advance(nowMs);
    if (this.#state === 'closed') {
      if (++this.#failures >= this.#policy.consecutiveFailures) this.#open(nowMs);
    } else if (this.#state === 'half-open' && this.#probesInFlight > 0) {
      this.#open(nowMs);
    }
  }

  /** Releases a probe slot without a verdict (request aborted by the client). */
  onCancel(): void {
    if (this.#state === 'half-open' && this.#probesInFlight > 0) this.#probesInFlight--;
  }

  #advance(nowMs: number): void {
    if (this.#state === 'open' && nowMs - this.#openedAt >= this.#policy.openMs) {
      this.#set('half-open');
    }
  }

  #open(nowMs: number): void {
    this.#openedAt = nowMs;
    this.#set('open');
  }

  #close(): void {
    this.#failures = 0;
    this.#set('closed');
  }

  #set(state: BreakerState): void {
    this.#state = state;
    this.#probesInFlight = 0;
    this.#probeSuccesses = 0;
    this.#transitions++;
  }
}
