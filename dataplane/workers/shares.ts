/**
 * How the configured limits split across data-plane workers. Each worker is its own process with
 * its own connection table, buckets and in-flight counts (no shared counters: nothing to lock on
 * the request path), so each enforces a share of every host-wide limit: the total divided by the
 * number of workers, rounded down, at least 1. The configured totals therefore hold on the host
 * whenever a limit is at least the worker count (docs/configuration.md "Workers"). The kernel
 * spreads connections over workers by their 4-tuple, so a source's connections land evenly on
 * average; one whose connections cluster on one worker meets that worker's share first.
 */
import { availableParallelism } from 'node:os';
import type { RuntimeConfig } from '../../model/config/runtime.js';

type Performance = RuntimeConfig['performance'];

/**
 * The memory `auto` gives each worker at least: a worker's share of the memory limit is what its
 * memory guard holds it to, and an idle worker (Node, quiche, buffers) already needs about 100 MiB.
 */
export const MIN_WORKER_MEMORY_MIB = 256;

/**
 * `performance.workers` as a count: `auto` is one per core the process may use, but no more than
 * `memoryLimitMiB` (the memory limit, or the automatic one) gives MIN_WORKER_MEMORY_MIB each.
 */
export function resolveWorkerCount(
  setting: Performance['workers'],
  memoryLimitMiB: number,
  cores = availableParallelism(),
): number {
  if (setting !== 'auto') return setting;
  return Math.max(1, Math.min(cores, Math.floor(memoryLimitMiB / MIN_WORKER_MEMORY_MIB)));
}

/** `config` with `performance.workers` set by `spooky-dataplane --workers` (it wins over the file and snapshots). */
export function pinWorkers(config: RuntimeConfig, workers: Performance['workers'] | undefined): RuntimeConfig {
  if (workers === undefined || config.performance.workers === workers) return config;
  return Object.freeze({ ...config, performance: Object.freeze({ ...config.performance, workers }) });
}

/** The limits of `performance` that are host-wide totals, split per worker. */
export const SHARED_LIMITS = [
  'new_connections_per_sec',
  'new_connections_burst',
  'max_active_connections',
  'per_source_max_connections',
  'per_source_new_connections_per_sec',
  'per_source_new_connections_burst',
  'global_inflight_limit',
  'per_upstream_inflight_limit',
  'per_backend_inflight_limit',
] as const satisfies ReadonlyArray<keyof Performance>;

export function share(total: number, workers: number): number {
  return Math.max(1, Math.floor(total / workers));
}

/**
 * One worker's view of `config`: every host-wide limit replaced by its share. `autoMemoryMiB` is
 * what `memory_limit_mib: 0` (automatic) stands for on this host; each worker gets its share too.
 */
export function workerShare(config: RuntimeConfig, workers: number, autoMemoryMiB: number): RuntimeConfig {
  if (workers <= 1) return config;
  const perf: Record<string, unknown> = { ...config.performance };
  for (const key of SHARED_LIMITS) perf[key] = share(config.performance[key], workers);
  const memory = config.performance.memory_limit_mib || autoMemoryMiB;
  perf.memory_limit_mib = share(memory, workers);
  const adaptive = config.resilience.adaptive_admission;
  return Object.freeze({
    ...config,
    performance: Object.freeze(perf as unknown as Performance),
    resilience: Object.freeze({
      ...config.resilience,
      adaptive_admission: Object.freeze({
        ...adaptive,
        min_limit: share(adaptive.min_limit, workers),
        max_limit: share(adaptive.max_limit, workers),
      }),
    }),
  });
}
