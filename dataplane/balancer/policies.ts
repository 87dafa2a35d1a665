// Load-balancing policies (spec: request-path.md, "Load balancing"). Pure: the in-flight counts
// and latency estimates come from the data plane through BackendLoad, randomness through
// `random`, time through the callers of PeakEwma.

import type { LbPolicy } from '../../model/config/schema.js';
import { HashRing } from './consistent-hash.js';
import { SmoothWeightedRoundRobin } from './round-robin.js';

export type { LbPolicy };

export interface BalancedBackend {
  readonly id: string;
  /** 1..1000; a backend whose weight is not a positive finite number is never picked. */
  readonly weight: number;
}

/** Live per-backend figures the data plane keeps (they outlive snapshots). */
export interface BackendLoad {
  inFlight(id: string): number;
  /** Peak-EWMA response time in ms, or undefined when the backend has no sample yet. */
  latencyMs(id: string): number | undefined;
}

export interface PickContext {
  /** consistent-hash / sticky-cid key (already extracted); undefined → those policies fall back to weighted random. */
  readonly hashKey?: string;
}

export interface Balancer<T extends BalancedBackend> {
  readonly policy: LbPolicy;
  /** Next backend among those `eligible` accepts (healthy, undrained, circuit closed, with room), or undefined when none is. */
  pick(ctx: PickContext, eligible: (b: T) => boolean): T | undefined;
}

function usable(weight: number): boolean {
  return weight > 0 && weight !== Infinity;
}

/** Weighted random choice among the eligible backends (each eligibility asked once). */
function weightedRandom<T extends BalancedBackend>(
  items: readonly T[],
  eligible: (b: T) => boolean,
  random: () => number,
): T | undefined {
  const chosen: T[] = [];
  let total = 0;
  for (const b of items) {
    if (!usable(b.weight) || !eligible(b)) continue;
    chosen.push(b);
    total += b.weight;
  }
  if (chosen.length === 0) return undefined;
  let r = random() * total;
  for (const b of chosen) {
    r -= b.weight;
    if (r < 0) return b;
  }
  // Only reached through rounding (or a random() that returned 1).
  return chosen[chosen.length - 1];
}

/** An in-flight count as a score input: NaN and negative counts (a bookkeeping slip) count as 0. */
function nonNegative(n: number): number {
  return Number.isNaN(n) ? 0 : Math.max(n, 0);
}

/** The smallest latency used in a score, so that a 0 ms estimate still lets in-flight counts matter. */
const MIN_LATENCY_MS = 1e-3;

/**
 * Lowest-score picker whose scan starts one past the previous winner, so candidates with equal
 * scores are chosen in turn. `score` returns [class, value]: a lower class always wins (used by
 * latency-aware to put unsampled backends first), then the lower value.
 */
class RotatingMin<T extends BalancedBackend> {
  readonly #items: readonly T[];
  #start = 0;

  constructor(items: readonly T[]) {
    this.#items = items.slice();
  }

  pick(eligible: (b: T) => boolean, score: (b: T) => readonly [number, number]): T | undefined {
    const items = this.#items;
    const n = items.length;
    let best = -1;
    let bestClass = 0;
    let bestValue = 0;
    for (let k = 0; k < n; k++) {
      const i = (this.#start + k) % n;
      const b = items[i];
      if (!usable(b.weight) || !eligible(b)) continue;
      const [cls, value] = score(b);
      if (best === -1 || cls < bestClass || (cls === bestClass && value < bestValue)) {
        best = i;
        bestClass = cls;
        bestValue = value;
      }
    }
    if (best === -1) return undefined;
    this.#start = (best + 1) % n;
    return items[best];
  }
}

export function createBalancer<T extends BalancedBackend>(
  policy: LbPolicy,
  backends: readonly T[],
  load: BackendLoad,
  random: () => number = Math.random,
): Balancer<T> {
  const items = backends.slice();
  switch (policy) {
    case 'round-robin': {
      const rr = new SmoothWeightedRoundRobin(items);
      return { policy, pick: (_ctx, eligible) => rr.pick(eligible) };
    }
    case 'random':
      return { policy, pick: (_ctx, eligible) => weightedRandom(items, eligible, random) };
    case 'least-connections': {
      const min = new RotatingMin(items);
      const score = (b: T) => [0, (nonNegative(load.inFlight(b.id)) + 1) / b.weight] as const;
      return { policy, pick: (_ctx, eligible) => min.pick(eligible, score) };
    }
    case 'latency-aware': {
      const min = new RotatingMin(items);
      const score = (b: T) => {
        const perWeight = (nonNegative(load.inFlight(b.id)) + 1) / b.weight;
        const latency = load.latencyMs(b.id);
        // Unsampled backends (class 0) go first, spread by weight and in-flight count.
        if (latency === undefined || Number.isNaN(latency)) return [0, perWeight] as const;
        return [1, Math.max(latency, MIN_LATENCY_MS) * perWeight] as const;
      };
      return { policy, pick: (_ctx, eligible) => min.pick(eligible, score) };
    }
    case 'consistent-hash':
    case 'sticky-cid': {
      const ring = new HashRing(items);
      return {
        policy,
        pick: (ctx, eligible) =>
          ctx.hashKey === undefined ? weightedRandom(items, eligible, random) : ring.lookup(ctx.hashKey, eligible),
      };
    }
  }
  throw new RangeError(`unknown load-balancing policy ${String(policy)}`);
}

/**
 * Peak EWMA (Finagle/linkerd style) of response times: rises at once to a slower sample, decays
 * toward faster ones with time constant tauMs. Between samples the value read also decays toward
 * zero with the same time constant (as Finagle's read does), so a backend shunned for one slow
 * answer is tried again once its estimate has gone stale instead of being starved for good.
 */
export class PeakEwma {
  readonly #tauMs: number;
  #estimate: number | undefined;
  #stampMs = 0;

  constructor(tauMs = 10_000) {
    if (!(tauMs > 0) || !Number.isFinite(tauMs)) throw new RangeError(`tauMs must be a positive number, got ${tauMs}`);
    this.#tauMs = tauMs;
  }

  /** Record one response time. Negative or non-finite samples are ignored; time never runs backwards. */
  observe(rttMs: number, nowMs: number): void {
    if (!(rttMs >= 0) || rttMs === Infinity) return;
    const estimate = this.#estimate;
    if (estimate === undefined) {
      this.#estimate = rttMs;
      this.#stampMs = nowMs;
      return;
    }
    if (rttMs > estimate) {
      this.#estimate = rttMs;
    } else {
      const w = this.#decay(nowMs);
      this.#estimate = estimate * w + rttMs * (1 - w);
    }
    this.#stampMs = Math.max(this.#stampMs, nowMs);
  }

  /** The estimate at `nowMs`, or undefined before the first sample. */
  value(nowMs: number): number | undefined {
    const estimate = this.#estimate;
    return estimate === undefined ? undefined : estimate * this.#decay(nowMs);
  }

  #decay(nowMs: number): number {
    return Math.exp(-Math.max(0, nowMs - this.#stampMs) / this.#tauMs);
  }
}
