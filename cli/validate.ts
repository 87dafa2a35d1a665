/**
 * `spooky validate FILE`: exit 0 with a one-line summary (warnings, if any, on stderr), 1 with
 * every problem, 2 on usage errors (no such file). `--json` prints one machine-readable object.
 */
import { existsSync, statSync } from 'node:fs';
import { formatIssues, loadConfigFile } from '../model/config/load.js';
import type { Config } from '../model/config/schema.js';

export interface ConfigSummary {
  listeners: string[];
  pools: number;
  backends: number;
  /** Pools per balancing policy. */
  policies: Record<string, number>;
}

export function summarize(config: Config): ConfigSummary {
  const { address, port, tcp } = config.listen;
  const host = address.includes(':') ? `[${address}]` : address;
  const listeners = [`h3 udp ${host}:${port}`];
  if (tcp.enabled) listeners.push(`h1/h2 tcp ${host}:${port}`);
  const policies: Record<string, number> = {};
  let backends = 0;
  for (const pool of Object.values(config.upstream)) {
    const policy = pool.load_balancing?.type ?? config.load_balancing?.type ?? 'round-robin';
    policies[policy] = (policies[policy] ?? 0) + 1;
    backends += pool.backends.length;
  }
  return { listeners, pools: Object.keys(config.upstream).length, backends, policies };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export function summaryLine(s: ConfigSummary): string {
  const policies = Object.entries(s.policies)
    .map(([name, n]) => `${name} ×${n}`)
    .join(', ');
  return `${plural(s.listeners.length, 'listener')} (${s.listeners.join(', ')}), ${plural(s.pools, 'pool')}, ${plural(s.backends, 'backend')}, policies: ${policies}`;
}

export function runValidate(file: string, opts: { json: boolean; checkFiles: boolean }): number {
  const { json } = opts;
  if (!existsSync(file) || statSync(file).isDirectory()) {
    process.stderr.write(`spooky validate: ${file}: ${existsSync(file) ? 'is a directory' : 'no such file'}\n`);
    return 2;
  }
  const r = loadConfigFile(file, { checkFiles: opts.checkFiles });
  if (json) {
    const out = r.ok
      ? { ok: true, file, summary: summarize(r.config), errors: [], warnings: r.warnings }
      : { ok: false, file, errors: r.errors, warnings: r.warnings };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return r.ok ? 0 : 1;
  }
  if (r.warnings.length > 0) process.stderr.write(`${formatIssues(file, r.warnings, 'warning')}\n`);
  if (!r.ok) {
    process.stderr.write(`${formatIssues(file, r.errors)}\n`);
    process.stderr.write(`${file}: ${plural(r.errors.length, 'error')}; nothing was applied\n`);
    return 1;
  }
  process.stdout.write(`${file}: ok: ${summaryLine(summarize(r.config))}\n`);
  return 0;
}
