/**
 * The workers dimension of `npm run bench`: Spooky with 1, 2 and (on a machine with more than two
 * cores) `auto` data-plane workers, under small GETs from several `gtlsclient` processes (ngtcp2's
 * C client: one connection each, so the kernel spreads them over the workers, and a client that
 * costs little CPU, so the load generator is not what limits the proxy). Every configuration
 * runs in each round, rotating which goes first; figures are medians over rounds. CPU and peak
 * RSS are summed over the supervisor and its workers.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { cpuSeconds, peakRssMiB, resetPeakRss, startSpooky } from './targets.js';

export interface WorkersMeasure {
  workers: string;
  rps: number;
  requests: number;
  failed_clients: number;
  cpu_s_per_1k: number | null;
  peak_rss_mib: number;
}

/** The process and every descendant of it (supervisor and workers). */
function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length && i < 1024; i++) {
    const p = out[i] as number;
    try {
      for (const tid of readdirSync(`/proc/${p}/task`)) {
        const kids = readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8').trim();
        if (kids) for (const k of kids.split(/\s+/)) out.push(Number(k));
      }
    } catch {
      // The process is gone: nothing below it.
    }
  }
  return out;
}

const sum = (pids: number[], read: (pid: number) => number) =>
  pids.reduce((a, p) => {
    try {
      return a + read(p);
    } catch {
      return a;
    }
  }, 0);

/** `clients` gtlsclient processes, `requests` GETs each on one connection; resolves with how many exited 0. */
function gtlsLoad(port: number, path: string, clients: number, requests: number): Promise<number> {
  const url = `https://localhost:${port}${path}`;
  const one = () =>
    new Promise<number>((resolve) => {
      const p = spawn(
        'gtlsclient',
        [
          '--quiet',
          '--exit-on-all-streams-close',
          '--no-quic-dump',
          '--no-http-dump',
          '-n',
          String(requests),
          '127.0.0.1',
          String(port),
          url,
        ],
        { stdio: 'ignore' },
      );
      const t = setTimeout(() => p.kill('SIGKILL'), 120_000);
      p.on('exit', (code) => {
        clearTimeout(t);
        resolve(code === 0 ? 1 : 0);
      });
      p.on('error', () => resolve(0));
    });
  return Promise.all(Array.from({ length: clients }, one)).then((ok) => ok.reduce((a, b) => a + b, 0));
}

export async function benchWorkers(opts: {
  dir: string;
  backendPort: number;
  cert: { certFile: string; keyFile: string };
  nodeFlags: readonly string[];
  rounds: number;
  quick: boolean;
  log: (line: string) => void;
}): Promise<WorkersMeasure[]> {
  const configs = ['1', '2', ...(os.availableParallelism() > 2 ? ['auto'] : [])];
  const clients = 16;
  const requests = opts.quick ? 500 : 3000;
  const runs = new Map<string, WorkersMeasure[]>(configs.map((c) => [c, []]));
  for (let round = 0; round < opts.rounds; round++) {
    for (let i = 0; i < configs.length; i++) {
      const workers = configs[(i + round) % configs.length] as string;
      const spooky = await startSpooky(opts.dir, opts.backendPort, opts.cert, opts.nodeFlags, {
        workers,
        ready: workers === '1' ? /"msg":"listening"/ : /"msg":"workers listening"/,
      });
      try {
        // A short warm-up: V8 optimises the request path in every worker before it is measured.
        await gtlsLoad(spooky.port, '/small', clients, Math.ceil(requests / 10));
        const pids = processTree(spooky.pid);
        for (const p of pids) resetPeakRss(p);
        const cpu0 = sum(pids, cpuSeconds);
        const t0 = performance.now();
        const ok = await gtlsLoad(spooky.port, '/small', clients, requests);
        const seconds = (performance.now() - t0) / 1000;
        const cpu = sum(pids, cpuSeconds) - cpu0;
        const done = ok * requests;
        const m: WorkersMeasure = {
          workers,
          rps: done / seconds,
          requests: done,
          failed_clients: clients - ok,
          cpu_s_per_1k: done > 0 ? (cpu / done) * 1000 : null,
          peak_rss_mib: sum(pids, peakRssMiB),
        };
        runs.get(workers)?.push(m);
        opts.log(
          `  workers ${workers}: ${m.rps.toFixed(0)} req/s, ${m.cpu_s_per_1k?.toFixed(3)} CPU s per 1k, peak RSS ${m.peak_rss_mib.toFixed(0)} MiB (${pids.length} processes), failed clients ${m.failed_clients}`,
        );
      } finally {
        await spooky.stop();
      }
    }
  }
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2
      ? (s[(s.length - 1) / 2] as number)
      : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
  };
  return configs.map((workers) => {
    const ms = runs.get(workers) ?? [];
    return {
      workers,
      rps: median(ms.map((m) => m.rps)),
      requests: ms.reduce((a, m) => a + m.requests, 0),
      failed_clients: ms.reduce((a, m) => a + m.failed_clients, 0),
      cpu_s_per_1k: median(ms.map((m) => m.cpu_s_per_1k ?? Number.NaN).filter(Number.isFinite)),
      peak_rss_mib: median(ms.map((m) => m.peak_rss_mib)),
    };
  });
}

export function workersMarkdown(rows: WorkersMeasure[]): string {
  const one = rows.find((r) => r.workers === '1');
  const lines = [
    '',
    '## Workers (small GETs from 16 gtlsclient processes, one connection each)',
    '',
    '| workers | req/s | × 1 worker | CPU s per 1k req | peak RSS MiB (all processes) | failed clients |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.workers} | ${r.rps.toFixed(0)} | ${one && one.rps > 0 ? (r.rps / one.rps).toFixed(2) : '–'} | ${r.cpu_s_per_1k?.toFixed(3) ?? '–'} | ${r.peak_rss_mib.toFixed(0)} | ${r.failed_clients} |`,
    ),
    '',
    `This machine has ${os.availableParallelism()} cores shared by the clients, the backend and Spooky, so more workers than cores cannot scale here. On a bigger host run \`npm run bench -- --only workers\`: the \`auto\` row uses every core.`,
    '',
  ];
  return lines.join('\n');
}
