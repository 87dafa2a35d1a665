/**
 * What the data plane learns about each backend while serving, kept across snapshots by backend
 * id: requests in flight (and the in-flight limits), the circuit breaker, the peak-EWMA latency;
 * and, across all backends, the adaptive admission limit and the brownout state.
 * Balancers read it through `load`; the forwarder updates it around every attempt.
 */
import type { RuntimeConfig } from '../model/config/runtime.js';
import { type BackendLoad, PeakEwma } from './balancer/policies.js';
import type { DataPlaneMetrics } from './metrics.js';
import { AdaptiveLimit, type AdaptivePolicy } from './resilience/adaptive-limit.js';
import { Brownout, type BrownoutPolicy } from './resilience/brownout.js';
import { type BreakerPolicy, CircuitBreaker } from './resilience/circuit-breaker.js';
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

function breakerPolicyOf(rt: RuntimeConfig): BreakerPolicy {
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
  private breakerPolicy: BreakerPolicy;
  private retryBudgetPercent: number;
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly latency = new Map<string, PeakEwma>();
  readonly load: BackendLoad;

  constructor(
    rt: RuntimeConfig,
    private readonly metrics: DataPlaneMetrics,
  ) {
    this.limits = new InflightLimits(limitsOf(rt));
    this.adaptive = new AdaptiveLimit(adaptivePolicyOf(rt));
    this.brownout = new Brownout(brownoutPolicyOf(rt));
    this.breakerPolicy = breakerPolicyOf(rt);
    this.retryBudget = new RetryBudget(rt.resilience.retries.budget_percent);
    this.retryBudgetPercent = rt.resilience.retries.budget_percent;
    this.load = {
      inFlight: (id) => this.limits.inFlight(id),
      latencyMs: (id) => this.latency.get(id)?.value(performance.now()),
    };
  }

  /** A new snapshot: new limits and policies; state of backends it still has is kept. */
  configure(rt: RuntimeConfig): void {
    this.limits.setLimits(limitsOf(rt));
    // Both keep what they learned (limit, active state) when re-applied; see docs/operations.md.
    this.adaptive.configure(adaptivePolicyOf(rt));
    this.brownout.configure(brownoutPolicyOf(rt));
    this.brownout.observe(this.limits.total, this.capacity(), performance.now());
    const policy = breakerPolicyOf(rt);
    if (JSON.stringify(policy) !== JSON.stringify(this.breakerPolicy)) {
      this.breakerPolicy = policy;
      this.breakers.clear();
    }
    if (rt.resilience.retries.budget_percent !== this.retryBudgetPercent) {
      this.retryBudget = new RetryBudget(rt.resilience.retries.budget_percent);
    }
    this.retryBudgetPercent = rt.resilience.retries.budget_percent;
    const ids = new Set<string>();
    for (const pool of rt.pools.values()) for (const b of pool.backends) ids.add(b.id);
    for (const id of [...this.breakers.keys()]) if (!ids.has(id)) this.breakers.delete(id);
    for (const id of [...this.latency.keys()]) if (!ids.has(id)) this.latency.delete(id);
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

  breaker(id: string): CircuitBreaker {
    let b = this.breakers.get(id);
    if (!b) {
      b = new CircuitBreaker(this.breakerPolicy);
      this.breakers.set(id, b);
    }
    return b;
  }

  /** Outcome of one attempt on a backend, for its breaker, its latency and the adaptive limit. */
  record(id: string, ok: boolean, latencyMs: number | null): void {
    const now = performance.now();
    this.adaptive.onSample(ok ? latencyMs : null, now);
    const breaker = this.breaker(id);
    const wasOpen = breaker.state(now) !== 'closed';
    if (ok) breaker.onSuccess(now);
    else breaker.onFailure(now);
    const isOpen = breaker.state(now) !== 'closed';
    if (wasOpen !== isOpen) this.metrics.circuitOpen.set({ backend: id }, isOpen ? 1 : 0);
    if (latencyMs !== null) {
      let e = this.latency.get(id);
      if (!e) {
        e = new PeakEwma();
        this.latency.set(id, e);
      }
      e.observe(latencyMs, now);
    }
  }
}
