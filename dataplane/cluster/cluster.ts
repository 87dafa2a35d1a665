/**
 * One pool's cluster (Envoy's cluster, undici's BalancedPool): its balancer, its in-flight count
 * and retry budget and, per backend, the host state the request path needs: health and drain
 * (from the control plane), the circuit breaker, the latency estimate, the in-flight count and
 * the dispatcher. The request path asks it whether a request may enter (admission) and for a
 * dispatch function that picks a backend per attempt; nothing else reaches the forwarder. Built
 * from each snapshot by the ClusterManager, which carries over the state of a pool or backend
 * that stays.
 */
import type { RuntimeBackend, RuntimePool } from '../../model/config/runtime.js';
import type { BackendState } from '../backend-states.js';
import { type Balancer, createBalancer, type PeakEwma, type PickContext } from '../balancer/policies.js';
import type { DataPlaneMetrics, OverloadReason } from '../metrics.js';
import type { CircuitBreaker } from '../resilience/circuit-breaker.js';
import {
  acquireSlot,
  type InflightCount,
  type InflightSlot,
  releaseSlot,
  type ShedReason,
} from '../resilience/inflight.js';
import type { RetryBudget } from '../resilience/retry-budget.js';
import type { Dispatcher } from '../upstream/dispatcher.js';
import { type AttemptAccount, accountAttempt, type BreakerTarget, checkResponse, circuitBreaker } from './attempt.js';
import { closedExchange, compose, type DispatchFn, NoBackendError } from './dispatch.js';
import type { AdmissionShed, GlobalAdmission } from './global-admission.js';
import type { RetryBudgetLike } from './retry.js';

/**
 * A backend's dispatcher, made on first use (a snapshot that is never committed opens nothing)
 * and kept across snapshots while its key (dispatcherKey) stays.
 */
export class DispatcherSlot {
  #dispatcher: Dispatcher | null = null;
  #closed = false;

  constructor(
    readonly key: string,
    private readonly make: () => Dispatcher,
  ) {}

  get(): Dispatcher {
    if (this.#dispatcher) return this.#dispatcher;
    const d = this.make();
    this.#dispatcher = d;
    // A request of an old snapshot may still reach a retired backend: its dispatcher then
    // serves it and closes once idle (HTTP/2), or refuses it (HTTP/1.1) and the retry moves on.
    if (this.#closed) void d.close();
    return d;
  }

  get inFlight(): number {
    return this.#dispatcher?.inFlight ?? 0;
  }

  /** Retired by an apply: in-flight exchanges finish, then the connections close. */
  close(): void {
    this.#closed = true;
    void this.#dispatcher?.close();
  }

  destroy(): void {
    this.#closed = true;
    this.#dispatcher?.destroy();
  }
}

/** A backend's state that outlives snapshots: carried to the next cluster while the backend stays. */
export interface HostState {
  readonly breaker: CircuitBreaker;
  readonly latency: PeakEwma;
  /** Attempts in flight to this backend, against per_backend_inflight_limit. */
  readonly inFlight: InflightCount;
  readonly dispatcher: DispatcherSlot;
  /** Health and drain as the control plane last said (updated in place). */
  readonly health: Readonly<BackendState>;
}

/** One backend of the cluster with its state. */
export interface Host extends HostState {
  readonly backend: RuntimeBackend;
  /** The counts one attempt on this backend occupies. */
  readonly slot: InflightSlot;
}

/** A pool's state that outlives snapshots: carried to the next cluster while the pool stays. */
export interface ClusterState {
  /** Attempts in flight in this pool, against per_upstream_inflight_limit. */
  readonly inFlight: InflightCount;
  /** Envoy's per-cluster retry budget: one failing pool cannot spend the others' retries. */
  readonly retryBudget: RetryBudget;
}

/** What a cluster shares with the others: the process-wide admission and the metrics. */
export interface ClusterDeps {
  readonly admission: Pick<GlobalAdmission, 'admit' | 'inFlight' | 'limits' | 'observeLoad' | 'record'>;
  readonly metrics: DataPlaneMetrics;
  now(): number;
}

/** Healthy and not drained, as the control plane last said. */
function serving(h: HostState): boolean {
  return h.health.healthy && !h.health.drained;
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
  private readonly attemptChains = new Map<string, DispatchFn>();

  constructor(
    readonly pool: RuntimePool,
    private readonly deps: ClusterDeps,
    readonly state: ClusterState,
    hostState: (backend: RuntimeBackend) => HostState,
  ) {
    this.name = pool.name;
    const global = deps.admission.inFlight;
    for (const b of pool.backends) {
      const h = hostState(b);
      this.hosts.set(b.id, { backend: b, ...h, slot: { global, upstream: state.inFlight, backend: h.inFlight } });
    }
    this.balancer = createBalancer(pool.policy, pool.backends, {
      inFlight: (id) => this.hosts.get(id)?.inFlight.value ?? 0,
      latencyMs: (id) => this.hosts.get(id)?.latency.value(deps.now()),
    });
  }

  host(id: string): Host | undefined {
    return this.hosts.get(id);
  }

  /** Every backend of the pool with its state. */
  allHosts(): IterableIterator<Host> {
    return this.hosts.values();
  }

  /** The retry budget attempts of this cluster draw on. */
  get retryBudget(): RetryBudgetLike {
    return this.state.retryBudget;
  }

  /**
   * Admission of a routed request before any pick: brownout, adaptive admission, then the global
   * and per-upstream in-flight limits. Null when it may go on.
   */
  admit(): AdmissionShed | ShedReason | null {
    const { admission } = this.deps;
    const limits = admission.limits;
    return (
      admission.admit(this.name) ??
      (!admission.inFlight.hasRoom(limits.global)
        ? 'global_inflight'
        : !this.state.inFlight.hasRoom(limits.perUpstream)
          ? 'upstream_inflight'
          : null)
    );
  }

  /** In service: healthy and not drained. */
  inService(id: string): boolean {
    const h = this.hosts.get(id);
    return h !== undefined && serving(h);
  }

  /**
   * Picks a backend not in `tried` (healthy, undrained, circuit-closed, with room) and reserves its
   * in-flight slot and breaker probe; or says why none could take the request.
   */
  pick(ctx: PickContext, tried: Set<string>): Host | OverloadReason {
    const { admission } = this.deps;
    const limits = admission.limits;
    const now = this.deps.now();
    const eligible = (b: RuntimeBackend) => {
      if (tried.has(b.id)) return false;
      const h = this.hosts.get(b.id) as Host;
      return serving(h) && h.breaker.allows(now) && h.inFlight.hasRoom(limits.perBackend);
    };
    for (;;) {
      const backend = this.balancer.pick(ctx, eligible);
      if (!backend) return this.shedReason(now);
      tried.add(backend.id);
      const host = this.hosts.get(backend.id) as Host;
      if (acquireSlot(limits, host.slot) !== null) continue;
      if (!host.breaker.tryAcquire(now)) {
        releaseSlot(host.slot);
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
      return this.attemptDispatch(host)(request, handler);
    };
  }

  /**
   * The per-backend stages over the backend's dispatcher, composed once per backend (each
   * attempt then allocates one object per stage, nothing else).
   */
  private attemptDispatch(host: Host): DispatchFn {
    const id = host.backend.id;
    let dispatch = this.attemptChains.get(id);
    if (!dispatch) {
      const now = () => this.deps.now();
      dispatch = compose(
        (req, h) => host.dispatcher.get().dispatch(req, h),
        accountAttempt(this.account(host), now),
        circuitBreaker(this.breakerTarget(host), now),
        checkResponse(id),
      );
      this.attemptChains.set(id, dispatch);
    }
    return dispatch;
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
    const { admission, metrics } = this.deps;
    const id = host.backend.id;
    return {
      record: (ok, latencyMs) => {
        const now = this.deps.now();
        admission.record(ok, latencyMs);
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

  private account(host: Host): AttemptAccount {
    const { admission, metrics } = this.deps;
    const labels = { route: this.name, backend: host.backend.id };
    const outcomeLabels = new Map<string, { route: string; backend: string; outcome: string }>();
    return {
      responded: (ms) => metrics.upstreamDuration.observe(labels, ms / 1000),
      release: (outcome) => {
        let l = outcomeLabels.get(outcome);
        if (!l) outcomeLabels.set(outcome, (l = { ...labels, outcome }));
        metrics.upstreamRequests.inc(l);
        releaseSlot(host.slot);
        admission.observeLoad();
      },
    };
  }
}
