import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, afterEach, beforeEach, describe, it, mock } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { RuntimeBackend } from '../../model/config/runtime.js';
import { HealthChecker, type HealthCheckSpec, type HealthTarget } from './checker.js';
import type { ProbeResult } from './prober.js';
import type { Transition } from './state-machine.js';

const CHECK: HealthCheckSpec = {
  method: 'GET',
  path: '/health',
  timeoutMs: 500,
  expectedStatus: '2xx',
  intervalMs: 1000,
  failureThreshold: 2,
  successThreshold: 2,
  cooldownMs: 3000,
};

function backend(id: string, port = 8080, pool = 'api'): RuntimeBackend {
  const origin = `http://127.0.0.1:${port}`;
  return { id, pool, origin, tls: false, host: '127.0.0.1', port, protocol: 'http1', weight: 100 };
}

const OK: ProbeResult = { ok: true, status: 200, latencyMs: 1 };
const DOWN: ProbeResult = { ok: false, status: 503, error: 'status 503', latencyMs: 1 };

/** A checker with a scripted probe, a captured log and its own registry. */
function setup(opts: { random?: () => number } = {}) {
  const calls: Array<{ id: string; at: number }> = [];
  const answers = new Map<string, ProbeResult | Promise<ProbeResult>>();
  const transitions: Array<{ id: string; t: Transition }> = [];
  const logs: Array<Record<string, unknown>> = [];
  const registry = new Registry();
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const checker = new HealthChecker({
    tls: { verify: true },
    onTransition: (id, t) => transitions.push({ id, t }),
    log,
    registry,
    probe: async (b) => {
      calls.push({ id: b.id, at: Date.now() });
      return answers.get(b.id) ?? OK;
    },
    random: opts.random ?? (() => 0.5),
  });
  const value = async (name: string, labels: Record<string, string>) => {
    const metric = registry.getSingleMetric(name);
    const found = (await metric?.get())?.values.find((v) =>
      Object.entries(labels).every(([k, l]) => v.labels[k] === l),
    );
    return found?.value;
  };
  return { checker, calls, answers, transitions, logs, registry, value };
}

/** Moves the mocked clock forward in small steps, letting probe promises settle in between. */
async function advance(ms: number, step = 50): Promise<void> {
  for (let done = 0; done < ms; done += step) {
    mock.timers.tick(Math.min(step, ms - done));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('HealthChecker (fake clock)', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'] }));
  afterEach(() => mock.timers.reset());

  it('probes first after a random part of the interval, then every interval ± 10%', async () => {
    const h = setup({ random: () => 0.5 });
    h.checker.update([{ backend: backend('a'), check: CHECK }]);
    await advance(450);
    assert.equal(h.calls.length, 0);
    await advance(100);
    assert.deepEqual(h.calls, [{ id: 'a', at: 500 }]);
    await advance(2000);
    assert.deepEqual(
      h.calls.map((c) => c.at),
      [500, 1500, 2500],
    );
    h.checker.stop();

    const low = setup({ random: () => 0 });
    low.checker.update([{ backend: backend('a'), check: CHECK }]);
    await advance(2000);
    // random 0: the first probe is due at once (it runs on the next clock step), then 90% of the interval.
    assert.equal(low.calls[0].at, 2600);
    assert.deepEqual(
      low.calls.map((c) => c.at - low.calls[0].at),
      [0, 900, 1800],
    );
    low.checker.stop();
  });

  it('turns unhealthy, cools down, recovers: transitions, logs and metrics', async () => {
    const h = setup();
    h.checker.update([{ backend: backend('a'), check: CHECK }]);
    await advance(600); // ok at 500
    assert.equal(h.checker.isHealthy('a'), true);
    assert.equal(await h.value('spooky_backend_healthy', { pool: 'api', backend: 'a' }), 1);
    h.answers.set('a', DOWN);
    await advance(2000); // fail at 1500 and 2500: unhealthy at 2500, cooldown until 5500
    assert.deepEqual(h.transitions, [
      { id: 'a', t: { from: 'healthy', to: 'unhealthy', reason: '2 consecutive failures: status 503' } },
    ]);
    assert.equal(h.checker.isHealthy('a'), false);
    const [info] = h.checker.health();
    assert.equal(info.state, 'unhealthy');
    assert.equal(info.since.getTime(), 2500);
    assert.equal(info.lastProbe?.error, 'status 503');
    assert.equal(await h.value('spooky_backend_healthy', { pool: 'api', backend: 'a' }), 0);
    const warn = h.logs.find((l) => l.msg === 'backend unhealthy');
    assert.equal(warn?.level, 40);
    assert.deepEqual([warn?.backend, warn?.pool, warn?.reason], ['a', 'api', '2 consecutive failures: status 503']);

    h.answers.set('a', OK);
    const before = h.calls.length;
    await advance(2800); // 3500, 4500: cooling down, skipped
    assert.equal(h.calls.length, before, 'no probes during the cooldown');
    await advance(200); // 5500: first success
    assert.equal(h.calls.length, before + 1);
    assert.equal(h.transitions.length, 1);
    await advance(1000); // 6500: second success, healthy again
    assert.deepEqual(h.transitions[1], {
      id: 'a',
      t: { from: 'unhealthy', to: 'healthy', reason: '2 consecutive successes' },
    });
    assert.equal(h.checker.isHealthy('a'), true);
    const info2 = h.logs.find((l) => l.msg === 'backend healthy');
    assert.equal(info2?.level, 30);
    assert.equal(info2?.reason, '2 consecutive successes');

    assert.equal(await h.value('spooky_health_checks_total', { backend: 'a' }), 5);
    assert.equal(await h.value('spooky_health_checks_success_total', { backend: 'a' }), 3);
    assert.equal(await h.value('spooky_health_checks_failure_total', { backend: 'a', reason: 'status 503' }), 2);
    assert.equal(await h.value('spooky_backend_healthy', { pool: 'api', backend: 'a' }), 1);
    assert.match(await h.registry.metrics(), /spooky_health_checks_total\{backend="a"\} 5/);
    h.checker.stop();
  });

  it('a failure during recovery restarts the cooldown', async () => {
    const h = setup();
    h.answers.set('a', DOWN);
    h.checker.update([{ backend: backend('a'), check: CHECK }]);
    await advance(1600); // unhealthy at 1500, cooldown until 4500
    h.answers.set('a', OK);
    await advance(3000); // success at 4500
    h.answers.set('a', DOWN);
    await advance(1000); // failure at 5500: cooldown until 8500
    const n = h.calls.length;
    h.answers.set('a', OK);
    await advance(2800); // 6500, 7500: cooling down again
    assert.equal(h.calls.length, n);
    await advance(2000); // 8500 and 9500: two successes
    assert.equal(h.transitions.at(-1)?.t.to, 'healthy');
    assert.equal(h.checker.health()[0].since.getTime(), 9500);
    h.checker.stop();
  });

  it('never runs two probes of one backend at once', async () => {
    const h = setup();
    let release!: (r: ProbeResult) => void;
    h.answers.set('a', new Promise((resolve) => (release = resolve)));
    h.checker.update([{ backend: backend('a'), check: CHECK }]);
    await advance(5000);
    assert.equal(h.calls.length, 1);
    h.answers.set('a', OK);
    release(OK);
    await advance(1000); // the overdue probe runs at once, the next one an interval later
    assert.equal(h.calls.length, 2);
    h.checker.stop();
  });

  it('a probe in flight across stop() and update() neither doubles the schedule nor records late', async () => {
    const h = setup({ random: () => 1 }); // first probe at 1000, then every 1100 (interval + 10%)
    let release!: (r: ProbeResult) => void;
    h.answers.set('a', new Promise((resolve) => (release = resolve)));
    const targets = [{ backend: backend('a'), check: CHECK }];
    h.checker.update(targets);
    await advance(1000); // probe in flight since 1000
    h.checker.stop();
    h.checker.update(targets); // kept and restarted: due at 2000, skipped while the old probe runs
    h.answers.set('a', OK);
    await advance(1500);
    assert.equal(h.calls.length, 1);
    release(DOWN); // from before stop(): dropped
    await advance(1000);
    assert.deepEqual(
      h.calls.map((c) => c.at),
      [1000, 3100],
    );
    assert.equal(h.checker.health()[0].lastProbe?.ok, true);
    assert.equal(
      await h.value('spooky_health_checks_failure_total', { backend: 'a', reason: 'status 503' }),
      undefined,
    );
    await advance(1100);
    assert.equal(h.calls.length, 3);
    h.checker.stop();
  });

  it('update keeps unchanged backends, restarts changed ones, stops removed ones', async () => {
    const h = setup();
    h.answers.set('a', DOWN);
    const targets: HealthTarget[] = [
      { backend: backend('a'), check: CHECK },
      { backend: backend('b', 8081), check: CHECK },
      { backend: backend('c', 8082), check: null },
    ];
    h.checker.update(targets);
    await advance(1600);
    assert.equal(h.checker.isHealthy('a'), false);
    const c = h.checker.health().find((x) => x.id === 'c');
    assert.deepEqual([c?.state, c?.lastProbe], ['unknown', null]);
    assert.equal(h.checker.isHealthy('c'), true);
    assert.equal(await h.value('spooky_backend_healthy', { pool: 'api', backend: 'c' }), 1);

    // Same config again: a keeps its state.
    h.checker.update(targets.map((t) => ({ ...t })));
    assert.equal(h.checker.isHealthy('a'), false);
    // a moves to another port: a new backend, healthy; b is removed.
    h.checker.update([{ backend: backend('a', 9090), check: CHECK }, targets[2]]);
    assert.equal(h.checker.isHealthy('a'), true);
    assert.deepEqual(
      h.checker.health().map((x) => [x.id, x.state]),
      [
        ['c', 'unknown'],
        ['a', 'healthy'],
      ],
    );
    assert.equal(await h.value('spooky_backend_healthy', { pool: 'api', backend: 'b' }), undefined);
    h.calls.length = 0;
    await advance(3000);
    assert.ok(h.calls.length > 0);
    assert.ok(
      h.calls.every((x) => x.id === 'a'),
      'b and c are not probed',
    );
    h.checker.stop();
    h.calls.length = 0;
    await advance(3000);
    assert.equal(h.calls.length, 0, 'stop() ends every schedule');
  });
});

describe('HealthChecker: a changed health_check (fake clock)', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'] }));
  afterEach(() => mock.timers.reset());

  it('an unhealthy backend whose check is fixed stays unhealthy until the new check passes', async () => {
    const h = setup();
    h.answers.set('a', DOWN);
    h.checker.update([{ backend: backend('a'), check: CHECK }]);
    await advance(1600); // fails at 500 and 1500: unhealthy since 1500
    assert.equal(h.checker.isHealthy('a'), false);
    h.answers.set('a', OK);
    h.checker.update([{ backend: backend('a'), check: { ...CHECK, path: '/ready', cooldownMs: 0 } }]);
    assert.equal(h.checker.isHealthy('a'), false, 'not declared healthy by the apply itself');
    assert.equal(h.checker.health()[0].since.getTime(), 1500, 'since is kept');
    assert.equal(await h.value('spooky_backend_healthy', { pool: 'api', backend: 'a' }), 0);
    await advance(2000); // the new check passes twice: a transition the data planes hear about
    assert.deepEqual(h.transitions.at(-1), {
      id: 'a',
      t: { from: 'unhealthy', to: 'healthy', reason: '2 consecutive successes' },
    });
    assert.equal(h.checker.isHealthy('a'), true);
    h.checker.stop();
  });

  it('a backend moved to another server, or whose check is removed, starts healthy', async () => {
    const h = setup();
    h.answers.set('a', DOWN);
    h.answers.set('b', DOWN);
    h.checker.update([
      { backend: backend('a'), check: CHECK },
      { backend: backend('b', 8081), check: CHECK },
    ]);
    await advance(1600);
    assert.deepEqual([h.checker.isHealthy('a'), h.checker.isHealthy('b')], [false, false]);
    h.checker.update([
      { backend: backend('a', 9090), check: { ...CHECK, path: '/ready' } },
      { backend: backend('b', 8081), check: null },
    ]);
    assert.deepEqual([h.checker.isHealthy('a'), h.checker.isHealthy('b')], [true, true]);
    h.checker.stop();
  });
});

describe('HealthChecker (real backend)', () => {
  const server = createServer((_req, res) => res.end('ok'));
  let checker: HealthChecker | undefined;
  after(async () => {
    checker?.stop();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('notices a backend going away and coming back', async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const registry = new Registry();
    const transitions: Transition[] = [];
    checker = new HealthChecker({
      tls: { verify: true },
      onTransition: (_id, t) => transitions.push(t),
      log: pino({ level: 'silent' }),
      registry,
    });
    const check = { ...CHECK, intervalMs: 100, timeoutMs: 50, failureThreshold: 1, successThreshold: 1, cooldownMs: 0 };
    checker.update([{ backend: backend('real', port), check }]);
    const waitFor = async (cond: () => boolean) => {
      for (let i = 0; i < 100 && !cond(); i++) await sleep(20);
      assert.ok(cond(), 'condition not met in time');
    };
    await waitFor(() => checker?.health()[0].lastProbe?.ok === true);
    await new Promise((resolve) => {
      server.close(resolve);
      server.closeAllConnections();
    });
    await waitFor(() => transitions.length === 1);
    assert.deepEqual(transitions[0], {
      from: 'healthy',
      to: 'unhealthy',
      reason: '1 consecutive failure: connect ECONNREFUSED',
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    await waitFor(() => transitions.length === 2);
    assert.equal(transitions[1].to, 'healthy');
    const text = await registry.getSingleMetricAsString('spooky_health_checks_failure_total');
    assert.match(text, /spooky_health_checks_failure_total\{backend="real",reason="connect ECONNREFUSED"\} [1-9]/);
    assert.match(
      await registry.getSingleMetricAsString('spooky_health_checks_success_total'),
      /backend="real"\} [1-9]/,
    );
  });
});
