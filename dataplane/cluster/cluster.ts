/**
 * One pool's cluster (Envoy's cluster, undici's BalancedPool): its balancer and, per backend, the
 * host state the request path needs: health and drain (from the control plane), the circuit
 * breaker, the latency estimate and the dispatcher. The request path asks it whether a request
 * may enter (admission) and for a dispatch function that picks a backend per attempt; nothing
 * else reaches the forwarder. Built from each snapshot by the ClusterManager, which carries the
 * state of backends that stay over to the new cluster.
 */
import type { RuntimeBackend, RuntimePool } from '../../model/config/runtime.js';
import type { AdmissionShed, BackendRuntime } from '../backend-runtime.js';
import type { BackendStates } from '../backend-states.js';
import { type Balancer, createBalancer, type PeakEwma, type PickContext } from '../balancer/policies.js';
import type { DataPlaneMetrics, OverloadReason } from '../metrics.js';
import type { CircuitBreaker } from '../resilience/circuit-breaker.js';
import type { ShedReason } from '../resilience/inflight.js';
import type { Dispatcher } from '../upstream/dispatcher.js';
import { type AttemptLease, accountAttempt, type BreakerTarget, checkResponse, circuitBreaker } from './attempt.js';
import { closedExchange, compose, type DispatchFn, NoBackendError } from './dispatch.js';
import type { RetryBudgetLike } from './retry.js';

/** A backend's state that outlives snapshots: carried to the next cluster while the backend stays. */
export interface HostState {
  readonly breaker: CircuitBreaker;
  readonly latency: PeakEwma;
}

/** One backend of the cluster with its state. */
export interface Host extends HostState {
  readonly backend: RuntimeBackend;
}

/** What a cluster shares with the others (one process, one set of global limits). */
export interface ClusterDeps {
  /** Global admission, the in-flight limits, the adaptive limit and the retry budget. */
  readonly runtime: Pick<BackendRuntime, 'admit' | 'limits' | 'release' | 'record' | 'retryBudget'>;
  /** Health and drain per backend id. */
  readonly states: Pick<BackendStates, 'eligible'>;
  readonly metrics: DataPlaneMetrics;
  /** The backend's dispatcher (kept across snapshots by the manager's agent). */
  dispatcherFor(backend: RuntimeBackend, pool: RuntimePool): Dispatcher;
  now(): number;
}

/** Hooks of one request on its attempts. */
export interface PickHooks {
  /** An attempt goes to `backend` (the access log names the last one). */
  onAttempt?(backend: RuntimeBackend): void;
}

export class Cluster {
  readonly name: string;
  readonly balancer: Balancer<RuntimeBackend>;
  private readonly hosts = new Map<string, Host>();
  private readonly targets = new Map<string, BreakerTarget>();

  constructor(
    readonly pool: RuntimePool,
    private readonly deps: ClusterDeps,
    hostState: (backend: RuntimeBackend) => HostState,
  ) {
    this.name = pool.name;
    for (const b of pool.backends) this.hosts.set(b.id, { backend: b, ...hostState(b) });
    const { limits } = deps.runtime;
    this.balancer = createBalancer(pool.policy, pool.backends, {
      inFlight: (id) => limits.inFlight(id),
      latencyMs: (id) => this.hosts.get(id)?.latency.value(deps.now()),
    });
  }

  host(id: string): Host | undefined {
    return this.hosts.get(id);
  }

  /** The retry budget attempts of this cluster draw on. */
  get retryBudget(): RetryBudgetLike {
    return this.deps.runtime.retryBudget;
  }

  /**
   * Admission of a routed request before any pick: brownout, adaptive admission, then the global
   * and per-upstream in-flight limits. Null when it may go on.
   */
  admit(): AdmissionShed | ShedReason | null {
    const { runtime } = this.deps;
    const limits = runtime.limits;
    return (
      runtime.admit(this.name) ??
      (!limits.globalHasRoom() ? 'global_inflight' : !limits.upstreamHasRoom(this.name) ? 'upstream_inflight' : null)
    );
  }

  /** In service: healthy and not drained. */
  inService(id: string): boolean {
    return this.deps.states.eligible(id);
  }

  /**
   * Picks a backend not in `tried` (healthy, undrained, circuit-closed, with room) and reserves its
   * in-flight slot and breaker probe; or says why none could take the request.
   */
  pick(ctx: PickContext, tried: Set<string>): Host | OverloadReason {
    const { limits } = this.deps.runtime;
    const now = this.deps.now();
    const eligible = (b: RuntimeBackend) =>
      !tried.has(b.id) && this.inService(b.id) && this.breakerOf(b.id).allows(now) && limits.backendHasRoom(b.id);
    for (;;) {
      const backend = this.balancer.pick(ctx, eligible);
      if (!backend) return this.shedReason(now);
      tried.add(backend.id);
      if (limits.tryAcquire(this.name, backend.id) !== null) continue;
      const host = this.hosts.get(backend.id) as Host;
      if (!host.breaker.tryAcquire(now)) {
        limits.release(this.name, backend.id);
        continue;
      }
      return host;
    }
  }

  /** Why no backend could take the request. */
  private shedReason(now: number): OverloadReason {
    const inService = this.pool.backends.filter((b) => this.inService(b.id));
    if (inService.length === 0) return 'no_healthy_backend';
    if (inService.every((b) => !this.breakerOf(b.id).allows(now))) return 'circuit_open';
    return 'backend_inflight';
  }

  private breakerOf(id: string): CircuitBreaker {
    return (this.hosts.get(id) as Host).breaker;
  }

  /**
   * A dispatch function for one request: each call is an attempt on a backend the request has not
   * tried, through the per-backend stages (response check, breaker, accounting). When none can
   * take it, the handler gets a NoBackendError saying why.
   */
  dispatcher(ctx: PickContext, hooks: PickHooks = {}): DispatchFn {
    const tried = new Set<string>();
    return (request, handler) => {
      const host = this.pick(ctx, tried);
      if (typeof host === 'string') {
        handler.onError(new NoBackendError(host));
        return closedExchange();
      }
      hooks.onAttempt?.(host.backend);
      const raw = this.deps.dispatcherFor(host.backend, this.pool);
      const now = () => this.deps.now();
      const dispatch = compose(
        (req, h) => raw.dispatch(req, h),
        accountAttempt(this.lease(host.backend), now),
        circuitBreaker(this.breakerTarget(host), now),
        checkResponse(host.backend.id),
      );
      return dispatch(request, handler);
    };
  }

  /** Outcomes of attempts on a backend: its breaker (and the gauge), its latency, the adaptive limit. */
  breakerTarget(host: Host): BreakerTarget {
    const id = host.backend.id;
    let target = this.targets.get(id);
    if (!target) {
      target = this.newBreakerTarget(host);
      this.targets.set(id, target);
    }
    return target;
  }

  private newBreakerTarget(host: Host): BreakerTarget {
    const { runtime, metrics } = this.deps;
    const id = host.backend.id;
    return {
      record: (ok, latencyMs) => {
        const now = this.deps.now();
        runtime.record(id, ok, latencyMs);
        const wasOpen = host.breaker.state(now) !== 'closed';
        if (ok) host.breaker.onSuccess(now);
        else host.breaker.onFailure(now);
        const isOpen = host.breaker.state(now) !== 'closed';
        if (wasOpen !== isOpen) metrics.circuitOpen.set({ backend: id }, isOpen ? 1 : 0);
        if (latencyMs !== null) host.latency.observe(latencyMs, now);
      },
      onCancel: () => host.breaker.onCancel(),
    };
  }

  private lease(backend: RuntimeBackend): AttemptLease {
    const { runtime, metrics } = this.deps;
    const labels = { route: this.name, backend: backend.id };
    let released = false;
    return {
      responded: (ms) => metrics.upstreamDuration.observe(labels, ms / 1000),
      release: (outcome) => {
        if (released) return;
        released = true;
        metrics.upstreamRequests.inc({ ...labels, outcome });
        runtime.release(this.name, backend.id);
      },
    };
  }
}
