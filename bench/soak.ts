#!/usr/bin/env node
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
/**
 * The soak: real spooky-control + spooky-dataplane processes on one config, under mixed load
 * with connection churn for a fixed time, sampling the data plane's (and the control plane's)
 * RSS and open file descriptors, and every `spooky_*` gauge of the merged metrics endpoint.
 *
 * Load, all at once, from this process (Spooky's own HTTP/3 client):
 *   get       closed-loop GETs, 4 connections × 8 streams
 *   upload    64 KiB POSTs to /echo, 2 connections × 2 streams
 *   download  256 KiB GETs, 1 connection × 4 streams
 *   churn     one GET per new connection, 2 at a time
 *   timeout   GETs the backend never answers: 504 after the pool's 200 ms backend_timeout_ms
 *   abort     a new connection starts an upload and a slow GET, then closes mid-request
 * The long-lived connections of get/upload/download/timeout are replaced every `roundMs`
 * (churn of long-lived connections too). 504s of `timeout` and the closed requests of `abort`
 * are intended; any other error or non-2xx is a failure.
 *
 * Criteria (each reported with its figures):
 *   - data plane RSS growth after warm-up below `rssLimitPct` (median of the first 3 samples
 *     after warm-up vs the median of the last 3 under load);
 *   - no fd growth: fds under load at the end vs just after warm-up, and fds once idle again vs
 *     idle before the load, each within `fdSlack`;
 *   - every `spooky_*` gauge back to its value before the load (within `settleMs` after it);
 *   - no failed requests.
 *
 * CLI: `node dist/bench/soak.js --minutes 10 [--warmup-s 60] [--interval-s 5] [--round-s 15]
 * [--out FILE]`; `npm run soak` runs the 10-minute one. Writes the result as JSON (default
 * bench/results/soak-latest.json) and exits 1 when a criterion fails.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { H3ClientSession } from '../dataplane/h3/client.js';
import {
  REPO,
  type RunningControl,
  type RunningDataplane,
  startControl,
  startDataplane,
} from '../e2e/support/harness.js';
import { config, newSetup } from '../e2e/support/pair.js';
import { type LoadResult, runLoad } from './loadgen.js';

export const DEFAULT_OUT = join(REPO, 'bench', 'results', 'soak-latest.json');

export interface SoakOptions {
  /** Total load time, warm-up included. */
  durationMs: number;
  warmupMs: number;
  sampleIntervalMs: number;
  /** Lifetime of the long-lived load connections before they are replaced. Default 15 s. */
  roundMs?: number;
  /** Where the JSON result goes; null: nowhere. Default bench/results/soak-latest.json. */
  out?: string | null;
  /** Default 10. */
  rssLimitPct?: number;
  /** Default 4. */
  fdSlack?: number;
  /** How long the gauges get to come back after the load. Default 20 s. */
  settleMs?: number;
  /** Run only these workloads (get, upload, download, churn, timeout, abort). Default: all. */
  only?: string[];
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

export interface ProcessFigures {
  rssMiB: number;
  fds: number;
}

export interface SoakSample {
  /** Seconds since the load started. */
  t: number;
  phase: 'baseline' | 'warmup' | 'measure' | 'settled';
  dataplane: ProcessFigures;
  control: ProcessFigures;
  connections: number;
  streams: number;
  inflight: number;
  /** This process (load generator and backends), to tell its own growth from Spooky's. */
  loadgenRssMiB: number;
  /** Responses the data plane answered so far (spooky_requests_total): all, and 5xx other than 504. */
  responses: number;
  errors5xx: number;
}

export interface WorkloadFigures {
  /** Requests sent (answered, failed or aborted on purpose). */
  sent: number;
  ok: number;
  /** Outcomes the workload wants (504 of `timeout`, requests closed on purpose by `abort`). */
  intended: number;
  failed: number;
  errors: Record<string, number>;
  connections: number;
}

export interface Criterion {
  name: string;
  pass: boolean;
  detail: string;
}

export interface SoakResult {
  startedAt: string;
  finishedAt: string;
  options: Required<Omit<SoakOptions, 'log' | 'out'>>;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; kernel: string };
  /** Totals over the whole run, warm-up included. */
  requests: { sent: number; ok: number; intended: number; failed: number; connections: number };
  /** Per workload and phase. */
  workloads: Record<string, { warmup: WorkloadFigures; measure: WorkloadFigures }>;
  samples: SoakSample[];
  baselineGauges: Record<string, number>;
  finalGauges: Record<string, number>;
  /** The data plane's own counts at the end: responses by status, upstream attempts by outcome. */
  dataplaneCounts: { responsesByCode: Record<string, number>; upstreamByOutcome: Record<string, number> };
  /** How long the gauges took to come back after the load (ms), or null if they did not. */
  settledAfterMs: number | null;
  rss: { startMiB: number; endMiB: number; growthPct: number; maxMiB: number };
  fds: { baseline: number; afterWarmup: number; endOfLoad: number; max: number; settled: number };
  criteria: Criterion[];
  pass: boolean;
}

// ------------------------------------------------------------------ metrics and /proc helpers

/** Sample lines of a Prometheus text exposition: series (name + labels) → value. */
export function parseSamples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    if (i <= 0) continue;
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** Every `spooky_*` gauge series of an exposition (from its `# TYPE … gauge` lines). */
export function spookyGauges(text: string): Record<string, number> {
  const gauges = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (spooky_\w+) gauge$/gm)) gauges.add(m[1]);
  const out: Record<string, number> = {};
  for (const [series, value] of parseSamples(text)) {
    const name = series.replace(/\{.*$/, '');
    if (gauges.has(name)) out[series] = value;
  }
  return out;
}

/** Sums of spooky_requests_total by code and spooky_upstream_requests_total by outcome. */
export function dataplaneCounts(text: string): SoakResult['dataplaneCounts'] {
  const responsesByCode: Record<string, number> = {};
  const upstreamByOutcome: Record<string, number> = {};
  for (const [series, v] of parseSamples(text)) {
    const code = series.match(/^spooky_requests_total\{.*code="(\d+)"/)?.[1];
    if (code) responsesByCode[code] = (responsesByCode[code] ?? 0) + v;
    const outcome = series.match(/^spooky_upstream_requests_total\{.*outcome="([^"]+)"/)?.[1];
    if (outcome) upstreamByOutcome[outcome] = (upstreamByOutcome[outcome] ?? 0) + v;
  }
  return { responsesByCode, upstreamByOutcome };
}

/** The merged metrics URL of a control plane started with `metrics: { enabled: true }`. */
export function metricsUrlOf(cp: RunningControl): string {
  const line = cp.logs.find((o) => o.msg === 'metrics listening');
  if (!line) throw new Error('spooky-control logged no "metrics listening" line (metrics disabled?)');
  return `http://${String(line.address)}:${Number(line.port)}${String(line.path)}`;
}

export async function scrape(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
  return res.text();
}

/** RSS (from /proc/PID/status) and open fds (entries of /proc/PID/fd) of a live process. */
export function processFigures(pid: number): ProcessFigures {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(status.match(/^VmRSS:\s+(\d+) kB$/m)?.[1] ?? Number.NaN);
  return { rssMiB: Math.round((kb / 1024) * 10) / 10, fds: readdirSync(`/proc/${pid}/fd`).length };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor((s.length - 1) / 2)];
};

/** Polls `check` every `everyMs` until it is true or `limitMs` passed; returns the time taken or null. */
export async function until(check: () => Promise<boolean>, limitMs: number, everyMs = 200): Promise<number | null> {
  const start = performance.now();
  for (;;) {
    try {
      if (await check()) return performance.now() - start;
    } catch {
      // not there yet
    }
    if (performance.now() - start > limitMs) return null;
    await sleep(everyMs);
  }
}

// ------------------------------------------------------------------------------- the soak

interface SoakBackend {
  origin: string;
  close(): Promise<void>;
}

/**
 * The soak's HTTP/2 backend: lib/demo-backend's routes (/echo, /bytes/N, /hang, /late-end?ms=N,
 * anything else a small JSON body), keeping nothing per request. (The demo backend records every
 * request it sees; at thousands of requests/s for 10 minutes that alone fills this process's
 * heap: it ran out of memory 3.5 minutes into a soak.)
 */
async function startSoakBackend(name: string): Promise<SoakBackend> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => {});
  });
  const json = Buffer.from(`${JSON.stringify({ backend: name })}\n`);
  const chunk = Buffer.alloc(65536, 'soak');
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const url = new URL(String(headers[':path']), 'http://x');
    if (url.pathname === '/echo') {
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
      stream.pipe(stream);
      return;
    }
    if (url.pathname === '/hang') {
      stream.resume(); // never answers
      return;
    }
    if (url.pathname.startsWith('/bytes/')) {
      let left = Math.min(Number(url.pathname.slice(7)) || 0, 64 << 20);
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': String(left) });
      const pump = () => {
        while (left > 0) {
          const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= part.length;
          if (!stream.write(part)) return void stream.once('drain', pump);
        }
        stream.end();
      };
      pump();
    } else if (url.pathname === '/late-end') {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.write('first line\n');
      const timer = setTimeout(() => stream.end(), Math.min(Number(url.searchParams.get('ms')) || 0, 10_000));
      stream.on('close', () => clearTimeout(timer));
    } else {
      stream.respond({ ':status': 200, 'content-type': 'application/json', 'content-length': String(json.length) });
      stream.end(json);
    }
    stream.resume();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}

const emptyFigures = (): WorkloadFigures => ({ sent: 0, ok: 0, intended: 0, failed: 0, errors: {}, connections: 0 });

class Tally {
  readonly byWorkload: Record<string, { warmup: WorkloadFigures; measure: WorkloadFigures }> = {};
  constructor(private readonly measuring: () => boolean) {}
  /** The figures of `workload` in a phase (default: the phase now). */
  private figures(workload: string, measure = this.measuring()): WorkloadFigures {
    this.byWorkload[workload] ??= { warmup: emptyFigures(), measure: emptyFigures() };
    return this.byWorkload[workload][measure ? 'measure' : 'warmup'];
  }
  ok(w: string, n = 1, measure?: boolean): void {
    const f = this.figures(w, measure);
    f.sent += n;
    f.ok += n;
  }
  intended(w: string, n = 1): void {
    const f = this.figures(w);
    f.sent += n;
    f.intended += n;
  }
  failed(w: string, kind: string, n = 1, measure?: boolean): void {
    const f = this.figures(w, measure);
    f.sent += n;
    f.failed += n;
    f.errors[kind] = (f.errors[kind] ?? 0) + n;
  }
  connections(w: string, n: number, measure?: boolean): void {
    this.figures(w, measure).connections += n;
  }
  /** Requests and failures so far, over every workload and phase (for the progress lines). */
  summary(): string {
    let sent = 0;
    let failed = 0;
    const kinds = new Set<string>();
    for (const phases of Object.values(this.byWorkload)) {
      for (const f of [phases.warmup, phases.measure]) {
        sent += f.sent;
        failed += f.failed;
        for (const k of Object.keys(f.errors)) kinds.add(k);
      }
    }
    return `${sent} sent, ${failed} failed${kinds.size ? ` (${[...kinds].slice(0, 3).join('; ')})` : ''}`;
  }
  /** A runLoad round (no warm-up of its own), in the phase it ran in: every error is a failure. */
  round(w: string, r: LoadResult, connections: number, measure: boolean): void {
    this.ok(w, r.requests, measure);
    for (const [k, n] of Object.entries(r.errors)) this.failed(w, k, n, measure);
    this.connections(w, connections + r.handshakes, measure);
  }
}

export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  const o = {
    durationMs: opts.durationMs,
    warmupMs: opts.warmupMs,
    sampleIntervalMs: opts.sampleIntervalMs,
    roundMs: opts.roundMs ?? 15_000,
    rssLimitPct: opts.rssLimitPct ?? 10,
    fdSlack: opts.fdSlack ?? 4,
    settleMs: opts.settleMs ?? 20_000,
    only: opts.only ?? [],
  };
  if (o.warmupMs >= o.durationMs) throw new Error('the warm-up must be shorter than the duration');
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const startedAt = new Date().toISOString();
  const backends: SoakBackend[] = [];
  let cp: RunningControl | null = null;
  let dp: RunningDataplane | null = null;
  let stopping = false;
  try {
    backends.push(await startSoakBackend('a'), await startSoakBackend('b'));
    const s = newSetup();
    const [a, b] = backends;
    const pools = `  web:
    backends: [{ id: a, address: "${a.origin}" }, { id: b, address: "${b.origin}" }]
  slow:
    route: { path_prefix: /hang }
    timeouts: { backend_timeout_ms: 200 }
    backends: [{ id: hang, address: "${a.origin}" }]
`;
    // No circuit breaker: the intended 504s of `timeout` must stay 504s. A 5 s QUIC idle timeout:
    // a client that vanishes without its CONNECTION_CLOSE reaching Spooky (see `abort`) holds
    // its connection, streams and upstream requests until then, and the settle wait covers it.
    // Per-source limits off in effect: all the load comes from one address.
    const extra =
      'resilience: { circuit_breaker: { enabled: false } }\nperformance: { quic_max_idle_timeout_ms: 5000, ' +
      'per_source_max_connections: 100000, per_source_new_connections_per_sec: 100000, ' +
      'per_source_new_connections_burst: 100000 }\n';
    const text = config(s, pools, { extra }).replace(
      'metrics: { enabled: false }',
      'metrics: { enabled: true, port: 0 }',
    );
    writeFileSync(s.file, text);
    cp = await startControl(s.file);
    dp = await startDataplane(text, { file: s.file, args: ['--stats-interval-ms', '200'] });
    const metricsUrl = metricsUrlOf(cp);
    const port = dp.port;
    const dpPid = dp.proc.pid as number;
    const cpPid = cp.proc.pid as number;
    // A daemon that dies during the soak ends it (the loops stop) and fails it with its last words.
    let died: string | null = null;
    const watch = (name: string, d: RunningDataplane) =>
      void d.exited.then((code) => {
        if (stopping) return;
        const errors = d.logs.filter((l) => Number(l.level) >= 50).slice(-5);
        died ??= `${name} (pid ${d.proc.pid}) exited with ${code ?? d.proc.signalCode} during the soak; stderr: ${d.stderr().trim().split('\n').slice(-20).join('\n') || '(empty)'}; last error logs: ${JSON.stringify(errors)}`;
      });
    watch('spooky-dataplane', dp);
    watch('spooky-control', cp);

    // Baseline: idle, once the data plane's series have reached the control plane.
    const arrived = await until(async () => /^spooky_active_connections /m.test(await scrape(metricsUrl)), 15_000);
    if (arrived === null) throw new Error('no data plane metrics at the control plane within 15 s');
    await sleep(1000);
    const baselineGauges = spookyGauges(await scrape(metricsUrl));
    const gauge = (g: Record<string, number>, name: string) => g[name] ?? 0;
    /** NaN once the process is gone (the exit watcher then ends the soak). */
    const figuresOf = (pid: number): ProcessFigures => {
      try {
        return processFigures(pid);
      } catch {
        return { rssMiB: Number.NaN, fds: Number.NaN };
      }
    };
    const samples: SoakSample[] = [];
    const sample = async (t: number, phase: SoakSample['phase']) => {
      let g: Record<string, number> = {};
      let counts = { responsesByCode: {} as Record<string, number>, upstreamByOutcome: {} };
      try {
        const text = await scrape(metricsUrl);
        g = spookyGauges(text);
        counts = dataplaneCounts(text);
      } catch {
        // a missed scrape leaves the gauges at 0 for this row
      }
      const codes = Object.entries(counts.responsesByCode);
      const row: SoakSample = {
        t: Math.round(t / 100) / 10,
        phase,
        dataplane: figuresOf(dpPid),
        control: figuresOf(cpPid),
        loadgenRssMiB: Math.round((process.memoryUsage().rss / 2 ** 20) * 10) / 10,
        connections: gauge(g, 'spooky_active_connections'),
        streams: gauge(g, 'spooky_active_streams'),
        inflight: gauge(g, 'spooky_upstream_inflight'),
        responses: codes.reduce((n, [, v]) => n + v, 0),
        errors5xx: codes.filter(([c]) => c >= '500' && c !== '504').reduce((n, [, v]) => n + v, 0),
      };
      samples.push(row);
      return row;
    };
    const baseline = await sample(0, 'baseline');
    log(
      `soak: ${o.durationMs / 1000} s of load (${o.warmupMs / 1000} s warm-up) on 127.0.0.1:${port}; data plane ${baseline.dataplane.rssMiB} MiB, ${baseline.dataplane.fds} fds idle`,
    );

    // The load.
    const start = performance.now();
    const warmEnd = start + o.warmupMs;
    const end = start + o.durationMs;
    const tally = new Tally(() => performance.now() >= warmEnd);
    const remaining = () => (died !== null ? 0 : end - performance.now());
    /** The next round's length: at most roundMs, never across the warm-up boundary. */
    const roundLength = () => {
      const now = performance.now();
      const boundary = now < warmEnd ? warmEnd : end;
      return Math.min(o.roundMs, boundary - now);
    };
    const connect = () => H3ClientSession.connect('127.0.0.1', port, { insecure: true, serverName: 'localhost' });
    const loadRounds = (w: string, lo: Omit<Parameters<typeof runLoad>[0], 'durationMs' | 'warmupMs'>) =>
      (async () => {
        while (remaining() > 250) {
          const ms = roundLength();
          if (ms < 250) {
            await sleep(ms);
            continue;
          }
          // Rounds never cross the warm-up boundary: a round counts in the phase it started in.
          const measuring = performance.now() >= warmEnd;
          try {
            const r = await runLoad({ ...lo, durationMs: ms, warmupMs: 0 });
            tally.round(w, r, lo.newConnectionPerRequest ? 0 : lo.connections, measuring);
          } catch (e) {
            tally.failed(w, `round: ${(e as Error).message.slice(0, 60)}`, 1, measuring);
            await sleep(200);
          }
        }
      })();
    const base = { host: '127.0.0.1', port, authority: 'localhost' };
    const timeoutLoop = async () => {
      while (remaining() > 250) {
        const roundEnd = performance.now() + roundLength();
        let client: H3ClientSession;
        try {
          client = await connect();
          tally.connections('timeout', 1);
        } catch (e) {
          tally.failed('timeout', `connect: ${(e as Error).message.slice(0, 60)}`);
          await sleep(200);
          continue;
        }
        try {
          while (performance.now() < roundEnd && remaining() > 250) {
            try {
              const r = await client.fetch({ path: '/hang', authority: 'localhost' });
              if (r.status === 504) tally.intended('timeout');
              else tally.failed('timeout', `status ${r.status}`);
            } catch (e) {
              tally.failed('timeout', (e as Error).message.slice(0, 60));
              if (client.closed || client.peerGoawayId >= 0) break;
              // A fetch that fails without I/O settles in a microtask: without this pause the
              // loop would never yield to the event loop that could let the client recover.
              await sleep(50);
            }
          }
        } finally {
          await client.close();
        }
      }
    };
    const upload = new Uint8Array(1 << 20);
    const abortLoop = async () => {
      while (remaining() > 250) {
        let client: H3ClientSession;
        try {
          client = await connect();
          tally.connections('abort', 1);
        } catch (e) {
          tally.failed('abort', `connect: ${(e as Error).message.slice(0, 60)}`);
          await sleep(200);
          continue;
        }
        const slow = client.fetch({ path: '/late-end?ms=2000', authority: 'localhost' });
        const up = client.fetch({
          method: 'POST',
          path: '/echo',
          authority: 'localhost',
          headers: [['content-length', String(upload.length)]],
          body: upload,
          collectBody: false,
        });
        await sleep(30 + Math.random() * 70);
        await client.close();
        // H3ClientSession.close() does not settle requests still in flight (they stay pending),
        // so look at each one without waiting on it: closed mid-request is the intent, and an
        // answer that made it first is fine too.
        const pending = Symbol('pending');
        for (const p of [slow, up]) {
          const r = await Promise.race([
            p.then(
              (x) => x.status,
              () => pending,
            ),
            sleep(0).then(() => pending),
          ]);
          if (r === pending || r === 200) tally.intended('abort');
          else tally.failed('abort', `status ${String(r)}`);
        }
        await sleep(100);
      }
    };
    const workloads: Record<string, () => Promise<void>> = {
      get: () => loadRounds('get', { ...base, path: '/get', connections: 4, streams: 8 }),
      upload: () =>
        loadRounds('upload', {
          ...base,
          path: '/echo',
          method: 'POST',
          body: new Uint8Array(64 * 1024),
          connections: 2,
          streams: 2,
        }),
      download: () => loadRounds('download', { ...base, path: '/bytes/262144', connections: 1, streams: 4 }),
      churn: () =>
        loadRounds('churn', { ...base, path: '/churn', connections: 2, streams: 1, newConnectionPerRequest: true }),
      timeout: () => Promise.all([timeoutLoop(), timeoutLoop()]).then(() => {}),
      abort: () => abortLoop(),
    };
    const loops = Object.entries(workloads)
      .filter(([name]) => o.only.length === 0 || o.only.includes(name))
      .map(([, run]) => run());
    let sampling = true;
    const sampler = (async () => {
      let next = start + o.sampleIntervalMs;
      while (sampling) {
        await sleep(Math.max(0, next - performance.now()));
        if (!sampling) break;
        const now = performance.now();
        const row = await sample(now - start, now < warmEnd ? 'warmup' : 'measure');
        if (samples.length % 10 === 0 || row.t * 1000 >= o.durationMs - o.sampleIntervalMs) {
          log(
            `soak: t=${row.t}s ${row.phase} dataplane ${row.dataplane.rssMiB} MiB ${row.dataplane.fds} fds, ${row.connections} conns ${row.streams} streams ${row.inflight} inflight, load generator ${row.loadgenRssMiB} MiB, ${tally.summary()}`,
          );
        }
        next += o.sampleIntervalMs;
      }
    })();
    await Promise.all(loops);
    sampling = false;
    await sampler;
    if (died !== null) {
      await sleep(200); // the exit watcher may still be filling in the details
      throw new Error(died);
    }
    const loadEndedAt = performance.now();

    // After the load: every spooky_* gauge back to its baseline.
    let finalGauges: Record<string, number> = {};
    const back = () => {
      const keys = new Set([...Object.keys(baselineGauges), ...Object.keys(finalGauges)]);
      return [...keys].filter((k) => (finalGauges[k] ?? 0) !== (baselineGauges[k] ?? 0));
    };
    const settledAfterMs = await until(async () => {
      finalGauges = spookyGauges(await scrape(metricsUrl));
      return back().length === 0;
    }, o.settleMs);
    // A little longer: idle resources (fds) get the same time to go as the gauges had.
    await sleep(1000);
    const settled = await sample(performance.now() - start, 'settled');
    log(`soak: load over after ${((loadEndedAt - start) / 1000).toFixed(1)} s; gauges settled: ${settledAfterMs}`);

    // Figures and criteria.
    const measured = samples.filter((x) => x.phase === 'measure');
    if (measured.length < 4) throw new Error(`only ${measured.length} samples after the warm-up: sample more often`);
    const firsts = measured.slice(0, 3);
    const lasts = measured.slice(-3);
    const rssStart = median(firsts.map((x) => x.dataplane.rssMiB));
    const rssEnd = median(lasts.map((x) => x.dataplane.rssMiB));
    const growthPct = Math.round(((rssEnd - rssStart) / rssStart) * 1000) / 10;
    const fds = {
      baseline: baseline.dataplane.fds,
      afterWarmup: measured[0].dataplane.fds,
      endOfLoad: median(lasts.map((x) => x.dataplane.fds)),
      max: Math.max(...measured.map((x) => x.dataplane.fds)),
      settled: settled.dataplane.fds,
    };
    const totals = { sent: 0, ok: 0, intended: 0, failed: 0, connections: 0 };
    const errors: Record<string, number> = {};
    for (const [w, phases] of Object.entries(tally.byWorkload)) {
      for (const f of [phases.warmup, phases.measure]) {
        totals.sent += f.sent;
        totals.ok += f.ok;
        totals.intended += f.intended;
        totals.failed += f.failed;
        totals.connections += f.connections;
        for (const [k, n] of Object.entries(f.errors)) errors[`${w}: ${k}`] = (errors[`${w}: ${k}`] ?? 0) + n;
      }
    }
    const notBack = back();
    const criteria: Criterion[] = [
      {
        name: `data plane RSS growth after warm-up < ${o.rssLimitPct}%`,
        pass: growthPct < o.rssLimitPct,
        detail: `${rssStart} MiB just after warm-up → ${rssEnd} MiB at the end (${growthPct >= 0 ? '+' : ''}${growthPct}%; medians of 3 samples)`,
      },
      {
        name: `no fd growth (slack ${o.fdSlack})`,
        pass: fds.endOfLoad - fds.afterWarmup <= o.fdSlack && fds.settled - fds.baseline <= o.fdSlack,
        detail: `under load: ${fds.afterWarmup} after warm-up → ${fds.endOfLoad} at the end (max ${fds.max}); idle: ${fds.baseline} before → ${fds.settled} after`,
      },
      {
        name: 'every spooky_* gauge back to baseline',
        pass: settledAfterMs !== null,
        detail:
          settledAfterMs !== null
            ? `${Object.keys(baselineGauges).length} series back ${(settledAfterMs / 1000).toFixed(1)} s after the load`
            : `not back after ${o.settleMs / 1000} s: ${notBack.map((k) => `${k} ${baselineGauges[k] ?? 0} → ${finalGauges[k] ?? 0}`).join(', ')}`,
      },
      {
        name: 'no failed requests',
        pass: totals.failed === 0,
        detail:
          totals.failed === 0
            ? `${totals.sent} sent, ${totals.ok} ok, ${totals.intended} intended 504s/aborts`
            : `${totals.failed} of ${totals.sent}: ${JSON.stringify(errors)}`,
      },
    ];
    const cpus = os.cpus();
    const result: SoakResult = {
      startedAt,
      finishedAt: new Date().toISOString(),
      options: o,
      machine: {
        cpus: cpus.length,
        cpuModel: cpus[0]?.model ?? 'unknown',
        memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
        node: process.version,
        kernel: `${os.type()} ${os.release()}`,
      },
      requests: totals,
      workloads: tally.byWorkload,
      samples,
      baselineGauges,
      finalGauges,
      dataplaneCounts: dataplaneCounts(await scrape(metricsUrl)),
      settledAfterMs: settledAfterMs === null ? null : Math.round(settledAfterMs),
      rss: {
        startMiB: rssStart,
        endMiB: rssEnd,
        growthPct,
        maxMiB: Math.max(...measured.map((x) => x.dataplane.rssMiB)),
      },
      fds,
      criteria,
      pass: criteria.every((c) => c.pass),
    };
    const out = opts.out === undefined ? DEFAULT_OUT : opts.out;
    if (out !== null) {
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
      log(`soak: wrote ${out}`);
    }
    return result;
  } finally {
    stopping = true;
    await dp?.stop();
    await cp?.stop();
    await Promise.all(backends.map((x) => x.close()));
  }
}

// ------------------------------------------------------------------------------------ CLI

function parseArgs(argv: string[]): SoakOptions {
  const value = (flag: string): number | undefined => {
    const i = argv.indexOf(flag);
    if (i < 0) return undefined;
    const v = Number(argv[i + 1]);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${flag} expects a positive number, got ${argv[i + 1]}`);
    return v;
  };
  const i = argv.indexOf('--out');
  const out = i >= 0 ? argv[i + 1] : undefined;
  const durationMs = (value('--minutes') ?? 0) * 60_000 + (value('--seconds') ?? 0) * 1000 || 600_000;
  const warmupMs = (value('--warmup-s') ?? Math.min(60, durationMs / 4000)) * 1000;
  const sampleIntervalMs = (value('--interval-s') ?? 5) * 1000;
  const roundS = value('--round-s');
  const j = argv.indexOf('--only');
  const only = j >= 0 ? (argv[j + 1] ?? '').split(',').filter(Boolean) : undefined;
  return { durationMs, warmupMs, sampleIntervalMs, roundMs: roundS ? roundS * 1000 : undefined, out, only };
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  if (process.argv.includes('--help')) {
    process.stdout.write(
      'usage: node dist/bench/soak.js [--minutes N] [--seconds N] [--warmup-s N] [--interval-s N] [--round-s N] [--only get,upload,download,churn,timeout,abort] [--out FILE]\n',
    );
    process.exit(0);
  }
  let opts: SoakOptions;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`soak: ${(e as Error).message}\n`);
    process.exit(2);
  }
  runSoak(opts).then(
    (r) => {
      for (const c of r.criteria) process.stdout.write(`${c.pass ? 'PASS' : 'FAIL'} ${c.name}: ${c.detail}\n`);
      process.stdout.write(
        `${r.requests.sent} requests sent, ${r.requests.failed} failed, ${r.requests.connections} connections opened\n`,
      );
      process.exit(r.pass ? 0 : 1);
    },
    (e) => {
      process.stderr.write(`soak: ${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
}
