/**
 * One immutable routing state: the runtime config plus the per-pool clusters built from it
 * (cluster/manager.ts). Requests capture the snapshot they started with; a new snapshot replaces
 * the reference whole.
 */
import type { RuntimeConfig } from '../model/config/runtime.js';
import type { Cluster } from './cluster/cluster.js';

export class Snapshot {
  constructor(
    readonly version: number,
    readonly config: RuntimeConfig,
    readonly clusters: ReadonlyMap<string, Cluster>,
  ) {}
}
