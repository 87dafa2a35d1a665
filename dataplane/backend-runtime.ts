/**
 * What the data plane tracks across all clusters, kept across snapshots: requests in flight (and
 * the global, per-upstream and per-backend in-flight limits), the adaptive admission limit, the
 * brownout state and the retry budget. Per-backend state (breaker, latency, dispatcher) lives in
 * each backend's Cluster (cluster/cluster.ts).
 */
import type { RuntimeConfig } from '../model/config/runtime.js';
import type { DataPlaneMetrics } from './metrics.js';
import { AdaptiveLimit, type AdaptivePolicy } from './resilience/adaptive-limit.js';
import { Brownout, type BrownoutPolicy } from './resilience/brownout.js';
import type { BreakerPolicy } from './resilience/circuit-breaker.js';
import { InflightLimits } from './resilience/inflight.js';
import { RetryBudget } from './resilience/retry-budget.js';

function limitsOf(rt: RuntimeConfig) {
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

export class BackendRuntime {
  readonly adaptive: AdaptiveLimit;
  readonly brownout: Brownout;
  readonly limits: InflightLimits;
  retryBudget: RetryBudget;
  private retryBudgetPercent: number;

  /** `_metrics`: the circuit gauge moved to the clusters; kept so callers need not change. */
  constructor(rt: RuntimeConfig, _metrics?: DataPlaneMetrics) {
    this.limits = new InflightLimits(limitsOf(rt));
    this.adaptive = new AdaptiveLimit(adaptivePolicyOf(rt));
    this.brownout = new Brownout(brownoutPolicyOf(rt));
    this.retryBudget = new RetryBudget(rt.resilience.retries.budget_percent);
    this.retryBudgetPercent = rt.resilience.retries.budget_percent;
  }

  /** A new snapshot: new limits and policies; what was learned is kept. */
  configure(rt: RuntimeConfig): void {
    this.limits.setLimits(limitsOf(rt));
    // Both keep what they learned (limit, active state) when re-applied; see docs/operations.md.
    this.adaptive.configure(adaptivePolicyOf(rt));
    this.brownout.configure(brownoutPolicyOf(rt));
    this.brownout.observe(this.limits.total, this.capacity(), performance.now());
    if (rt.resilience.retries.budget_percent !== this.retryBudgetPercent) {
      this.retryBudget = new RetryBudget(rt.resilience.retries.budget_percent);
    }
    this.retryBudgetPercent = rt.resilience.retries.budget_percent;
  }

  /**
   * Requests that may be in flight at once: the global limit, or the adaptive limit when lower.
   * Brownout measures its percentages against it, so it sheds before adaptive admission does.
   */
  capacity(): number {
    const global = this.limits.limits.global;
    return this.adaptive.enabled ? Math.min(global, this.adaptive.limit) : global;
  }

  /**
   * Admission of a routed request before it picks a backend, in the original's order: brownout
   * (non-core pools), then the adaptive limit. Null when it may go on.
   */
  admit(pool: string): AdmissionShed | null {
    const inFlight = this.limits.total;
    this.brownout.observe(inFlight, this.capacity(), performance.now());
    if (this.brownout.shouldShed(pool)) return 'brownout';
    if (!this.adaptive.tryAdmit(inFlight)) return 'adaptive_admission';
    return null;
  }

  /** Frees an attempt's in-flight slot; a brownout may end as the load falls. */
  release(pool: string, backend: string): void {
    this.limits.release(pool, backend);
    this.brownout.observe(this.limits.total, this.capacity(), performance.now());
  }

  overloadState(): OverloadState {
    return {
      adaptiveEnabled: this.adaptive.enabled,
      adaptiveLimit: this.adaptive.limit,
      inFlight: this.limits.total,
      adaptiveShed: this.adaptive.shed,
      brownoutEnabled: this.brownout.enabled,
      brownoutActive: this.brownout.active,
      brownoutShed: this.brownout.shed,
    };
  }

  /**
   * Outcome of one attempt on backend `_id`, for the adaptive limit (a response's latency, or a
   * failure). The backend's breaker and latency are its cluster's (Cluster.breakerTarget).
   */
  record(_id: string, ok: boolean, latencyMs: number | null): void {
    this.adaptive.onSample(ok ? latencyMs : null, performance.now());
  }
}
