/**
 * Issue #13, item 3: adaptive admission and brownout against the real spooky-control and
 * spooky-dataplane. A slow HTTP/2 backend (answers /slow after a delay, /fast at once) is
 * overloaded over HTTP/3 with Spooky's client:
 * - adaptive admission (max 4) sheds requests above its limit with reason adaptive_admission,
 *   learns a lower limit from the slow answers, keeps it across an apply of the same settings,
 *   and grows it back on fast answers;
 * - brownout (trigger 50 % of global_inflight_limit 10) sheds the non-core pool with reason
 *   brownout while the core pool is served, `spooky_brownout_active` is 1 during and 0 after;
 * - `spooky status` shows both states all along.
 * Before the fix every request got 200 and status showed neither.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { DataPlanesBody, OverloadInfo } from '../controlplane/api/types.js';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { type RunningControl, type RunningDataplane, startControl, startDataplane } from './support/harness.js';
import { config, newSetup, type Setup, spooky } from './support/pair.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** /slow answers after `delayMs` (or `?ms=N`), anything else at once; counts requests that arrived. */
async function startSlowBackend(delayMs: number) {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  const timers = new Set<NodeJS.Timeout>();
  let arrived = 0;
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    arrived++;
    const answer = () => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end(`${headers[':authority']} ${headers[':path']}\n`);
    };
    if (!String(headers[':path']).startsWith('/slow')) return answer();
    const ms = Number(new URL(String(headers[':path']), 'http://x').searchParams.get('ms') ?? delayMs);
    const t = setTimeout(() => {
      timers.delete(t);
      answer();
    }, ms);
    timers.add(t);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrived: () => arrived,
    close: () =>
      new Promise<void>((r) => {
        for (const t of timers) clearTimeout(t);
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

const SLOW_MS = 1500;
/** How long the brownout load stays in flight. */
const LOAD_MS = 8000;
const ADAPTIVE =
  'adaptive_admission: { enabled: true, min_limit: 2, max_limit: 4, increase_step: 1, decrease_percent: 50, high_latency_ms: 100 }';

describe('adaptive admission and brownout (issue #13 item 3)', { timeout: 180_000 }, () => {
  let s: Setup;
  let backend: Awaited<ReturnType<typeof startSlowBackend>>;
  let cp: RunningControl;
  let dp: RunningDataplane;
  let h3: H3ClientSession;
  let metricsUrl = '';

  const pools = (origin: string) =>
    `  core:\n    route: { host: core.example }\n    backends: [{ id: core-1, address: "${origin}" }]\n` +
    `  extra:\n    route: { host: extra.example }\n    backends: [{ id: extra-1, address: "${origin}" }]\n`;
  const configText = (resilience: string) =>
    config(s, pools(backend.origin), {
      accessLog: true,
      extra: `performance: { global_inflight_limit: 10, backend_timeout_ms: 10000 }\nresilience:\n  ${resilience}\n`,
    }).replace('metrics: { enabled: false }', 'metrics: { enabled: true, port: 0 }');

  async function apply(resilience: string): Promise<void> {
    writeFileSync(s.file, configText(resilience));
    const r = await spooky(s, cp, 'apply', s.file);
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  }

  /** The data plane's overload state from `spooky status --json`, once `ok` holds (≤ 10 s). */
  async function statusUntil(what: string, ok: (o: OverloadInfo) => boolean): Promise<OverloadInfo> {
    let last: OverloadInfo | null = null;
    for (let i = 0; i < 100; i++) {
      const r = await spooky(s, cp, 'status', '--json');
      assert.equal(r.code, 0, r.stderr);
      const body = (JSON.parse(r.stdout) as { dataplanes: DataPlanesBody }).dataplanes;
      last = body.dataplanes[0]?.overload ?? null;
      if (last && ok(last)) return last;
      await sleep(100);
    }
    assert.fail(`status never showed ${what}; last: ${JSON.stringify(last)}`);
  }

  /** A data plane series from the control plane's merged endpoint, once `ok` holds (≤ 10 s). */
  async function metricUntil(series: RegExp, ok: (v: number) => boolean): Promise<number> {
    let last = Number.NaN;
    for (let i = 0; i < 100; i++) {
      const text = await (await fetch(metricsUrl)).text();
      const line = text.split('\n').find((l) => series.test(l));
      last = line === undefined ? Number.NaN : Number(line.split(' ').at(-1));
      if (ok(last)) return last;
      await sleep(100);
    }
    assert.fail(`${series} never satisfied the condition; last value ${last}`);
  }

  const get = (host: string, path: string) => h3.fetch({ path, authority: host });
  const body = (r: { body: Buffer }) => r.body.toString().trim();

  before(async () => {
    backend = await startSlowBackend(SLOW_MS);
    s = newSetup();
    writeFileSync(s.file, configText(ADAPTIVE));
    cp = await startControl(s.file);
    const line = cp.logs.find((o) => o.msg === 'metrics listening');
    assert.ok(line, 'no metrics endpoint');
    metricsUrl = `http://${String(line.address)}:${Number(line.port)}${String(line.path)}`;
    dp = await startDataplane(configText(ADAPTIVE), { file: s.file, args: ['--stats-interval-ms', '100'] });
    h3 = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
    await statusUntil(
      'adaptive admission at max',
      (o) => o.adaptive_admission.enabled && o.adaptive_admission.limit === 4,
    );
  });

  after(async () => {
    await h3?.close().catch(() => {});
    await dp?.stop();
    await cp?.stop();
    await backend?.close();
  });

  it('adaptive admission: above the limit requests get 503 adaptive_admission; slow answers lower the limit', async () => {
    const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => get('core.example', `/slow/${i}`)));
    const served = burst.filter((r) => r.status === 200);
    const shed = burst.filter((r) => r.status === 503);
    assert.equal(served.length, 4, `max_limit 4: ${burst.map((r) => `${r.status} ${body(r)}`).join(', ')}`);
    assert.equal(shed.length, 6);
    for (const r of shed) {
      assert.equal(body(r), '503 overloaded: adaptive_admission');
      assert.ok(
        r.headers.some(([k, v]) => k === 'retry-after' && v === '1'),
        'Retry-After',
      );
    }
    // Four answers slower than high_latency_ms: one cut of 50 % (one episode), 4 → 2.
    const o = await statusUntil(
      'the lowered limit, nothing in flight',
      (x) => x.adaptive_admission.limit === 2 && x.adaptive_admission.in_flight === 0,
    );
    assert.equal(o.adaptive_admission.shed_total, 6);
    const again = await Promise.all(Array.from({ length: 4 }, (_, i) => get('core.example', `/slow/again/${i}`)));
    assert.deepEqual(again.map((r) => r.status).sort(), [200, 200, 503, 503], 'the learned limit of 2 holds');
    await metricUntil(/^spooky_overload_shed_by_reason_total\{.*reason="adaptive_admission"/, (v) => v === 8);
    const logged = dp.logs.filter((l) => l.access === true && l.error === 'overloaded: adaptive_admission');
    assert.equal(logged.length, 8, 'the access log names the shed reason');
  });

  it('re-applying the same settings keeps the learned limit; fast answers grow it back', async () => {
    await apply(`${ADAPTIVE}\n  retries: { attempts: 0 }`);
    await sleep(300);
    let o = await statusUntil('the state after apply', () => true);
    assert.equal(o.adaptive_admission.limit, 2, 'an apply must not reset the limit to max_limit');
    for (let i = 0; i < 3; i++) assert.equal((await get('core.example', `/fast/${i}`)).status, 200);
    o = await statusUntil('the limit back at max', (x) => x.adaptive_admission.limit === 4);
    // A changed bound takes effect at once.
    await apply(ADAPTIVE.replace('max_limit: 4', 'max_limit: 3'));
    o = await statusUntil('the new max_limit', (x) => x.adaptive_admission.limit === 3);
    assert.equal(o.brownout.enabled, false);
  });

  it('brownout: the non-core pool gets 503 brownout while the core pool is served; gauge 1 then 0', async () => {
    await apply(
      'brownout: { enabled: true, trigger_percent: 50, recover_percent: 20, shed_percent: 100, core_routes: [core] }',
    );
    await statusUntil(
      'brownout on, adaptive admission off',
      (o) => o.brownout.enabled && !o.adaptive_admission.enabled,
    );
    assert.equal((await get('extra.example', '/fast/before')).status, 200, 'no brownout before the load');
    await metricUntil(/^spooky_brownout_active /, (v) => v === 0);
    const arrivedBefore = backend.arrived();
    // Five slow requests: 5 of global_inflight_limit 10 in flight reaches trigger_percent 50.
    // They last long enough for the checks below on a busy machine (each CLI run is a process).
    const load = Array.from({ length: 5 }, (_, i) => get('core.example', `/slow/load/${i}?ms=${LOAD_MS}`));
    for (let i = 0; i < 100 && backend.arrived() < arrivedBefore + 5; i++) await sleep(20);
    assert.equal(backend.arrived(), arrivedBefore + 5, 'the load reached the backend');
    const nonCore = await get('extra.example', '/fast/during');
    assert.equal(nonCore.status, 503, body(nonCore));
    assert.equal(body(nonCore), '503 overloaded: brownout');
    const core = await get('core.example', '/fast/during');
    assert.equal(core.status, 200, `core pool served during brownout: ${body(core)}`);
    const during = await statusUntil('brownout active', (o) => o.brownout.active);
    assert.equal(during.brownout.shed_total, 1);
    const text = await spooky(s, cp, 'status');
    assert.match(text.stdout, /\noverload \S+: adaptive admission off, 5 in flight; brownout ACTIVE, 1 shed\n/);
    await metricUntil(/^spooky_brownout_active /, (v) => v === 1);
    await metricUntil(/^spooky_overload_shed_by_reason_total\{.*reason="brownout"/, (v) => v === 1);
    assert.equal(backend.arrived(), arrivedBefore + 6, 'the shed request never reached the backend');

    for (const r of await Promise.all(load)) assert.equal(r.status, 200);
    // In flight fell to 0 (≤ recover_percent 20): brownout ends without another request.
    await statusUntil('brownout over', (o) => !o.brownout.active);
    await metricUntil(/^spooky_brownout_active /, (v) => v === 0);
    assert.equal((await get('extra.example', '/fast/after')).status, 200, 'non-core served after recovery');
  });
});
