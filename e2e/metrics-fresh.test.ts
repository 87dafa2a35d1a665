/**
 * Data plane figures are fresh when asked (issue #13, items 9 and 11): the merged metrics
 * endpoint shows a data plane counter in the very next scrape and the series right after start,
 * passes `promtool check metrics` without findings while the seed's health-check names still
 * answer, and `/v1/backends` / `spooky backends` show the requests pending at a slow backend.
 * Real spooky-control and spooky-dataplane (stats at their default 5 s), a demo backend,
 * Spooky's HTTP/3 client.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { type RunningControl, type RunningDataplane, startControl, startDataplane } from './support/harness.js';
import { metricValue } from './support/observe.js';
import { config, newSetup, type Setup, spooky } from './support/pair.js';

const PROMTOOL = '/usr/bin/promtool';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function promtoolCheck(text: string): Promise<{ code: number | null; out: string }> {
  const p = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  p.stdin.end(text);
  return new Promise((resolve) => p.on('close', (code) => resolve({ code, out })));
}

describe('fresh data plane figures', () => {
  let s: Setup;
  let backend: DemoBackend;
  let cp: RunningControl;
  let dp: RunningDataplane;
  let metricsUrl = '';
  let token = '';
  const scrape = async (): Promise<string> => {
    const res = await fetch(metricsUrl);
    assert.equal(res.status, 200);
    return res.text();
  };

  before(async () => {
    backend = await startDemoBackend('a');
    s = newSetup();
    const pools = `  web:\n    backends:\n      - id: a\n        address: "${backend.origin}"\n        health_check: { path: /health, interval: 1000, timeout_ms: 500 }\n`;
    const text = config(s, pools, { extra: 'performance: { backend_timeout_ms: 30000 }\n' }).replace(
      'metrics: { enabled: false }',
      'metrics: { enabled: true, port: 0 }',
    );
    writeFileSync(s.file, text);
    cp = await startControl(s.file);
    const line = cp.logs.find((o) => o.msg === 'metrics listening');
    assert.ok(line, `no 'metrics listening' line in ${JSON.stringify(cp.logs)}`);
    metricsUrl = `http://${String(line.address)}:${Number(line.port)}${String(line.path)}`;
    token = readFileSync(join(s.dir, 'state', 'control.token'), 'utf8').trim();
    dp = await startDataplane(text, { file: s.file });
  });

  after(async () => {
    await dp?.stop();
    await cp?.stop();
    await backend?.close();
  });

  it('has the data plane series as soon as the data plane is connected', async () => {
    // Bounded wait for the control stream only; the data plane's series must come with it.
    for (let i = 0; i < 100 && !/^spooky_dataplanes_connected 1$/m.test(await scrape()); i++) await sleep(100);
    const text = await scrape();
    assert.match(text, /^spooky_dataplanes_connected 1$/m);
    assert.match(text, /^# TYPE spooky_requests_total counter$/m, 'data plane series missing after connect');
    assert.match(text, /^spooky_active_connections 0$/m);
  });

  it('shows a data plane counter change in the very next scrape', async () => {
    const client = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
    try {
      for (let round = 1; round <= 3; round++) {
        assert.equal((await client.fetch({ path: `/r${round}`, authority: 'localhost' })).status, 200);
        const text = await scrape();
        assert.equal(metricValue(text, 'spooky_requests_total', { route: 'web', code: '200' }), round, text);
        // A gauge, too: the open connection is seen now, not one stats round later.
        assert.equal(metricValue(text, 'spooky_active_connections'), 1);
      }
    } finally {
      await client.close();
    }
  });

  it('passes promtool check metrics without findings and keeps the seed names', async () => {
    // Probes run every second: wait (bounded) for the first to be counted.
    let text = await scrape();
    for (let i = 0; i < 50 && !/^spooky_health_checks_success_total\{backend="a"\} [1-9]/m.test(text); i++) {
      await sleep(100);
      text = await scrape();
    }
    const { code, out } = await promtoolCheck(text);
    assert.equal(code, 0, `promtool check metrics exit ${code}:\n${out}`);
    assert.match(text, /^# TYPE spooky_health_checks_success_total counter$/m);
    const total = metricValue(text, 'spooky_health_checks_success_total', { backend: 'a' });
    assert.ok(total !== undefined && total >= 1, text);
    // The seed's name (seed-production-checklist.txt) still answers, with the same value.
    assert.equal(metricValue(text, 'spooky_health_checks_success', { backend: 'a' }), total);
    assert.match(text, /^# TYPE spooky_health_checks_failure_total counter$/m);
    assert.doesNotMatch(text, /^nodejs_active_handles_total/m);
    assert.match(text, /^nodejs_active_handles\{/m);
  });

  it('reports requests pending at a slow backend as in flight', async () => {
    const backends = async () => {
      const res = await fetch(`${cp.apiUrl}/v1/backends`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { backends: Array<{ id: string; in_flight: number }> };
      return body.backends.find((b) => b.id === 'a')?.in_flight;
    };
    assert.equal(await backends(), 0);
    const client = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
    try {
      // /hang never answers: three requests stay in flight at backend a.
      const pending = [1, 2, 3].map((i) =>
        client.fetch({ path: `/hang?${i}`, authority: 'localhost' }).catch(() => null),
      );
      let inFlight = await backends();
      for (let i = 0; i < 50 && inFlight !== 3; i++) {
        await sleep(100);
        inFlight = await backends();
      }
      assert.equal(inFlight, 3);
      const cli = await spooky(s, cp, 'backends');
      assert.equal(cli.code, 0, cli.stderr);
      const [header, row] = cli.stdout.trim().split('\n');
      const column = header.indexOf('IN-FLIGHT');
      assert.ok(column > 0, cli.stdout);
      assert.equal(row.slice(column).trim().split(/\s+/)[0], '3', cli.stdout);
      void pending; // they never settle: closing the connection below ends them at the proxy
    } finally {
      await client.close();
    }
    // Closing the connection cancels them: back to 0 (bounded wait).
    let after = await backends();
    for (let i = 0; i < 50 && after !== 0; i++) {
      await sleep(100);
      after = await backends();
    }
    assert.equal(after, 0);
  });
});
