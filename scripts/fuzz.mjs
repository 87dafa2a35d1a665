#!/usr/bin/env node
// The long fuzz run (`npm run fuzz`, which builds first): every property of dist/fuzz/ with many
// more runs than CI and a fresh random seed, printed first so any failure can be replayed.
// Builds nothing itself. Exit code: node --test's.
//   FUZZ_RUNS  runs per property (default 20000)
//   FUZZ_SEED  seed (default: random)
//   Other FUZZ_* variables (FUZZ_TIME_LIMIT_MS, FUZZ_SLOW_MS, FUZZ_PATH) pass through; see fuzz/README.md.
// Extra arguments go to node --test, e.g. `node scripts/fuzz.mjs --test-name-pattern=Huffman`.
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';

const dir = new URL('../dist/fuzz/', import.meta.url).pathname;
if (!existsSync(dir)) {
  console.error(`no ${dir}: run npm run build first (npm run fuzz does)`);
  process.exit(2);
}
const runs = process.env.FUZZ_RUNS || '20000';
const seed = process.env.FUZZ_SEED || String(randomInt(1, 2 ** 31 - 1));
console.log(`# fuzz: FUZZ_SEED=${seed} FUZZ_RUNS=${runs}`);
console.log(`# reproduce: FUZZ_SEED=${seed} FUZZ_RUNS=${runs} node --test dist/fuzz/<file>.js`);
const started = Date.now();
const r = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=2', '--test-reporter=spec', ...process.argv.slice(2), dir],
  { stdio: 'inherit', env: { ...process.env, FUZZ_RUNS: runs, FUZZ_SEED: seed } },
);
console.log(
  `# fuzz: done in ${((Date.now() - started) / 1000).toFixed(0)} s, seed ${seed}, exit ${r.status ?? r.signal}`,
);
process.exit(r.status ?? 1);
