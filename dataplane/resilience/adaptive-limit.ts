// Adaptive admission (resilience.adaptive_admission): an AIMD limit on requests in flight. A slow
// or failed upstream attempt cuts the limit by decrease_percent (at most once per
// high_latency_ms, so one congestion episode seen by many concurrent requests counts once); a
// fast success adds increase_step. The limit never leaves [min_limit, max_limit]. Pure: the
// caller passes the time.

export interface AdaptivePolicy {
  enabled: boolean;
  minLimit: number;
  maxLimit: number;
  increaseStep: number;
  decreasePercent: number;
  highLatencyMs: number;
}

export class AdaptiveLimit {
  #policy: AdaptivePolicy;
  #limit: number;
  #lastDecreaseAt = Number.NEGATIVE_INFINITY;
  /** Requests refused because in-flight had reached the limit (for status). */
  shed = 0;
  decreases = 0;

  constructor(policy: AdaptivePolicy) {
    this.#policy = { ...policy };
    this.#limit = policy.maxLimit;
  }

  get policy(): Readonly<AdaptivePolicy> {
    return this.#policy;
  }

  get enabled(): boolean {
    return this.#policy.enabled;
  }

  /** The current limit (max_limit until the first slow sample). */
  get limit(): number {
    return this.#limit;
  }

  /**
   * A new snapshot. The learned limit survives an unchanged policy and is clamped into changed
   * bounds; turning admission on starts from max_limit (nothing learned while it was off).
   */
  configure(policy: AdaptivePolicy): void {
    const wasEnabled = this.#policy.enabled;
    this.#policy = { ...policy };
    if (policy.enabled && !wasEnabled) {
      this.#limit = policy.maxLimit;
      this.#lastDecreaseAt = Number.NEGATIVE_INFINITY;
    }
    this.#limit = clamp(this.#limit, policy.minLimit, policy.maxLimit);
  }

  /** May one more request start with `inFlight` already running? Always yes when disabled. */
  tryAdmit(inFlight: number): boolean {
    if (!this.#policy.enabled || inFlight < this.#limit) return true;
    this.shed++;
    return false;
  }

  /** An attempt's outcome: its time to response headers, or null when it failed. */
  onSample(latencyMs: number | null, nowMs: number): void {
    const p = this.#policy;
    if (!p.enabled) return;
    if (latencyMs === null || latencyMs >= p.highLatencyMs) {
      if (nowMs - this.#lastDecreaseAt < p.highLatencyMs) return;
      this.#lastDecreaseAt = nowMs;
      // At least one lower, so that a small limit can still shrink.
      const cut = Math.max(1, Math.floor((this.#limit * p.decreasePercent) / 100));
      const next = Math.max(p.minLimit, this.#limit - cut);
      if (next < this.#limit) this.decreases++;
      this.#limit = next;
      return;
    }
    this.#limit = Math.min(p.maxLimit, this.#limit + p.increaseStep);
  }
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, n));
}
