/**
 * One immutable routing state: the runtime config plus the per-pool balancers built from it.
 * Requests capture the snapshot they started with; a new snapshot replaces the reference whole.
 */
import type { RuntimeBackend, RuntimeConfig, RuntimePool } from '../controlplane/config/runtime.js';
import { SmoothWeightedRoundRobin } from './balancer/round-robin.js';

export interface PoolState {
  readonly pool: RuntimePool;
  readonly balancer: SmoothWeightedRoundRobin<RuntimeBackend>;
}

export class Snapshot {
  readonly pools: ReadonlyMap<string, PoolState>;

  constructor(
    readonly version: number,
    readonly config: RuntimeConfig,
  ) {
    const pools = new Map<string, PoolState>();
    for (const [name, pool] of config.pools) {
      // Every policy is round-robin until the traffic-management work adds the others.
      pools.set(name, { pool, balancer: new SmoothWeightedRoundRobin(pool.backends) });
    }
    this.pools = pools;
  }
}
