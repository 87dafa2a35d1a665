/**
 * The workers dimension of `npm run bench`: Spooky with 1, 2 and (on a machine with more than two
 * cores) `auto` data-plane workers, under small GETs from several `gtlsclient` processes (ngtcp2's
 * C client: one connection each, so the kernel spreads them over the workers, and a client that
 * costs little CPU, so the load generator is not what limits the proxy). Every configuration
 * runs in each round, rotating which goes first; figures are medians over rounds. Requests per
 * second and CPU per request are read over the steady window (every client still running, the
 * backend's count of answered requests); peak RSS and CPU are summed over the supervisor and its
 * workers.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { cpuSeconds, freePort, peakRssMiB, resetPeakRss, startSpooky } from './targets.js';

export interface WorkersMeasure {
  workers: string;
  rps: number;
  requests: number;
  /** Requests the clients completed that never reached the backend (Spooky answered them itself: 503s). */
  not_proxied: number;
  failed_clients: number;
  cpu_s_per_1k: number | null;
  peak_rss_mib: number;
}

/** The process and every descendant of it (supervisor and workers). */
export function processTree(pid: number): number[] {
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

export const sum = (pids: number[], read: (pid: number) => number) =>
  pids.reduce((a, p) => {
    try {
      return a + read(p);
    } catch {
      return a;
    }
  }, 0);

/** One gtlsclient load: `clients` processes, `requests` each on one connection. */
export interface GtlsLoad {
  port: number;
  path: string;
  clients: number;
  requests: number;
  /** Each request POSTs this file's bytes (gtlsclient --data); GETs without it. */
  dataFile?: string;
}

/**
 * Runs a gtlsclient load. `onFirstExit` runs when the first client exits (the steady window
 * ends there); resolves with how many exited 0.
 */
export function gtlsLoad(o: GtlsLoad, onFirstExit: () => void = () => {}): Promise<number> {
  const url = `https://localhost:${o.port}${o.path}`;
  let exited = 0;
  const one = () =>
    new Promise<number>((resolve) => {
      const p = spawn(
        'gtlsclient',
        [
          '--quiet',
          '--exit-on-all-streams-close',
          '--no-quic-dump',
          '--no-http-dump',
          ...(o.dataFile ? [`--data=${o.dataFile}`] : []),
          '-n',
          String(o.requests),
          '127.0.0.1',
          String(o.port),
          url,
        ],
        { stdio: 'ignore' },
      );
      const t = setTimeout(() => p.kill('SIGKILL'), 120_000);
      p.on('exit', (code) => {
        clearTimeout(t);
        if (exited++ === 0) onFirstExit();
        resolve(code === 0 ? 1 : 0);
      });
      p.on('error', () => resolve(0));
    });
  return Promise.all(Array.from({ length: o.clients }, one)).then((ok) => ok.reduce((a, b) => a + b, 0));
}

/**
 * nghttpd (nghttp2's C server, Debian's nghttp2-server) serving the 1 KiB `/small` over
 * cleartext HTTP/2: about 2 µs of CPU per request where the Node backend costs 40–50, so on a
 * two-core machine the backend does not take the cores the workers are measured on.
 */
export async function startNghttpd(dir: string): Promise<{ pid: number; port: number; stop: () => Promise<void> }> {
  const www = join(dir, 'www');
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, 'small'), Buffer.alloc(1024, 'b'));
  writeFileSync(join(www, '1mib'), Buffer.alloc(1 << 20, 'm'));
  const port = await freePort();
  const p = spawn('nghttpd', ['--no-tls', '-d', www, String(port)], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => p.on('exit', () => r()));
  p.on('error', () => {});
  for (let i = 0; i < 100 && !(await tcpAccepts(port)); i++) await new Promise((r) => setTimeout(r, 50));
  if (!(await tcpAccepts(port))) {
    p.kill('SIGKILL');
    throw new Error('nghttpd did not start (apt-get install nghttp2-server)');
  }
  return {
    pid: p.pid as number,
    port,
    stop: async () => {
      p.kill('SIGTERM');
      await exited;
    },
  };
}

function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Bytes a process has written so far (sockets included): nghttpd's are proportional to responses. */
export function bytesWritten(pid: number): number {
  return Number(/wchar: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
}

/** The data plane's `stopped` lines (one per worker): responses by status class over its life. */
export function responsesOf(output: string): Record<string, number> {
  const total: Record<string, number> = {};
  for (const line of output.split('\n')) {
    if (!line.includes('"msg":"stopped"')) continue;
    try {
      const r = (JSON.parse(line) as { responses?: Record<string, number> }).responses ?? {};
      for (const [k, v] of Object.entries(r)) total[k] = (total[k] ?? 0) + v;
    } catch {
      // Not a log line.
    }
  }
  return total;
}

interface Sample {
  t: number;
  written: number;
  cpu: number;
}

/** What one proxy did under one gtlsclient load, over the steady window. */
export interface SteadyMeasure {
  rps: number;
  cpuSecondsPerRequest: number;
  peakRssMiB: number;
  /** Clients that exited 0, each having made `requests` requests. */
  okClients: number;
  processes: number;
}

/**
 * Runs `clients` gtlsclient processes × `requests` against `port` (after a warm-up of a tenth:
 * V8 optimises the request path in every worker before it is measured) and reads the steady
 * window, from 1 s after the clients start (a third of the run when it is shorter) until the
 * first of them finishes: after that fewer
 * clients than workers may be left (the kernel spreads connections unevenly over the workers),
 * and the tail would time the load generator's stragglers rather than the proxy. Requests in
 * the window are the run's requests times the share of the backend's bytes written in it. CPU
 * and peak RSS are summed over the proxy's process tree.
 */
export async function measureSteady(
  o: GtlsLoad & { label: string; proxyPid: number; backendPid: number },
): Promise<SteadyMeasure> {
  await gtlsLoad({ ...o, requests: Math.ceil(o.requests / 10) });
  const pids = processTree(o.proxyPid);
  for (const p of pids) resetPeakRss(p);
  const sample = (): Sample => ({
    t: performance.now(),
    written: bytesWritten(o.backendPid),
    cpu: sum(pids, cpuSeconds),
  });
  const before = sample();
  const samples: Sample[] = [];
  let firstExit = Number.POSITIVE_INFINITY;
  const load = gtlsLoad(o, () => {
    firstExit = performance.now();
  });
  // Fine-grained: on a fast run the first client may finish a second in, and 250 ms samples
  // left less than the 0.5 s window the figures need (a flaky smoke run in CI).
  const sampler = setInterval(() => samples.push(sample()), 100);
  const ok = await load;
  clearInterval(sampler);
  const after = sample();
  // Connections settle in the first second (less when the run is short: a third of it).
  const settle = Math.min(1000, (Math.min(firstExit, after.t) - before.t) / 3);
  const steady = samples.filter((x) => x.t >= before.t + settle && x.t <= firstExit);
  const a = steady[0];
  const b = steady[steady.length - 1];
  if (!a || !b || b.t - a.t < 500 || after.written <= before.written) {
    throw new Error(
      `${o.label}: no steady window of 0.5 s (clients ok ${ok}, first exit after ${Math.round(firstExit - before.t)} ms, backend wrote ${after.written - before.written} bytes)`,
    );
  }
  const done = (ok * o.requests * (b.written - a.written)) / (after.written - before.written);
  return {
    rps: done / ((b.t - a.t) / 1000),
    cpuSecondsPerRequest: (b.cpu - a.cpu) / done,
    peakRssMiB: sum(pids, peakRssMiB),
    okClients: ok,
    processes: pids.length,
  };
}

/** The median of the rounds' figures (NaN for none). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s.length % 2
    ? (s[(s.length - 1) / 2] as number)
    : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
}

/** Non-2xx responses in the data plane's stopped lines: what Spooky answered itself. */
export function notProxied(output: string): number {
  const responses = responsesOf(output);
  if (!responses['2xx']) throw new Error('no stopped line with responses in the data plane output');
  return Object.entries(responses).reduce((n, [k, v]) => (k === '2xx' ? n : n + v), 0);
}

/** What the gtlsclient legs (this one and gtls-leg.ts) are given by bench/run.ts. */
export interface LegOptions {
  dir: string;
  cert: { certFile: string; keyFile: string };
  nodeFlags: readonly string[];
  rounds: number;
  quick: boolean;
  log: (line: string) => void;
}

export async function benchWorkers(opts: LegOptions): Promise<WorkersMeasure[]> {
  const configs = ['1', '2', ...(os.availableParallelism() > 2 ? ['auto'] : [])];
  const clients = 16;
  const requests = opts.quick ? 5000 : 6000;
  const runs = new Map<string, WorkersMeasure[]>(configs.map((c) => [c, []]));
  const backend = await startNghttpd(opts.dir);
  try {
    for (let round = 0; round < opts.rounds; round++) {
      for (let i = 0; i < configs.length; i++) {
        const workers = configs[(i + round) % configs.length] as string;
        const spooky = await startSpooky(opts.dir, backend.port, opts.cert, opts.nodeFlags, {
          workers,
          ready: workers === '1' ? /"msg":"listening"/ : /"msg":"workers listening"/,
          // Up to 100 requests in flight per client (the default stream limit, a browser's share)
          // rather than the 1000 the other scenarios allow their few connections.
          maxStreams: 100,
        });
        try {
          const r = await measureSteady({
            label: `workers ${workers}`,
            proxyPid: spooky.pid,
            port: spooky.port,
            backendPid: backend.pid,
            path: '/small',
            clients,
            requests,
          });
          await spooky.stop();
          const m: WorkersMeasure = {
            workers,
            rps: r.rps,
            requests: r.okClients * requests,
            // Spooky's own answers (503 shed, 502) finish fast and would pass for throughput.
            not_proxied: notProxied(spooky.output()),
            failed_clients: clients - r.okClients,
            cpu_s_per_1k: r.cpuSecondsPerRequest * 1000,
            peak_rss_mib: r.peakRssMiB,
          };
          runs.get(workers)?.push(m);
          opts.log(
            `  workers ${workers}: ${m.rps.toFixed(0)} req/s, ${m.cpu_s_per_1k?.toFixed(3)} CPU s per 1k, peak RSS ${m.peak_rss_mib.toFixed(0)} MiB (${r.processes} processes), failed clients ${m.failed_clients}, not proxied ${m.not_proxied}`,
          );
        } finally {
          await spooky.stop();
        }
      }
    }
  } finally {
    await backend.stop();
  }
  return configs.map((workers) => {
    const ms = runs.get(workers) ?? [];
    return {
      workers,
      rps: median(ms.map((m) => m.rps)),
      requests: ms.reduce((a, m) => a + m.requests, 0),
      not_proxied: ms.reduce((a, m) => a + m.not_proxied, 0),
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
    '## Workers (small GETs from 16 gtlsclient processes, one connection each; rate and CPU over the window while all 16 run)',
    '',
    '| workers | req/s | × 1 worker | CPU s per 1k req | peak RSS MiB (all processes) | failed clients | not proxied |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.workers} | ${r.rps.toFixed(0)} | ${one && one.rps > 0 ? (r.rps / one.rps).toFixed(2) : '–'} | ${r.cpu_s_per_1k?.toFixed(3) ?? '–'} | ${r.peak_rss_mib.toFixed(0)} | ${r.failed_clients} | ${r.not_proxied} |`,
    ),
    '',
    `This machine has ${os.availableParallelism()} cores shared by the clients, the backend and Spooky, so more workers than cores cannot scale here. On a bigger host run \`npm run bench -- --only workers\`: the \`auto\` row uses every core.`,
    '',
  ];
  return lines.join('\n');
}
