/**
 * Watches a running spooky-control + spooky-dataplane pair from the outside, the way an operator
 * would: the merged Prometheus endpoint of the control plane (the data plane's gauges arrive with
 * its Stats message, every --stats-interval-ms of spooky-dataplane), and /proc for the data plane's file
 * descriptors and resident memory. Hostile-client tests use it to check that whatever a client
 * did, the resources come back: in-flight and stream gauges to 0, fds back to the baseline, the
 * process still up.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { type RunningControl, type RunningDataplane, startControl, startDataplane } from './harness.js';
import { config, newSetup, type Setup } from './pair.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One sample of a Prometheus text exposition. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the samples of a Prometheus text exposition (comments and blank lines skipped). */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) {
      labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    const raw = m[3];
    const value = raw === '+Inf' ? Number.POSITIVE_INFINITY : raw === '-Inf' ? Number.NEGATIVE_INFINITY : Number(raw);
    out.push({ name: m[1], labels, value });
  }
  return out;
}

/**
 * The sum of the samples named `name` whose labels include every pair of `labels`; undefined when
 * no sample matches (the family is absent, or has no such series yet).
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let sum: number | undefined;
  for (const s of parseExposition(text)) {
    if (s.name !== name) continue;
    if (!Object.entries(labels).every(([k, v]) => s.labels[k] === v)) continue;
    sum = (sum ?? 0) + s.value;
  }
  return sum;
}

/** Open file descriptors of a process (Linux /proc). */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Resident set size of a process in bytes (VmRSS in /proc/PID/status). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

export interface Baseline {
  fds: number;
  rss: number;
}

export interface ObservedOptions {
  /** YAML under `performance:` etc., appended to the pair config. */
  extra?: string;
  /** How often the data plane sends Stats (and so its metrics) to the control plane. */
  statsIntervalMs?: number;
  /** Also serve HTTP/2 and HTTP/1.1 on the TCP listener (same port as QUIC). */
  tcp?: boolean;
}

export interface RecoveryOptions {
  /** Also require spooky_active_connections 0 (every client of the case has gone). Default true. */
  connections?: boolean;
  /** Bound on the wait. Default 10 s. */
  timeoutMs?: number;
  /** File descriptors allowed above the baseline. Default 3. */
  fdSlack?: number;
}

/** What assertRecovered saw when everything was back. */
export interface Recovery {
  ms: number;
  inflight: number;
  streams: number;
  connections: number;
  fds: number;
  rss: number;
}

/** A control + data plane pair on one config file, with metrics on and fast Stats. */
export class Observed {
  base: Baseline | null = null;

  private constructor(
    readonly setup: Setup,
    readonly cp: RunningControl,
    readonly dp: RunningDataplane,
    readonly metricsUrl: string,
    readonly statsIntervalMs: number,
  ) {}

  /**
   * Starts both daemons on `pools` (the YAML under `upstream:`), with the merged metrics
   * endpoint on an OS-chosen port and the data plane's Stats every `statsIntervalMs` (200 ms).
   * Resolves once the data plane's families show up in the control plane's scrape.
   */
  static async start(pools: string, opts: ObservedOptions = {}): Promise<Observed> {
    const statsIntervalMs = opts.statsIntervalMs ?? 200;
    const setup = newSetup();
    const text = config(setup, pools, { extra: opts.extra ?? '' })
      .replace('metrics: { enabled: false }', 'metrics: { enabled: true, port: 0 }')
      .replace('tcp: { enabled: false }', `tcp: { enabled: ${opts.tcp ?? false} }`);
    assert.ok(text.includes('metrics: { enabled: true, port: 0 }'), 'metrics turned on in the pair config');
    writeFileSync(setup.file, text);
    const cp = await startControl(setup.file);
    let dp: RunningDataplane | undefined;
    try {
      const line = cp.logs.find((o) => o.msg === 'metrics listening');
      assert.ok(line, `no 'metrics listening' line in ${JSON.stringify(cp.logs)}`);
      const url = `http://${String(line.address)}:${Number(line.port)}${String(line.path)}`;
      dp = await startDataplane(text, {
        file: setup.file,
        args: ['--stats-interval-ms', String(statsIntervalMs)],
      });
      const o = new Observed(setup, cp, dp, url, statsIntervalMs);
      await o.waitFor('spooky_active_streams', (v) => v !== undefined, 10_000);
      return o;
    } catch (e) {
      // Leave nothing running when the pair cannot come up.
      await dp?.stop().catch(() => {});
      await cp.stop().catch(() => {});
      throw e;
    }
  }

  get port(): number {
    return this.dp.port;
  }

  get pid(): number {
    const pid = this.dp.proc.pid;
    assert.ok(pid, 'the data plane has a pid');
    return pid;
  }

  /** The data plane process is still running (not exited, not killed). */
  alive(): boolean {
    return this.dp.proc.exitCode === null && this.dp.proc.signalCode === null;
  }

  async scrape(): Promise<string> {
    const res = await fetch(this.metricsUrl, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200, `scrape of ${this.metricsUrl}`);
    return res.text();
  }

  /** One metric from a fresh scrape (sum over the series matching `labels`), or undefined. */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
    return metricValue(await this.scrape(), name, labels);
  }

  /**
   * Polls `name` until `predicate` holds (returns that value) or `timeoutMs` passes (throws with
   * the last value seen).
   */
  async waitFor(
    name: string,
    predicate: (v: number | undefined) => boolean,
    timeoutMs = 5000,
    labels: Record<string, string> = {},
  ): Promise<number | undefined> {
    const deadline = performance.now() + timeoutMs;
    let last: number | undefined;
    for (;;) {
      last = await this.metric(name, labels);
      if (predicate(last)) return last;
      if (performance.now() > deadline) {
        assert.fail(
          `${name}${JSON.stringify(labels)} did not reach the expected value within ${timeoutMs} ms (last ${last})`,
        );
      }
      await sleep(100);
    }
  }

  /** Long enough that the next scrape shows data plane figures taken after this call. */
  settle(): Promise<void> {
    // The data plane sends the text it rendered one round earlier: two rounds plus margin.
    return sleep(this.statsIntervalMs * 3 + 100);
  }

  fdCount(pid = this.pid): number {
    return fdCount(pid);
  }

  rssBytes(pid = this.pid): number {
    return rssBytes(pid);
  }

  /** Records the data plane's fds and RSS now, for assertRecovered and memory checks. */
  baseline(): Baseline {
    this.base = { fds: this.fdCount(), rss: this.rssBytes() };
    return this.base;
  }

  /**
   * Waits (bounded) until the data plane holds nothing for the clients that have gone:
   * spooky_upstream_inflight and spooky_active_streams 0 (and spooky_active_connections 0 unless
   * told otherwise), fds at most baseline + 3; and the process is still up.
   */
  async assertRecovered(opts: RecoveryOptions = {}): Promise<Recovery> {
    const { connections = true, timeoutMs = 10_000, fdSlack = 3 } = opts;
    const base = this.base;
    assert.ok(base, 'baseline() first');
    assert.ok(this.alive(), `the data plane exited: ${this.dp.stderr()}`);
    const started = performance.now();
    await this.settle();
    const deadline = started + timeoutMs;
    let seen = '';
    for (;;) {
      assert.ok(this.alive(), `the data plane exited while recovering: ${this.dp.stderr()}`);
      const text = await this.scrape();
      const inflight = metricValue(text, 'spooky_upstream_inflight');
      const streams = metricValue(text, 'spooky_active_streams');
      const conns = metricValue(text, 'spooky_active_connections');
      const fds = this.fdCount();
      seen = `inflight ${inflight}, streams ${streams}, connections ${conns}, fds ${fds} (baseline ${base.fds})`;
      if (inflight === 0 && streams === 0 && (!connections || conns === 0) && fds <= base.fds + fdSlack) {
        return {
          ms: Math.round(performance.now() - started),
          inflight,
          streams,
          connections: conns ?? 0,
          fds,
          rss: this.rssBytes(),
        };
      }
      if (performance.now() > deadline) {
        assert.fail(`resources did not come back within ${timeoutMs} ms: ${seen}`);
      }
      await sleep(200);
    }
  }

  /** Stops the data plane, then the control plane (each bounded by the harness). */
  async stop(): Promise<void> {
    await this.dp.stop().catch(() => {});
    await this.cp.stop().catch(() => {});
  }
}
