#!/usr/bin/env node
// Runs the compiled tests with node:test: unit tests (next to the code) in parallel, then the
// end-to-end tests (e2e/) one file at a time, since each starts real processes and sockets.
// Usage: node scripts/test.mjs [unit|e2e|all] [filter[,filter...]]   (a file runs when its path
// contains one of the filters). The tests run on the Node.js that runs this script.
import { spawnSync } from 'node:child_process';
import { globSync } from 'node:fs';
import { join } from 'node:path';

const [which = 'all', filterArg = ''] = process.argv.slice(2);
const filters = filterArg.split(',');
const root = new URL('../dist/', import.meta.url).pathname;

const all = globSync('**/*.test.js', { cwd: root })
  .map((rel) => join(root, rel))
  .filter((p) => filters.some((f) => p.includes(f)))
  .sort();
const e2e = all.filter((f) => f.startsWith(join(root, 'e2e')));
const unit = all.filter((f) => !e2e.includes(f));
const runs = [];
if (which !== 'e2e' && unit.length) runs.push(['unit', unit, 2]);
if (which !== 'unit' && e2e.length) runs.push(['e2e', e2e, 1]);
process.stdout.write(`# node ${process.version} (${process.execPath})\n`);
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
