/**
 * One immutable routing state: the runtime config plus the per-pool balancers built from it.
 * Requests capture the snapshot they started with; a new snapshot replaces the reference whole.
 */
import type { RuntimeBackend, RuntimeConfig, RuntimePool } from '../model/config/runtime.js';
import { type BackendLoad, type Balancer, createBalancer } from './balancer/policies.js';

export interface PoolState {
  readonly pool: RuntimePool;
  readonly balancer: Balancer<RuntimeBackend>;
}

export class Snapshot {
  readonly pools: ReadonlyMap<string, PoolState>;

  constructor(
    readonly version: number,
    readonly config: RuntimeConfig,
    load: BackendLoad,
  ) {
    const pools = new Map<string, PoolState>();
    for (const [name, pool] of config.pools) {
      pools.set(name, { pool, balancer: createBalancer(pool.policy, pool.backends, load) });
    }
    this.pools = pools;
  }
}
