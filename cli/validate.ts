/** `spooky validate FILE`: exit 0 with a one-line summary, 1 with every problem, 2 on usage errors. */
import { existsSync } from 'node:fs';
import { formatIssues, loadConfigFile } from '../controlplane/config/load.js';

export function runValidate(file: string, json: boolean): number {
  if (!existsSync(file)) {
    process.stderr.write(`spooky: ${file}: no such file\n`);
    return 2;
  }
  const r = loadConfigFile(file);
  if (!r.ok) {
    if (json) process.stdout.write(`${JSON.stringify({ ok: false, errors: r.errors }, null, 2)}\n`);
    else process.stderr.write(`${formatIssues(file, r.errors)}\n`);
    return 1;
  }
  const pools = Object.keys(r.config.upstream);
  const backends = pools.reduce((n, p) => n + r.config.upstream[p].backends.length, 0);
  const summary = { ok: true, listeners: 1, pools: pools.length, backends };
  if (json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else process.stdout.write(`${file}: ok (1 listener, ${pools.length} pools, ${backends} backends)\n`);
  return 0;
}
