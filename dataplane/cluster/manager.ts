/**
 * Holds what outlives a snapshot and builds each snapshot's clusters from it (Envoy's cluster
 * manager): the process-wide admission (GlobalAdmission), health and drain (BackendStates), and
 * the state of every pool (in-flight count, retry budget) and backend (breaker, latency, in-flight
 * count, dispatcher), carried over to the new cluster of a pool or backend that stays. A
 * committed snapshot retires the dispatchers nothing uses any more.
 */

import { type UpstreamTlsOptions, upstreamTlsOptions } from '../../lib/upstream-tls.js';
import type { RuntimeBackend, RuntimeConfig, RuntimePool } from '../../model/config/runtime.js';
import { BackendStates } from '../backend-states.js';
import { PeakEwma } from '../balancer/policies.js';
import type { DataPlaneMetrics } from '../metrics.js';
import { CircuitBreaker } from '../resilience/circuit-breaker.js';
import { InflightCount } from '../resilience/inflight.js';
import { RetryBudget } from '../resilience/retry-budget.js';
import { Snapshot } from '../snapshot.js';
import { createDispatcher, type DispatcherFactory, dispatcherKey } from '../upstream/factory.js';
import { Cluster, type ClusterDeps, type ClusterState, DispatcherSlot, type HostState } from './cluster.js';
import { breakerPolicyOf, GlobalAdmission } from './global-admission.js';

export interface ClusterManagerOptions {
  /** Makes a backend's dispatcher (tests pass fakes); by default HTTP/2 or HTTP/1.1 clients. */
  createDispatcher?: DispatcherFactory;
  now?: () => number;
}

/** The upstream TLS settings new TLS dispatchers are made with, and their generation. */
interface UpstreamTls {
  readonly json: string;
  readonly options: UpstreamTlsOptions;
  readonly generation: number;
}

export class ClusterManager {
  readonly admission: GlobalAdmission;
  readonly states = new BackendStates();
  private readonly createDispatcher: DispatcherFactory;
  private readonly deps: ClusterDeps;
  /** Breaker policy of the committed snapshot: a change starts every breaker afresh. */
  private breakerPolicy: string;
  private budgetPercent: number;
  private tls: UpstreamTls;
  /** State of the committed snapshot's backends, by backend id (ids are unique in a config). */
  private hosts = new Map<string, HostState>();
  /** State of the committed snapshot's pools, by name. */
  private pools = new Map<string, ClusterState>();

  constructor(config: RuntimeConfig, metrics: DataPlaneMetrics, options: ClusterManagerOptions = {}) {
    this.admission = new GlobalAdmission(config);
    this.createDispatcher = options.createDispatcher ?? createDispatcher;
    this.deps = { admission: this.admission, metrics, now: options.now ?? (() => performance.now()) };
    this.breakerPolicy = JSON.stringify(breakerPolicyOf(config));
    this.budgetPercent = config.resilience.retries.budget_percent;
    this.tls = {
      json: JSON.stringify(config.upstreamTls),
      options: upstreamTlsOptions(config.upstreamTls),
      generation: 0,
    };
  }

  /**
   * A snapshot of `config` with its clusters, sharing the state of pools and backends that stay;
   * nothing changes until `commit` (a snapshot that fails to build leaves everything as it was).
   */
  build(version: number, config: RuntimeConfig): Snapshot {
    const policy = breakerPolicyOf(config);
    const samePolicy = JSON.stringify(policy) === this.breakerPolicy;
    const budgetPercent = config.resilience.retries.budget_percent;
    const tls = this.tlsOf(config);
    const hostState =
      (pool: RuntimePool) =>
      (b: RuntimeBackend): HostState => {
        const prev = this.hosts.get(b.id);
        const key = dispatcherKey(b, pool, tls.generation);
        return {
          breaker: prev && samePolicy ? prev.breaker : new CircuitBreaker(policy),
          latency: prev?.latency ?? new PeakEwma(),
          inFlight: prev?.inFlight ?? new InflightCount(),
          dispatcher:
            prev?.dispatcher.key === key
              ? prev.dispatcher
              : new DispatcherSlot(key, () => this.createDispatcher(b, pool, tls.options)),
          health: this.states.stateOf(b.id),
        };
      };
    const clusters = new Map<string, Cluster>();
    for (const [name, pool] of config.pools) {
      const prev = this.pools.get(name);
      const state: ClusterState = {
        inFlight: prev?.inFlight ?? new InflightCount(),
        // A new percentage starts a new budget; requests in flight finish on the one they took.
        retryBudget: prev && budgetPercent === this.budgetPercent ? prev.retryBudget : new RetryBudget(budgetPercent),
      };
      clusters.set(name, new Cluster(pool, this.deps, state, hostState(pool)));
    }
    return new Snapshot(version, config, clusters);
  }

  /**
   * The snapshot is now the one requests start on: new limits and policies, and the dispatchers
   * of backends that left (or changed origin, protocol, timeouts or TLS) drain and close.
   */
  commit(snapshot: Snapshot): void {
    const config = snapshot.config;
    this.tls = this.tlsOf(config);
    this.breakerPolicy = JSON.stringify(breakerPolicyOf(config));
    this.budgetPercent = config.resilience.retries.budget_percent;
    const hosts = new Map<string, HostState>();
    const pools = new Map<string, ClusterState>();
    for (const cluster of snapshot.clusters.values()) {
      pools.set(cluster.name, cluster.state);
      for (const host of cluster.allHosts()) hosts.set(host.backend.id, host);
    }
    const kept = new Set([...hosts.values()].map((h) => h.dispatcher));
    for (const prev of this.hosts.values()) if (!kept.has(prev.dispatcher)) prev.dispatcher.close();
    this.hosts = hosts;
    this.pools = pools;
    this.admission.configure(config);
  }

  /** Backends of the committed snapshot with attempts in flight, and their counts. */
  backendsInFlight(): Array<{ backendId: string; inFlight: number }> {
    const out: Array<{ backendId: string; inFlight: number }> = [];
    for (const [backendId, h] of this.hosts)
      if (h.inFlight.value > 0) out.push({ backendId, inFlight: h.inFlight.value });
    return out;
  }

  /** Closes every upstream connection now (after the drain at stop). */
  destroy(): void {
    for (const h of this.hosts.values()) h.dispatcher.destroy();
  }

  /** The committed TLS settings, or the next generation when `config` changes them. */
  private tlsOf(config: RuntimeConfig): UpstreamTls {
    const json = JSON.stringify(config.upstreamTls);
    if (json === this.tls.json) return this.tls;
    return { json, options: upstreamTlsOptions(config.upstreamTls), generation: this.tls.generation + 1 };
  }
}
