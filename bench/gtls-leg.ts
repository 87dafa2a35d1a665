/**
 * The C-client leg of `npm run bench` (issue #16): Spooky as operators run it (`workers: auto`,
 * default logging) and Caddy (which uses every core too) side by side in front of nghttpd,
 * loaded by several `gtlsclient` processes (ngtcp2's C client), so that a slow load generator
 * never hides a slow proxy. Small GETs (16 clients, up to 100 in flight each), 1 MiB downloads
 * and 1 MiB uploads (4 clients, 300 each, up to 100 in flight). Rate and CPU per
 * request come from the steady window as in the workers leg (bench/workers.ts); the targets
 * alternate inside each round and figures are medians over rounds.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCaddy, startSpooky } from './targets.js';
import { type LegOptions, measureSteady, median, notProxied, startNghttpd } from './workers.js';

export interface GtlsMeasure {
  scenario: string;
  target: 'spooky' | 'caddy';
  rps: number;
  cpu_ms_per_req: number;
  peak_rss_mib: number;
  failed_clients: number;
  /** Responses Spooky answered itself (non-2xx); Caddy: not counted. */
  not_proxied: number;
}

interface GtlsScenario {
  name: string;
  path: string;
  clients: number;
  requests: number;
  quickRequests: number;
  /** POST bodies of this size (the backend answers with /small's 1 KiB). */
  uploadBytes?: number;
}

const SCENARIOS: readonly GtlsScenario[] = [
  { name: 'gtls-small-get', path: '/small', clients: 16, requests: 4000, quickRequests: 4000 },
  { name: 'gtls-download-1mib', path: '/1mib', clients: 4, requests: 300, quickRequests: 120 },
  { name: 'gtls-upload-1mib', path: '/small', clients: 4, requests: 300, quickRequests: 120, uploadBytes: 1 << 20 },
];

export async function benchGtls(opts: LegOptions & { scenarios?: ReadonlySet<string> }): Promise<GtlsMeasure[]> {
  const scenarios = SCENARIOS.filter((sc) => !opts.scenarios || opts.scenarios.has(sc.name));
  const backend = await startNghttpd(opts.dir);
  const uploadFile = join(opts.dir, 'gtls-upload.bin');
  writeFileSync(uploadFile, randomBytes(1 << 20));
  const all: GtlsMeasure[] = [];
  try {
    for (let round = 0; round < opts.rounds; round++) {
      for (const sc of scenarios) {
        const targets = round % 2 === 0 ? (['spooky', 'caddy'] as const) : (['caddy', 'spooky'] as const);
        for (const target of targets) {
          const proxy =
            target === 'spooky'
              ? await startSpooky(opts.dir, backend.port, opts.cert, opts.nodeFlags, {
                  maxStreams: 100,
                  workers: 'auto',
                  ready: /"msg":"(workers )?listening"/,
                })
              : await startCaddy(opts.dir, backend.port, opts.cert);
          try {
            const requests = opts.quick ? sc.quickRequests : sc.requests;
            const r = await measureSteady({
              label: `${sc.name} ${target}`,
              proxyPid: proxy.pid,
              port: proxy.port,
              backendPid: backend.pid,
              path: sc.path,
              clients: sc.clients,
              requests,
              dataFile: sc.uploadBytes ? uploadFile : undefined,
            });
            await proxy.stop();
            const m: GtlsMeasure = {
              scenario: sc.name,
              target,
              rps: r.rps,
              cpu_ms_per_req: r.cpuSecondsPerRequest * 1000,
              peak_rss_mib: r.peakRssMiB,
              failed_clients: sc.clients - r.okClients,
              not_proxied: target === 'spooky' ? notProxied(proxy.output()) : 0,
            };
            all.push(m);
            opts.log(
              `  ${sc.name} ${target}: ${m.rps.toFixed(0)} req/s, ${m.cpu_ms_per_req.toFixed(3)} CPU ms/req, peak RSS ${m.peak_rss_mib.toFixed(0)} MiB, failed clients ${m.failed_clients}, not proxied ${m.not_proxied}`,
            );
          } finally {
            await proxy.stop();
          }
        }
      }
    }
  } finally {
    await backend.stop();
  }
  return scenarios.flatMap((sc) =>
    (['spooky', 'caddy'] as const).map((target) => {
      const ms = all.filter((m) => m.scenario === sc.name && m.target === target);
      return {
        scenario: sc.name,
        target,
        rps: median(ms.map((m) => m.rps)),
        cpu_ms_per_req: median(ms.map((m) => m.cpu_ms_per_req)),
        peak_rss_mib: median(ms.map((m) => m.peak_rss_mib)),
        failed_clients: ms.reduce((n, m) => n + m.failed_clients, 0),
        not_proxied: ms.reduce((n, m) => n + m.not_proxied, 0),
      };
    }),
  );
}

export function gtlsMarkdown(rows: GtlsMeasure[]): string {
  const f = (v: number, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : '–');
  const lines = [
    '',
    '## C client leg (gtlsclient processes, nghttpd backend; Spooky with workers: auto; rate and CPU over the window while all clients run)',
    '',
    '| scenario | Spooky req/s | Caddy req/s | Spooky/Caddy | CPU ms per req S / C | peak RSS MiB S / C | failed clients S / C | not proxied S |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const name of new Set(rows.map((r) => r.scenario))) {
    const s = rows.find((r) => r.scenario === name && r.target === 'spooky');
    const c = rows.find((r) => r.scenario === name && r.target === 'caddy');
    if (!s || !c) continue;
    lines.push(
      `| ${name} | ${f(s.rps)} | ${f(c.rps)} | ${f(s.rps / c.rps, 2)} | ${f(s.cpu_ms_per_req, 3)} / ${f(c.cpu_ms_per_req, 3)} | ${f(s.peak_rss_mib)} / ${f(c.peak_rss_mib)} | ${s.failed_clients} / ${c.failed_clients} | ${s.not_proxied} |`,
    );
  }
  lines.push(
    '',
    'gtls-small-get: 16 clients × 4,000 GETs, up to 100 in flight each (both proxies allow 100 streams); gtls-download-1mib / gtls-upload-1mib: 4 clients × 300 downloads / POSTs of 1 MiB (answered with 1 KiB), up to 100 in flight each.',
    '',
  );
  return lines.join('\n');
}
