/**
 * spooky-control's metrics endpoint (operations.md "Metrics"): its own series (data planes
 * connected, the snapshot version each serves, apply outcomes, process metrics, the health
 * checker's) merged with the Prometheus text each data plane renders when a scrape asks it
 * (a StatsRequest on its control stream; one that does not answer in time contributes its last).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { collectProcessMetrics } from '../lib/process-metrics.js';
import type { DataPlaneOutcome } from './api/types.js';
import type { ConnectedDataPlane } from './xds/server.js';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const instances = new WeakMap<Registry, ControlPlaneMetrics>();

export class ControlPlaneMetrics {
  readonly connected: Gauge;
  readonly snapshotVersion: Gauge<'node'>;
  readonly applies: Counter<'result'>;

  /** The one instance for `registry` (created on first use). */
  static for(registry: Registry): ControlPlaneMetrics {
    return instances.get(registry) ?? new ControlPlaneMetrics(registry);
  }

  /** Registers the series in `registry`; a second instance on one registry reuses the first's. */
  constructor(registry: Registry) {
    const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
    const registers = [registry];
    this.connected = get(
      'spooky_dataplanes_connected',
      () =>
        new Gauge({
          name: 'spooky_dataplanes_connected',
          help: 'Data planes connected to this control plane',
          registers,
        }),
    );
    this.snapshotVersion = get(
      'spooky_snapshot_version',
      () =>
        new Gauge({
          name: 'spooky_snapshot_version',
          help: 'The config snapshot version each connected data plane serves',
          labelNames: ['node'] as const,
          registers,
        }),
    );
    this.applies = get(
      'spooky_snapshot_apply_total',
      () =>
        new Counter({
          name: 'spooky_snapshot_apply_total',
          help: 'Snapshot pushes answered by data planes, by result (ack, nack, timeout, not_connected)',
          labelNames: ['result'] as const,
          registers,
        }),
    );
    for (const result of ['ack', 'nack', 'timeout', 'not_connected']) this.applies.inc({ result }, 0);
    if (!registry.getSingleMetric('process_cpu_user_seconds_total')) {
      collectProcessMetrics(registry);
    }
    if (!instances.has(registry)) instances.set(registry, this);
  }

  /** Counts each data plane's answer to one push. */
  recordApply(outcomes: ReadonlyArray<Pick<DataPlaneOutcome, 'result'>>): void {
    for (const o of outcomes) this.applies.inc({ result: o.result });
  }

  /** Refreshes the gauges from the connected data planes (called before each scrape). */
  update(dataplanes: ConnectedDataPlane[]): void {
    this.connected.set(dataplanes.length);
    this.snapshotVersion.reset();
    for (const d of dataplanes) this.snapshotVersion.set({ node: d.nodeId }, d.servedVersion);
  }
}

// ---------------------------------------------------------------- seed-era names

/**
 * Counters the seed named without `_total`, now registered with it. The old names stay served as
 * untyped copies so dashboards and alerts keep working; promtool flags a counter without `_total`.
 */
const LEGACY_ALIASES: ReadonlyArray<[alias: string, counter: string]> = [
  ['spooky_health_checks_success', 'spooky_health_checks_success_total'],
  ['spooky_health_checks_failure', 'spooky_health_checks_failure_total'],
];

/** The exposition of the seed-era names, from the current values of their `_total` counters. */
export async function legacyAliasText(registry: Registry): Promise<string> {
  const out: string[] = [];
  for (const [alias, counter] of LEGACY_ALIASES) {
    const metric = registry.getSingleMetric(counter);
    if (!metric) continue;
    const { values } = await metric.get();
    out.push(`# HELP ${alias} Same as ${counter} (the name before _total; prefer ${counter})`);
    out.push(`# TYPE ${alias} untyped`);
    for (const v of values) {
      const labels = Object.entries(v.labels).map(([k, l]) => `${k}="${escapeLabel(String(l))}"`);
      out.push(`${alias}${labels.length > 0 ? `{${labels.join(',')}}` : ''} ${v.value}`);
    }
  }
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}

// ---------------------------------------------------------------- merging expositions

interface Family {
  name: string;
  help?: string;
  type?: string;
  samples: string[];
  /** Which sources (0 = own, 1… = data planes) mentioned this family. */
  sources: Set<number>;
}

interface Sample {
  name: string;
  labels: Array<[string, string]>;
  rest: string;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;

/** `name{a="b",…} value [timestamp]`, label values kept escaped; null when malformed. */
function parseSample(line: string): Sample | null {
  const name = NAME.exec(line)?.[0];
  if (!name) return null;
  let i = name.length;
  const labels: Array<[string, string]> = [];
  const ws = () => {
    while (line[i] === ' ' || line[i] === '\t') i++;
  };
  ws();
  if (line[i] === '{') {
    i++;
    for (;;) {
      ws();
      if (line[i] === '}') break;
      const label = LABEL.exec(line.slice(i))?.[0];
      if (!label) return null;
      i += label.length;
      ws();
      if (line[i++] !== '=') return null;
      ws();
      if (line[i++] !== '"') return null;
      const start = i;
      while (i < line.length && line[i] !== '"') i += line[i] === '\\' ? 2 : 1;
      if (i >= line.length) return null;
      labels.push([label, line.slice(start, i)]);
      i++;
      ws();
      if (line[i] === ',') i++;
      else if (line[i] !== '}') return null;
    }
    i++;
  }
  const rest = line.slice(i).trim();
  if (rest === '') return null;
  return { name, labels, rest };
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function renderSample(s: Sample, node: string | null): string {
  let labels = s.labels;
  if (node !== null) {
    // A data plane's own `node` label keeps its value as exported_node (Prometheus' convention).
    labels = labels.map(([k, v]): [string, string] => [k === 'node' ? 'exported_node' : k, v]);
    labels.push(['node', escapeLabel(node)]);
  }
  const set = labels.length > 0 ? `{${labels.map(([k, v]) => `${k}="${v}"`).join(',')}}` : '';
  return `${s.name}${set} ${s.rest}`;
}

const SUFFIXES: Record<string, string[]> = {
  histogram: ['_bucket', '_sum', '_count', '_created'],
  summary: ['_sum', '_count', '_created'],
  counter: ['_created'],
};

function belongsTo(f: Family, name: string): boolean {
  if (f.name === name) return true;
  return (SUFFIXES[f.type ?? ''] ?? []).some((s) => name === f.name + s);
}

/**
 * Merges exposition texts: the control plane's own, then each data plane's. With more than one
 * data plane every data plane sample gets `node="<id>"`; with one, only the samples of families
 * the control plane also exposes (say, process metrics) get it, so no series appears twice.
 * HELP and TYPE appear once per family (the first source's), and all samples of a family are
 * contiguous, in source order. Other comments and malformed lines are dropped.
 */
export function mergeExpositions(own: string, dataplanes: Array<{ nodeId: string; text: string }>): string {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, samples: [], sources: new Set() }));
    return f;
  };
  const sources = [{ nodeId: null as string | null, text: own }, ...dataplanes];
  sources.forEach((src, index) => {
    let current: Family | null = null;
    for (const raw of src.text.split('\n')) {
      const line = raw.trim();
      if (line === '') continue;
      if (line.startsWith('#')) {
        const m = /^#\s*(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$/.exec(line);
        if (!m) continue;
        current = family(m[2]);
        current.sources.add(index);
        if (m[1] === 'HELP') current.help ??= m[3] ?? '';
        else current.type ??= (m[3] ?? 'untyped').trim();
        continue;
      }
      const s = parseSample(line);
      if (!s) continue;
      let f: Family | undefined = current && belongsTo(current, s.name) ? current : families.get(s.name);
      if (!f) {
        for (const base of families.values()) if (belongsTo(base, s.name)) f = base;
      }
      f ??= family(s.name);
      f.sources.add(index);
      const node = index > 0 && (dataplanes.length > 1 || f.sources.has(0)) ? src.nodeId : null;
      f.samples.push(renderSample(s, node));
    }
  });
  const out: string[] = [];
  for (const f of families.values()) {
    if (f.help !== undefined) out.push(`# HELP ${f.name} ${f.help}`.trimEnd());
    if (f.type !== undefined) out.push(`# TYPE ${f.name} ${f.type}`);
    out.push(...f.samples);
  }
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}

// ---------------------------------------------------------------- the HTTP endpoint

export interface RunningMetricsServer {
  port: number;
  close(): Promise<void>;
}

/** Serves GET `path` with the merged exposition; anything else is 404. */
export function startMetricsServer(opts: {
  address: string;
  port: number;
  path: string;
  registry: Registry;
  dataplanes: () => ConnectedDataPlane[];
  /** Asks the data planes for fresh metrics; resolves when they answered or gave up waiting. */
  refresh?: () => Promise<void>;
  onScrape?: () => void;
  log: Logger;
}): Promise<RunningMetricsServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== opts.path || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    const scrape = async () => {
      await opts.refresh?.();
      opts.onScrape?.();
      const own = (await opts.registry.metrics()) + (await legacyAliasText(opts.registry));
      const dps = opts.dataplanes().map((d) => ({ nodeId: d.nodeId, text: d.stats?.metricsText ?? '' }));
      return mergeExpositions(own, dps);
    };
    scrape().then(
      (text) => {
        res.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (e: unknown) => {
        opts.log.error({ err: (e as Error).message }, 'metrics scrape failed');
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('scrape failed\n');
      },
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.address, () => {
      server.off('error', reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
