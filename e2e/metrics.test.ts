/**
 * The merged metrics endpoint end to end: real spooky-control and spooky-dataplane, a demo
 * backend, Spooky's HTTP/3 client, promtool on the scrape, and a real Prometheus scraping it.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { DataPlaneMetrics } from '../dataplane/metrics.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { type RunningControl, type RunningDataplane, startControl, startDataplane } from './support/harness.js';
import { installedBinary } from './support/installed.js';
import { config, newSetup, type Setup } from './support/pair.js';

const PROMTOOL = '/usr/bin/promtool';
const PROMETHEUS = '/usr/bin/prometheus';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function promtoolCheck(text: string): Promise<{ code: number | null; out: string }> {
  const p = spawn(await installedBinary(PROMTOOL), ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  p.stdin.end(text);
  return { code: await new Promise<number | null>((r) => p.on('close', r)), out };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** The sample lines of `family` (its own name, or histogram suffixes) in an exposition. */
function samplesOf(text: string, family: string): string[] {
  const re = new RegExp(`^${family}(_bucket|_sum|_count)?(\\{| )`);
  return text.split('\n').filter((l) => re.test(l));
}

describe('the merged metrics endpoint', () => {
  let s: Setup;
  let backend: DemoBackend;
  let cp: RunningControl;
  let dp: RunningDataplane;
  let prometheus: ChildProcess | null = null;
  let metricsUrl = '';
  let scraped = '';
  // Spooky's own data plane families; process metrics exist on both sides and carry the node
  // label whenever the control plane exposes the same family.
  const dataplaneFamilies = new DataPlaneMetrics().registry
    .getMetricsAsArray()
    .map((m) => m.name)
    .filter((name) => name.startsWith('spooky_'));

  before(async () => {
    backend = await startDemoBackend('a');
    s = newSetup();
    const text = config(s, `  web:\n    backends: [{ id: a, address: "${backend.origin}" }]\n`, {
      extra: 'performance: { global_inflight_limit: 1, backend_timeout_ms: 3000 }\n',
    }).replace('metrics: { enabled: false }', 'metrics: { enabled: true, port: 0 }');
    assert.ok(text.includes('metrics: { enabled: true, port: 0 }'));
    writeFileSync(s.file, text);
    cp = await startControl(s.file);
    const line = cp.logs.find((o) => o.msg === 'metrics listening');
    assert.ok(line, `no 'metrics listening' line in ${JSON.stringify(cp.logs)}`);
    metricsUrl = `http://${String(line.address)}:${Number(line.port)}${String(line.path)}`;
    dp = await startDataplane(text, { file: s.file });
  });

  after(async () => {
    if (prometheus && prometheus.exitCode === null && prometheus.signalCode === null) {
      const gone = new Promise((r) => prometheus?.once('exit', r));
      prometheus.kill('SIGTERM');
      const t = setTimeout(() => prometheus?.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    }
    await dp?.stop();
    await cp?.stop();
    await backend?.close();
  });

  it('serves the control plane’s and the data plane’s series, merged', async (t) => {
    const client = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
    let shedStatus = 0;
    try {
      for (let i = 0; i < 5; i++) {
        assert.equal((await client.fetch({ path: `/x${i}`, authority: 'localhost' })).status, 200);
      }
      // global_inflight_limit 1: a request that hangs at the backend makes the next one shed.
      const hanging = client.fetch({ path: '/hang', authority: 'localhost' }).catch(() => null);
      // Only once the backend holds /hang is the one in-flight slot surely taken.
      for (let i = 0; i < 100 && !backend.seen.some((r) => r.path === '/hang'); i++) await sleep(50);
      assert.ok(
        backend.seen.some((r) => r.path === '/hang'),
        'the backend received /hang',
      );
      shedStatus = (await client.fetch({ path: '/y', authority: 'localhost' })).status;
      assert.equal(shedStatus, 503, 'global_inflight_limit 1 sheds the request during the hang');
      await hanging;
    } finally {
      await client.close();
    }
    t.diagnostic(`request during the hang: ${shedStatus}`);

    // Each scrape asks the data plane for its metrics (metrics-fresh.test.ts tests how fresh).
    const shedLine = /^spooky_overload_shed_by_reason_total\{reason="global_inflight"\} /m;
    const deadline = performance.now() + 25_000;
    for (;;) {
      const res = await fetch(metricsUrl);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
      scraped = await res.text();
      const dpArrived = dataplaneFamilies.some((f) => scraped.includes(`# TYPE ${f} `));
      if (dpArrived && shedLine.test(scraped)) break;
      assert.ok(performance.now() < deadline, `no data plane metrics after 25 s:\n${scraped}`);
      await sleep(500);
    }

    assert.match(scraped, /^spooky_dataplanes_connected 1$/m);
    const token = readFileSync(join(s.dir, 'state', 'control.token'), 'utf8').trim();
    const res = await fetch(`${cp.apiUrl}/v1/dataplanes`, { headers: { authorization: `Bearer ${token}` } });
    const { current_version } = (await res.json()) as { current_version: number };
    const version = scraped.match(/^spooky_snapshot_version\{node="([^"]+)"\} (\d+)$/m);
    assert.ok(version, 'spooky_snapshot_version{node}');
    assert.equal(Number(version[2]), current_version);
    assert.match(scraped, /^# TYPE spooky_snapshot_apply_total counter$/m);
    assert.match(scraped, /^process_cpu_user_seconds_total /m);
    assert.match(scraped, /^nodejs_eventloop_lag_seconds /m);
    const seen: string[] = [];
    for (const f of dataplaneFamilies) {
      assert.match(scraped, new RegExp(`^# TYPE ${f} `, 'm'), `data plane family ${f}`);
      const samples = samplesOf(scraped, f);
      for (const l of samples) assert.ok(!l.includes('node='), `one data plane: no node label: ${l}`);
      const shown = samples.filter((l) => !l.includes('_bucket{')).map((l) => l.slice(0, l.lastIndexOf(' ')));
      seen.push(`${f}: ${shown.length > 0 ? shown.join(' ') : '(no samples yet)'}`);
    }
    assert.match(scraped, shedLine);
    t.diagnostic(`data plane series: ${seen.join('; ')}`);
    assert.equal((await fetch(metricsUrl.replace(/\/metrics$/, '/other'))).status, 404);
  });

  it('passes promtool check metrics', async (t) => {
    assert.ok(scraped, 'needs the scrape of the previous test');
    const { code, out } = await promtoolCheck(scraped);
    // Exit 3 would be lint findings (a counter without _total, a gauge named _total); 1 a parse error.
    assert.equal(code, 0, `promtool exit ${code}: ${out}`);
    t.diagnostic(`promtool (exit ${code}): ${out.trim().split('\n').join(' | ')}`);
  });

  it('is scraped by a real Prometheus', async (t) => {
    const dir = join(s.dir, 'prometheus');
    mkdirSync(dir, { recursive: true });
    const target = new URL(metricsUrl);
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: spooky
    metrics_path: ${target.pathname}
    static_configs: [{ targets: ['${target.host}'] }]
`,
    );
    const port = await freePort();
    let logs = '';
    prometheus = spawn(
      await installedBinary(PROMETHEUS),
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const child = prometheus;
    process.once('exit', () => child.kill('SIGKILL'));
    prometheus.stdout?.on('data', (d) => (logs += d));
    prometheus.stderr?.on('data', (d) => (logs += d));

    const query = async (q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
        if (res.status !== 200) return [];
        return ((await res.json()) as { data: { result: [] } }).data.result;
      } catch {
        return []; // not listening yet
      }
    };
    const until = async (q: string, ok: (v: string) => boolean) => {
      const deadline = performance.now() + 30_000;
      for (;;) {
        const r = await query(q);
        if (r.length > 0 && ok(r[0].value[1])) return r;
        assert.ok(performance.now() < deadline, `${q} not in Prometheus within 30 s: ${JSON.stringify(r)}\n${logs}`);
        assert.equal(prometheus?.exitCode, null, `prometheus exited: ${logs}`);
        await sleep(500);
      }
    };
    await until('spooky_dataplanes_connected', (v) => v === '1');
    const up = await until('up{job="spooky"}', (v) => v === '1');
    t.diagnostic(`up: ${JSON.stringify(up)}`);

    // One data plane series back: the shed counter if the shed happened, else any data plane sample.
    const family = dataplaneFamilies.find((f) => samplesOf(scraped, f).length > 0);
    assert.ok(family, `no data plane sample in the scrape:\n${scraped}`);
    const preferred = samplesOf(scraped, 'spooky_overload_shed_by_reason_total').length > 0;
    const q = preferred ? 'spooky_overload_shed_by_reason_total{reason="global_inflight"}' : family;
    const r = await until(q, () => true);
    t.diagnostic(`${q} in Prometheus: ${JSON.stringify(r)}`);
    if (preferred) assert.equal(r[0].value[1], '1');
  });
});
