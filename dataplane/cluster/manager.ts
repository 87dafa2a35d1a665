/**
 * Holds what outlives a snapshot and builds each snapshot's clusters from it (Envoy's cluster
 * manager): the process-wide admission state (BackendRuntime), health and drain (BackendStates),
 * the dispatchers (UpstreamAgent, so warm upstream sessions survive an apply) and each backend's
 * breaker and latency estimate, carried over to the new cluster of a backend that stays.
 */

import { upstreamTlsOptions } from '../../lib/upstream-tls.js';
import type { RuntimeBackend, RuntimeConfig } from '../../model/config/runtime.js';
import { BackendRuntime, breakerPolicyOf } from '../backend-runtime.js';
import { BackendStates } from '../backend-states.js';
import { PeakEwma } from '../balancer/policies.js';
import type { DataPlaneMetrics } from '../metrics.js';
import { CircuitBreaker } from '../resilience/circuit-breaker.js';
import { Snapshot } from '../snapshot.js';
import { UpstreamAgent } from '../upstream/agent.js';
import { Cluster, type ClusterDeps, type HostState } from './cluster.js';

export interface ClusterManagerOptions {
  /** The dispatcher factory (tests pass fakes); by default an UpstreamAgent over the config's TLS. */
  agent?: Pick<UpstreamAgent, 'get' | 'setTls' | 'retain' | 'destroy'>;
  now?: () => number;
}

export class ClusterManager {
  readonly runtime: BackendRuntime;
  readonly states = new BackendStates();
  private readonly agent: Pick<UpstreamAgent, 'get' | 'setTls' | 'retain' | 'destroy'>;
  private readonly deps: ClusterDeps;
  /** Breaker policy of the committed snapshot: a change starts every breaker afresh. */
  private breakerPolicy: string;
  /** Host state of the committed snapshot's backends, by backend id (ids are unique). */
  private hosts = new Map<string, HostState>();
  private config: RuntimeConfig;

  constructor(config: RuntimeConfig, metrics: DataPlaneMetrics, options: ClusterManagerOptions = {}) {
    this.runtime = new BackendRuntime(config, metrics);
    this.agent = options.agent ?? new UpstreamAgent(upstreamTlsOptions(config.upstreamTls));
    const now = options.now ?? (() => performance.now());
    const agent = this.agent;
    this.deps = {
      runtime: this.runtime,
      states: this.states,
      metrics,
      dispatcherFor: (backend, pool) => agent.get(backend, pool),
      now,
    };
    this.config = config;
    this.breakerPolicy = JSON.stringify(breakerPolicyOf(config));
  }

  /**
   * A snapshot of `config` with its clusters, sharing the state of backends that stay; nothing
   * changes until `commit` (a snapshot that fails to build leaves everything as it was).
   */
  build(version: number, config: RuntimeConfig): Snapshot {
    const policy = breakerPolicyOf(config);
    const samePolicy = JSON.stringify(policy) === this.breakerPolicy;
    const hostState = (b: RuntimeBackend): HostState => {
      const prev = this.hosts.get(b.id);
      return {
        breaker: prev && samePolicy ? prev.breaker : new CircuitBreaker(policy),
        latency: prev?.latency ?? new PeakEwma(),
      };
    };
    const clusters = new Map<string, Cluster>();
    for (const [name, pool] of config.pools) clusters.set(name, new Cluster(pool, this.deps, hostState));
    return new Snapshot(version, config, clusters);
  }

  /**
   * The snapshot is now the one requests start on: new limits and policies, new TLS settings for
   * new upstream sessions, dispatchers of backends that left (or changed) drain and close.
   */
  commit(snapshot: Snapshot): void {
    const config = snapshot.config;
    if (JSON.stringify(this.config.upstreamTls) !== JSON.stringify(config.upstreamTls)) {
      this.agent.setTls(upstreamTlsOptions(config.upstreamTls));
    }
    this.config = config;
    this.breakerPolicy = JSON.stringify(breakerPolicyOf(config));
    const hosts = new Map<string, HostState>();
    for (const cluster of snapshot.clusters.values()) {
      for (const b of cluster.pool.backends) hosts.set(b.id, cluster.host(b.id) as HostState);
    }
    this.hosts = hosts;
    this.runtime.configure(config);
    this.agent.retain(config.pools.values());
  }

  /** Closes every upstream connection now (after the drain at stop). */
  destroy(): void {
    this.agent.destroy();
  }
}
