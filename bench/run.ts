#!/usr/bin/env node
/**
 * `npm run bench [-- --quick] [--only NAME,...] [--rounds N] [--processes N] [--spooky-node-flags "F"]`: Spooky and Caddy side by side on
 * this machine, against the same HTTP/2 backend, driven by the same HTTP/3 load generator, plus
 * the HTTP/2 ceiling (h2load straight at the backend). Targets are interleaved inside each round
 * and every figure is the median over rounds. Then the C-client leg (bench/gtls-leg.ts: Spooky and
 * Caddy under gtlsclient load; `--only gtls`, or one scenario: `--only gtls-upload-1mib`) and the workers leg (bench/workers.ts: 1, 2, auto
 * workers under gtlsclient load; `--only workers` for just that), and the fleet leg
 * (bench/fleet.ts: how long an apply takes to reach five data planes over mutual TLS; `--only
 * fleet`). Writes JSON and Markdown to bench/results/.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { generateSelfSigned } from '../cli/certs.js';
import { DAEMON_NODE_FLAGS } from '../lib/daemon-flags.js';
import { benchFleet, type FleetMeasure, fleetMarkdown } from './fleet.js';
import { benchGtls, type GtlsMeasure, gtlsMarkdown } from './gtls-leg.js';
import type { LoadResult } from './loadgen.js';
import { runLoadgen } from './parallel.js';
import {
  cpuSeconds,
  DIST,
  peakRssMiB,
  resetPeakRss,
  runH2load,
  startBackend,
  startCaddy,
  startSpooky,
} from './targets.js';
import { benchWorkers, type WorkersMeasure, workersMarkdown } from './workers.js';

interface Scenario {
  name: string;
  description: string;
  path: string;
  connections: number;
  streams: number;
  bodyBytes?: number;
  newConnections?: boolean;
  /**
   * The comparison row: Spooky with the access log off, against the Caddy and ceiling figures of
   * the scenario named here (measured in the same rounds).
   */
  accessLogOffOf?: string;
}

export const SCENARIOS: Scenario[] = [
  { name: 'small-get-c1', description: '1 KiB GET, 1 stream', path: '/small', connections: 1, streams: 1 },
  { name: 'small-get-c16', description: '1 KiB GET, 1 conn × 16 streams', path: '/small', connections: 1, streams: 16 },
  {
    name: 'small-get-c64',
    description: '1 KiB GET, 4 conns × 16 streams',
    path: '/small',
    connections: 4,
    streams: 16,
  },
  {
    name: 'small-get-c64-no-access-log',
    description: 'as small-get-c64, Spooky with log.access_log: false',
    path: '/small',
    connections: 4,
    streams: 16,
    accessLogOffOf: 'small-get-c64',
  },
  {
    name: 'small-get-c256',
    description: '1 KiB GET, 8 conns × 32 streams',
    path: '/small',
    connections: 8,
    streams: 32,
  },
  { name: 'download-1mib', description: '1 MiB GET, 1 conn × 4 streams', path: '/1mib', connections: 1, streams: 4 },
  {
    name: 'upload-1mib',
    description: '1 MiB POST, 1 conn × 4 streams',
    path: '/upload',
    connections: 1,
    streams: 4,
    bodyBytes: 1 << 20,
  },
  {
    name: 'new-connections',
    description: 'one 1 KiB GET per new connection, 8 at a time',
    path: '/small',
    connections: 8,
    streams: 1,
    newConnections: true,
  },
  {
    name: 'slow-backend',
    description: 'backend answers after 50 ms, 8 conns × 32 streams',
    path: '/slow',
    connections: 8,
    streams: 32,
  },
];

interface Measure {
  rps: number;
  p50_ms: number | null;
  p99_ms: number | null;
  errors: number;
  cpu_s_per_1k: number | null;
  peak_rss_mib: number | null;
  client_cpu_s?: number;
  mib_per_s?: number;
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyArg = args.indexOf('--only');
const only = onlyArg >= 0 ? new Set(args[onlyArg + 1].split(',')) : null;
const roundsArg = args.indexOf('--rounds');
const rounds = roundsArg >= 0 ? Number(args[roundsArg + 1]) : quick ? 1 : 3;
const procArg = args.indexOf('--processes');
const processes = procArg >= 0 ? Number(args[procArg + 1]) : 1;
// --spooky-node-flags "FLAGS": the data plane's Node flags instead of the daemons' (experiments).
const flagsArg = args.indexOf('--spooky-node-flags');
const spookyNodeFlags = flagsArg >= 0 ? args[flagsArg + 1].split(' ').filter(Boolean) : DAEMON_NODE_FLAGS;
const durationMs = quick ? 2000 : 6000;
const warmupMs = quick ? 500 : 1500;

const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function fromLoad(r: LoadResult, cpuS: number, rssMiB: number): Measure {
  const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
  return {
    rps: r.rps,
    p50_ms: r.latencyUs.p50 / 1000,
    p99_ms: r.latencyUs.p99 / 1000,
    errors,
    cpu_s_per_1k: r.requests > 0 ? (cpuS / r.requests) * 1000 : null,
    peak_rss_mib: rssMiB,
    client_cpu_s: r.clientCpuS,
    mib_per_s: r.bytesPerS / (1 << 20),
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(os.tmpdir(), 'spooky-bench-'));
  const cert = generateSelfSigned(dir);
  const uploadFile = join(dir, 'upload.bin');
  writeFileSync(uploadFile, Buffer.alloc(1 << 20, 'u'));
  const backend = await startBackend();
  const scenarios = SCENARIOS.filter((s) => !only || only.has(s.name));
  const startProxies = async () => {
    const [s, c, q] = await Promise.all([
      startSpooky(dir, backend.port, cert, spookyNodeFlags),
      startCaddy(dir, backend.port, cert),
      scenarios.some((sc) => sc.accessLogOffOf)
        ? startSpooky(dir, backend.port, cert, spookyNodeFlags, { accessLog: false })
        : null,
    ]);
    return { spooky: s, caddy: c, quiet: q };
  };
  let { spooky, caddy, quiet } = await startProxies();
  let workers: WorkersMeasure[] = [];
  let gtls: GtlsMeasure[] = [];
  let fleet: FleetMeasure | null = null;
  const runs: Record<string, Record<'spooky' | 'caddy' | 'ceiling', Measure[]>> = {};
  const started = new Date();
  process.stderr.write(`bench: ${quick ? 'quick' : 'full'} run, ${rounds} round(s), ${scenarios.length} scenarios\n`);
  try {
    for (let round = 0; round < rounds; round++) {
      if (round > 0) {
        // Fresh proxies every round: neither gives back all the memory a scenario grew (Spooky
        // keeps most of what connection churn took), so a later round's peak RSS would be an
        // earlier round's.
        await Promise.all([spooky.stop(), caddy.stop(), quiet?.stop()]);
        ({ spooky, caddy, quiet } = await startProxies());
      }
      for (const sc of scenarios) {
        runs[sc.name] ??= { spooky: [], caddy: [], ceiling: [] };
        // Interleave the targets, rotating who goes first, so drift hits them alike.
        const order = (['spooky', 'caddy', 'ceiling'] as const).map((_, i, a) => a[(i + round) % a.length]);
        for (const target of order) {
          if (sc.accessLogOffOf && target !== 'spooky') continue;
          if (target === 'ceiling') {
            if (sc.newConnections) continue; // h2load reuses its connections: no comparable ceiling
            const r = await runH2load(`http://127.0.0.1:${backend.port}${sc.path}`, {
              connections: sc.connections,
              streams: sc.streams,
              durationS: durationMs / 1000,
              warmupS: warmupMs / 1000,
              dataFile: sc.bodyBytes ? uploadFile : undefined,
            });
            runs[sc.name].ceiling.push({
              rps: r.rps,
              p50_ms: null,
              p99_ms: null,
              errors: r.failed,
              cpu_s_per_1k: null,
              peak_rss_mib: null,
            });
            continue;
          }
          const proxy = target === 'caddy' ? caddy : sc.accessLogOffOf && quiet ? quiet : spooky;
          resetPeakRss(proxy.pid);
          const cpu0 = cpuSeconds(proxy.pid);
          const r = await runLoadgen(
            {
              host: '127.0.0.1',
              port: proxy.port,
              authority: `localhost:${proxy.port}`,
              path: sc.path,
              method: sc.bodyBytes ? 'POST' : 'GET',
              bodyBytes: sc.bodyBytes,
              connections: sc.connections,
              streams: sc.streams,
              durationMs,
              warmupMs,
              newConnectionPerRequest: sc.newConnections,
            },
            processes,
          );
          // CPU over warm-up + measurement, per measured request: a slight overestimate for both.
          const cpu = cpuSeconds(proxy.pid) - cpu0;
          runs[sc.name][target].push(fromLoad(r, cpu * (durationMs / (durationMs + warmupMs)), peakRssMiB(proxy.pid)));
          process.stderr.write(
            `  ${sc.name} ${target}: ${r.rps.toFixed(0)} req/s, p99 ${(r.latencyUs.p99 / 1000).toFixed(2)} ms, errors ${JSON.stringify(r.errors)}\n`,
          );
        }
      }
    }
    await Promise.all([spooky.stop(), caddy.stop(), quiet?.stop()]);
    // The gtlsclient legs bring their own backend (nghttpd) and proxies.
    const legOptions = {
      dir,
      cert,
      nodeFlags: spookyNodeFlags,
      rounds,
      quick,
      log: (line: string) => process.stderr.write(`${line}\n`),
    };
    // `--only gtls` runs the whole leg; `--only gtls-upload-1mib` (etc.) just that scenario.
    const gtlsNames = only ? [...only].filter((n) => n.startsWith('gtls-')) : [];
    if (!only || only.has('gtls') || gtlsNames.length > 0)
      gtls = await benchGtls({ ...legOptions, scenarios: gtlsNames.length > 0 ? new Set(gtlsNames) : undefined });
    if (!only || only.has('workers')) workers = await benchWorkers(legOptions);
    if (!only || only.has('fleet')) fleet = await benchFleet(legOptions);
  } finally {
    await Promise.all([spooky.stop(), caddy.stop(), quiet?.stop(), backend.stop()]);
  }
  const results = scenarios.map((sc) => {
    const agg = (ms: Measure[]) =>
      ms.length === 0
        ? null
        : {
            rps: median(ms.map((m) => m.rps)),
            p50_ms: median(ms.map((m) => m.p50_ms ?? Number.NaN)),
            p99_ms: median(ms.map((m) => m.p99_ms ?? Number.NaN)),
            errors: ms.reduce((a, m) => a + m.errors, 0),
            cpu_s_per_1k: median(ms.map((m) => m.cpu_s_per_1k ?? Number.NaN)),
            peak_rss_mib: median(ms.map((m) => m.peak_rss_mib ?? Number.NaN)),
            mib_per_s: median(ms.map((m) => m.mib_per_s ?? Number.NaN)),
            client_cpu_s: median(ms.map((m) => m.client_cpu_s ?? Number.NaN)),
          };
    const r = runs[sc.name];
    const other = sc.accessLogOffOf ? runs[sc.accessLogOffOf] : r;
    const spookyAgg = agg(r.spooky);
    const caddyAgg = agg(other?.caddy ?? []);
    const ceilingAgg = agg(other?.ceiling ?? []);
    const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? a / b : null);
    return {
      name: sc.name,
      description: sc.description,
      spooky: spookyAgg,
      caddy: caddyAgg,
      ceiling: ceilingAgg,
      spooky_over_caddy: ratio(spookyAgg?.rps, caddyAgg?.rps),
      spooky_over_ceiling: ratio(spookyAgg?.rps, ceilingAgg?.rps),
      runs: r,
    };
  });
  const report = {
    started: started.toISOString(),
    mode: quick ? 'quick' : 'full',
    rounds,
    duration_ms: durationMs,
    warmup_ms: warmupMs,
    machine: machine(),
    scenarios: results,
    gtls,
    workers,
    fleet,
  };
  const outDir = join(DIST, '../bench/results');
  mkdirSync(outDir, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const md =
    markdown(report) +
    (gtls.length > 0 ? gtlsMarkdown(gtls) : '') +
    (workers.length > 0 ? workersMarkdown(workers) : '') +
    (fleet ? fleetMarkdown(fleet) : '');
  writeFileSync(join(outDir, `${stamp}.json`), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(outDir, `${stamp}.md`), md);
  writeFileSync(join(outDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(outDir, 'latest.md'), md);
  process.stdout.write(md);
  const errors =
    results.reduce((n, s) => n + (s.spooky?.errors ?? 0), 0) +
    workers.reduce((n, w) => n + w.failed_clients + w.not_proxied, 0) +
    gtls.reduce((n, g) => n + (g.target === 'spooky' ? g.failed_clients + g.not_proxied : 0), 0);
  if (fleet && fleet.failed > 0) {
    process.stderr.write(
      `bench: ${fleet.failed} fleet apply(s) not ACKed by every data plane or not served by all within 10 s\n`,
    );
    process.exitCode = 1;
  }
  if (errors > 0) {
    process.stderr.write(`bench: Spooky answered ${errors} request(s) with errors\n`);
    process.exitCode = 1;
  }
}

function machine() {
  const cpus = os.cpus();
  const version = (cmd: string, a: string[]) => {
    try {
      return execFileSync(cmd, a, { encoding: 'utf8' }).split('\n')[0].trim();
    } catch {
      return null;
    }
  };
  return {
    cpus: cpus.length,
    cpu_model: cpus[0]?.model ?? 'unknown',
    memory_gib: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    spooky_node_flags: spookyNodeFlags.join(' '),
    caddy: version('caddy', ['version']),
    h2load: version('h2load', ['--version']),
  };
}

interface ProxySummary {
  rps: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  cpu_s_per_1k: number | null;
  peak_rss_mib: number | null;
  errors: number;
}

function markdown(report: {
  started: string;
  mode: string;
  rounds: number;
  machine: ReturnType<typeof machine>;
  scenarios: Array<{
    name: string;
    spooky: ProxySummary | null;
    caddy: ProxySummary | null;
    ceiling: { rps: number | null } | null;
    spooky_over_caddy: number | null;
    spooky_over_ceiling: number | null;
  }>;
}): string {
  const f = (v: number | null | undefined, d = 0) => (v === null || v === undefined ? '–' : v.toFixed(d));
  const m = report.machine;
  const lines = [
    `# Spooky benchmark (${report.mode}, ${report.rounds} round(s), medians)`,
    '',
    `${report.started} · ${m.cpus} × ${m.cpu_model} · ${m.memory_gib} GiB · Linux ${m.kernel} · Node ${m.node}${m.spooky_node_flags ? ` (data plane: ${m.spooky_node_flags})` : ''} · Caddy ${m.caddy ?? '?'}`,
    '',
    '| scenario | Spooky req/s | Caddy req/s | ceiling req/s | Spooky/Caddy | Spooky/ceiling | p50 ms S / C | p99 ms S / C | CPU s per 1k req S / C | peak RSS MiB S / C | errors S / C |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of report.scenarios) {
    lines.push(
      `| ${s.name} | ${f(s.spooky?.rps)} | ${f(s.caddy?.rps)} | ${f(s.ceiling?.rps)} | ${f(s.spooky_over_caddy, 2)} | ${f(s.spooky_over_ceiling, 2)} | ${f(s.spooky?.p50_ms, 2)} / ${f(s.caddy?.p50_ms, 2)} | ${f(s.spooky?.p99_ms, 2)} / ${f(s.caddy?.p99_ms, 2)} | ${f(s.spooky?.cpu_s_per_1k, 3)} / ${f(s.caddy?.cpu_s_per_1k, 3)} | ${f(s.spooky?.peak_rss_mib)} / ${f(s.caddy?.peak_rss_mib)} | ${f(s.spooky?.errors)} / ${f(s.caddy?.errors)} |`,
    );
  }
  lines.push(
    '',
    'HTTP/3 load from Spooky’s own load generator for Spooky and Caddy alike; the ceiling is h2load over cleartext HTTP/2 straight at the backend (no ceiling for new connections: h2load reuses connections). All processes share this machine’s cores. Spooky logs as operators run it: level info, the access log on, JSON lines to a file (the -no-access-log row: the access log off, against the Caddy and ceiling figures of the row it names); Caddy keeps no access log by default.',
    '',
  );
  return lines.join('\n');
}

await main();
