/**
 * Shared plumbing for the property-based fuzz tests (fuzz/*.fuzz.test.ts).
 *
 * CI runs every property a bounded number of times with a fixed seed, so a red build is
 * reproducible; `npm run fuzz` (scripts/fuzz.mjs) runs them much longer with a random seed. Every
 * failure message names the seed, the counterexample path and the command that replays it.
 *
 * Environment:
 *   FUZZ_RUNS           runs per property (default 200)
 *   FUZZ_SEED           fast-check seed (default DEFAULT_SEED)
 *   FUZZ_PATH           counterexample path to replay (use with --test-name-pattern)
 *   FUZZ_TIME_LIMIT_MS  stop each property after this long and count it as passed (long runs)
 *   FUZZ_SLOW_MS        budget of one call for withinMs (default 200)
 */
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';

/** The CI seed: fixed so that `npm test` is deterministic. */
export const DEFAULT_SEED = 0x5b0_0c1;
const DEFAULT_RUNS = 200;
const DEFAULT_SLOW_MS = 200;

/** Runs per property: FUZZ_RUNS, else 200 (CI). */
export function fuzzRuns(): number {
  const n = Math.floor(Number(process.env.FUZZ_RUNS));
  return n > 0 ? n : DEFAULT_RUNS;
}

/** The fast-check seed: FUZZ_SEED, else the fixed DEFAULT_SEED. */
export function fuzzSeed(): number {
  return Number(process.env.FUZZ_SEED) || DEFAULT_SEED;
}

/** Budget of a single call for withinMs: FUZZ_SLOW_MS, else 200 ms. */
export function slowMs(): number {
  return Number(process.env.FUZZ_SLOW_MS) || DEFAULT_SLOW_MS;
}

/** The compiled test file that is running, for the reproduction command. */
function currentTestFile(): string {
  const candidates = [process.argv[1] ?? '', ...(new Error().stack ?? '').split('\n')];
  for (const c of candidates) {
    const m = /(dist\/fuzz\/[\w.-]+\.test\.js)/.exec(c.replaceAll('\\', '/'));
    if (m) return m[1];
  }
  return 'dist/fuzz/';
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function namePattern(name: string): string {
  return `^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;
}

export interface CheckOptions {
  /** Runs for this property (default fuzzRuns()); network properties pass a smaller number. */
  numRuns?: number;
}

/**
 * Runs `property` with the fuzz seed and run count and throws, on failure, an error that says
 * how to replay it. `name` should be the title of the enclosing `it` so that the printed
 * --test-name-pattern selects exactly this property.
 */
export async function check<Ts>(name: string, property: fc.IRawProperty<Ts>, opts: CheckOptions = {}): Promise<void> {
  const file = currentTestFile();
  const seed = fuzzSeed();
  const runs = fuzzRuns();
  const numRuns = opts.numRuns ?? runs;
  const params: fc.Parameters<Ts> = { seed, numRuns };
  const replayPath = process.env.FUZZ_PATH;
  if (replayPath) params.path = replayPath;
  const limit = Number(process.env.FUZZ_TIME_LIMIT_MS);
  if (limit > 0) params.plugins = [fc.interruptAfterTimeLimit(limit) as fc.Plugin<Ts>];
  const details = await fc.check(property, params);
  if (!details.failed) return;
  const report = fc.defaultReportMessage(details) ?? '';
  const path = details.counterexamplePath ?? '';
  const cause = details.errorInstance;
  const lines = [
    `fuzz property "${name}" failed: seed=${seed} numRuns=${numRuns} path=${JSON.stringify(path)}`,
    `reproduce: FUZZ_SEED=${seed} FUZZ_RUNS=${runs} node --test ${file}`,
  ];
  if (path) {
    lines.push(
      `replay the shrunk counterexample: FUZZ_SEED=${seed} FUZZ_RUNS=${runs} FUZZ_PATH=${shellQuote(path)} ` +
        `node --test --test-name-pattern=${shellQuote(namePattern(name))} ${file}`,
    );
  }
  lines.push(report);
  if (cause instanceof Error && cause.stack && !report.includes(cause.stack)) lines.push(cause.stack);
  throw new Error(lines.join('\n'), { cause });
}

/**
 * Calls `fn` and fails when that single call takes longer than `ms` ("never a hang"): a slow
 * call is timed once more, so one GC or JIT pause does not fail the property. Whatever `fn`
 * returns or throws is passed through. A true infinite loop is caught by the test timeout.
 */
export function withinMs<T>(fn: () => T, ms: number = slowMs(), what = 'call'): T {
  const elapsed = (): [number, { value: T } | { error: unknown }] => {
    const t0 = performance.now();
    let out: { value: T } | { error: unknown };
    try {
      out = { value: fn() };
    } catch (error) {
      out = { error };
    }
    return [performance.now() - t0, out];
  };
  const [first, out] = elapsed();
  if (first > ms) {
    const [second] = elapsed();
    if (second > ms) {
      throw new Error(`${what} took ${first.toFixed(1)} ms and then ${second.toFixed(1)} ms (budget ${ms} ms)`);
    }
  }
  if ('error' in out) throw out.error;
  return out.value;
}

/** Like withinMs for one asynchronous call: rejects once `ms` pass without an answer. */
export async function withinMsAsync<T>(fn: () => Promise<T>, ms: number, what = 'call'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([fn(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `fn`; returns its value, or the error when `isTyped(error)` holds. Any other exception
 * propagates and fails the property.
 */
export function typedOutcome<T, E>(
  fn: () => T,
  isTyped: (e: unknown) => e is E,
): { ok: true; value: T } | { ok: false; error: E } {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    if (isTyped(e)) return { ok: false, error: e };
    throw e;
  }
}

/** Bytes as hex, for readable assertion messages. */
export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Splits `bytes` at the given cut points (any numbers; taken modulo length+1, sorted). */
export function splitAt(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

/** Per-test timeout for node:test: generous, scaled with the run count (a hang still ends). */
export function testTimeoutMs(perRunMs = 50): number {
  return Math.max(60_000, fuzzRuns() * perRunMs);
}
