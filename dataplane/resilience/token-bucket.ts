// Token bucket for the new-connection rate (performance.new_connections_per_sec / _burst).
// Starts full; refills at `ratePerSec`, never above `burst`. Pure: the time is passed in, and a
// clock going backwards adds nothing (the bucket remembers the latest time it has seen).
//
// Tokens are kept in thousandths (token·ms per second) so integer rates and millisecond clocks
// refill exactly, without floating-point drift.

export class TokenBucket {
  readonly #rate: number; // thousandths of a token per ms == tokens per second
  readonly #capacity: number; // thousandths
  #milli: number;
  #lastMs: number;

  constructor(ratePerSec: number, burst: number, nowMs: number) {
    this.#rate = Math.max(0, ratePerSec);
    this.#capacity = Math.max(0, burst) * 1000;
    this.#milli = this.#capacity;
    this.#lastMs = nowMs;
  }

  /** Takes `n` tokens (default 1) if that many are available; otherwise takes none. */
  tryTake(nowMs: number, n = 1): boolean {
    this.#refill(nowMs);
    if (!(n > 0)) return n === 0;
    const need = n * 1000;
    if (this.#milli < need) return false;
    this.#milli -= need;
    return true;
  }

  /** Tokens available now (may be fractional). */
  tokens(nowMs: number): number {
    this.#refill(nowMs);
    return this.#milli / 1000;
  }

  #refill(nowMs: number): void {
    if (!(nowMs > this.#lastMs)) return;
    this.#milli = Math.min(this.#capacity, this.#milli + (nowMs - this.#lastMs) * this.#rate);
    this.#lastMs = nowMs;
  }
}
