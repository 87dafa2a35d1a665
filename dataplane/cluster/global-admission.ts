/**
 * What the data plane decides across all clusters, kept across snapshots: the global in-flight
 * count and the three in-flight limits' values, the adaptive admission limit and the brownout
 * state, all measured on the process's total load. A pool's in-flight count and retry budget are
 * its cluster's, a backend's count, breaker, latency and dispatcher its host's (cluster.ts).
 */
import type { RuntimeConfig } from '../../model/config/runtime.js';
import { AdaptiveLimit, type AdaptivePolicy } from '../resilience/adaptive-limit.js';
import { Brownout, type BrownoutPolicy } from '../resilience/brownout.js';
import type { BreakerPolicy } from '../resilience/circuit-breaker.js';
import { InflightCount, type InflightLimitValues } from '../resilience/inflight.js';

function limitsOf(rt: RuntimeConfig): InflightLimitValues {
  const p = rt.performance;
  return {
    global: p.global_inflight_limit,
    perUpstream: p.per_upstream_inflight_limit,
    perBackend: p.per_backend_inflight_limit,
  };
}

export function breakerPolicyOf(rt: RuntimeConfig): BreakerPolicy {
  const b = rt.resilience.circuit_breaker;
  return {
    enabled: b.enabled,
    consecutiveFailures: b.consecutive_failures,
    openMs: b.open_ms,
    halfOpenProbes: b.half_open_probes,
  };
}

function adaptivePolicyOf(rt: RuntimeConfig): AdaptivePolicy {
  const a = rt.resilience.adaptive_admission;
  return {
    enabled: a.enabled,
    minLimit: a.min_limit,
    maxLimit: a.max_limit,
    increaseStep: a.increase_step,
    decreasePercent: a.decrease_percent,
    highLatencyMs: a.high_latency_ms,
  };
}

function brownoutPolicyOf(rt: RuntimeConfig): BrownoutPolicy {
  const b = rt.resilience.brownout;
  return {
    enabled: b.enabled,
    triggerPercent: b.trigger_percent,
    recoverPercent: b.recover_percent,
    shedPercent: b.shed_percent,
    coreRoutes: b.core_routes,
  };
}

/** Why a request was refused before any backend was picked. */
export type AdmissionShed = 'brownout' | 'adaptive_admission';

/** Adaptive admission and brownout as `spooky status` shows them. */
export interface OverloadState {
  adaptiveEnabled: boolean;
  adaptiveLimit: number;
  inFlight: number;
  adaptiveShed: number;
  brownoutEnabled: boolean;
  brownoutActive: boolean;
  brownoutShed: number;
}

export class GlobalAdmission {
  readonly adaptive: AdaptiveLimit;
  readonly brownout: Brownout;
  /** Attempts in flight in the whole process (every pool's, every snapshot's). */
  readonly inFlight = new InflightCount();
  #limits: InflightLimitValues;

  constructor(rt: RuntimeConfig) {
    this.#limits = limitsOf(rt);
    this.adaptive = new AdaptiveLimit(adaptivePolicyOf(rt));
    this.brownout = new Brownout(brownoutPolicyOf(rt));
  }

  /** The committed snapshot's in-flight limits. */
  get limits(): Readonly<InflightLimitValues> {
    return this.#limits;
  }

  /** A new snapshot: new limits and policies; counts and what was learned are kept. */
  configure(rt: RuntimeConfig): void {
    this.#limits = limitsOf(rt);
    // Both keep what they learned (limit, active state) when re-applied; see docs/operations.md.
    this.adaptive.configure(adaptivePolicyOf(rt));
    this.brownout.configure(brownoutPolicyOf(rt));
    this.observeLoad();
  }

  /**
   * Requests that may be in flight at once: the global limit, or the adaptive limit when lower.
   * Brownout measures its percentages against it, so it sheds before adaptive admission does.
   */
  capacity(): number {
    const global = this.#limits.global;
    return this.adaptive.enabled ? Math.min(global, this.adaptive.limit) : global;
  }

  /**
   * Admission of a routed request before it picks a backend, in the original's order: brownout
   * (non-core pools), then the adaptive limit. Null when it may go on.
   */
  admit(pool: string): AdmissionShed | null {
    const inFlight = this.inFlight.value;
    this.brownout.observe(inFlight, this.capacity(), performance.now());
    if (this.brownout.shouldShed(pool)) return 'brownout';
    if (!this.adaptive.tryAdmit(inFlight)) return 'adaptive_admission';
    return null;
  }

  /** After an attempt freed its slot: a brownout may end as the load falls. */
  observeLoad(): void {
    this.brownout.observe(this.inFlight.value, this.capacity(), performance.now());
  }

  overloadState(): OverloadState {
    return {
      adaptiveEnabled: this.adaptive.enabled,
      adaptiveLimit: this.adaptive.limit,
      inFlight: this.inFlight.value,
      adaptiveShed: this.adaptive.shed,
      brownoutEnabled: this.brownout.enabled,
      brownoutActive: this.brownout.active,
      brownoutShed: this.brownout.shed,
    };
  }

  /**
   * Outcome of one attempt, for the adaptive limit (a response's latency, or a failure). The
   * backend's breaker and latency are its host's (Cluster.breakerTarget).
   */
  record(ok: boolean, latencyMs: number | null): void {
    this.adaptive.onSample(ok ? latencyMs : null, performance.now());
  }
}
