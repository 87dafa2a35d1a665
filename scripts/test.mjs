#!/usr/bin/env node
// Runs the compiled tests with node:test: unit tests (next to the code) in parallel, then the
// end-to-end tests (e2e/) one file at a time, since each starts real processes and sockets.
// Usage: node scripts/test.mjs [unit|e2e] [name-filter]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const [which = 'all', filter = ''] = process.argv.slice(2);
const root = new URL('../dist/', import.meta.url).pathname;

function find(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith('.test.js') && p.includes(filter)) out.push(p);
  }
  return out;
}

const all = find(root).sort();
const e2e = all.filter((f) => f.startsWith(join(root, 'e2e')));
const unit = all.filter((f) => !e2e.includes(f));
const runs = [];
if (which !== 'e2e' && unit.length) runs.push(['unit', unit, 2]);
if (which !== 'unit' && e2e.length) runs.push(['e2e', e2e, 1]);
let failed = false;
for (const [name, files, concurrency] of runs) {
  process.stdout.write(`\n# ${name}: ${files.length} files\n`);
  const r = spawnSync(
    process.execPath,
    ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=180000', '--test-reporter=spec', ...files],
    { stdio: 'inherit' },
  );
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
