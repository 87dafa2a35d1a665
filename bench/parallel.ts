/**
 * Runs the load generator in several processes side by side (one Node process saturates one
 * core) and merges their histograms, so the generator is not the bottleneck.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { type LoadOptions, type LoadResult, mergeResults } from './loadgen.js';

const WORKER = join(new URL('.', import.meta.url).pathname, 'loadgen-worker.js');

export async function runLoadgen(
  opts: LoadOptions & { bodyBytes?: number; bodyFile?: string },
  processes = 1,
): Promise<LoadResult> {
  const per = {
    ...opts,
    body: undefined,
    connections: Math.max(1, Math.round(opts.connections / processes)),
    rate: opts.rate ? opts.rate / processes : undefined,
  };
  const runs = Array.from({ length: processes }, async () => {
    const p = spawn(process.execPath, [WORKER, JSON.stringify(per)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    const code = await new Promise<number | null>((r) => p.on('exit', r));
    if (code !== 0) throw new Error('the load generator failed (its reason is above)');
    return JSON.parse(out) as LoadResult;
  });
  return mergeResults(await Promise.all(runs));
}
