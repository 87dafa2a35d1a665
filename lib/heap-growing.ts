/**
 * The data plane's old-generation growing factor (issue #16, docs/performance.md "Memory").
 *
 * V8 starts marking the old generation as soon as its headroom (limit minus size) is below the
 * young generation's capacity. With the daemons' 2 × 16 MiB young generation and the data
 * plane's small live heap (~22 MiB), the limit V8 derives (1.1–2 × the live heap) leaves less
 * headroom than that right after every full collection, so under a steady upload or download
 * the data plane marked without pause: a full collection every ~50 ms, V8's helper threads at
 * about a third of the process CPU. A factor of 3 leaves ~44 MiB of headroom at that size.
 *
 * Set at run time (V8 reads it whenever it recomputes the limit) rather than on the command
 * line: the container's `#!` line carries one flag only (deploy/container/README.md), and an
 * operator's own `--heap-growing-percent` on the command line (docs/operations.md: 20 on a
 * memory-tight host) wins.
 */
import v8 from 'node:v8';

export const HEAP_GROWING_PERCENT = 200;
const FLAG = '--heap-growing-percent';

/**
 * Applies HEAP_GROWING_PERCENT unless the process was started with its own (Node refuses the
 * flag in NODE_OPTIONS, so the command line is the only place); returns what applies.
 */
export function applyHeapGrowing(execArgv: readonly string[] = process.execArgv): {
  percent: number | null;
  source: 'spooky' | 'operator';
} {
  // V8 takes `_` for `-` in flag names.
  const own = execArgv
    .map((a) => a.replace(/^(--[a-z_-]+)/, (name) => name.replaceAll('_', '-')))
    .find((a) => a === FLAG || a.startsWith(`${FLAG}=`));
  if (own) {
    const value = Number(own.split('=')[1]);
    return { percent: Number.isFinite(value) ? value : null, source: 'operator' };
  }
  v8.setFlagsFromString(`${FLAG}=${HEAP_GROWING_PERCENT}`);
  return { percent: HEAP_GROWING_PERCENT, source: 'spooky' };
}
