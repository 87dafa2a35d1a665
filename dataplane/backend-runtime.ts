/**
 * What the data plane learns about each backend while serving, kept across snapshots by backend
 * id: requests in flight (and the in-flight limits), the circuit breaker, the peak-EWMA latency.
 * Balancers read it through `load`; the forwarder updates it around every attempt.
 */
import type { RuntimeConfig } from '../controlplane/config/runtime.js';
import { type BackendLoad, PeakEwma } from './balancer/policies.js';
import type { DataPlaneMetrics } from './metrics.js';
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

export class BackendRuntime {
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

  breaker(id: string): CircuitBreaker {
    let b = this.breakers.get(id);
    if (!b) {
      b = new CircuitBreaker(this.breakerPolicy);
      this.breakers.set(id, b);
    }
    return b;
  }

  /** Outcome of one attempt on a backend, for its breaker and latency. */
  record(id: string, ok: boolean, latencyMs: number | null): void {
    const now = performance.now();
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
