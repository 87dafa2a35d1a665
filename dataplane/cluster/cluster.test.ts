import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfigText } from '../../model/config/load.js';
import { buildRuntimeConfig, type RuntimeConfig } from '../../model/config/runtime.js';
import { DataPlaneMetrics } from '../metrics.js';
import { UpstreamError } from '../upstream/errors.js';
import type { Cluster, Host } from './cluster.js';
import { NoBackendError } from './dispatch.js';
import { FakeDispatcher, RecordingHandler, request } from './fake-dispatcher.js';
import { ClusterManager } from './manager.js';

const readPem = (path: string) => `-----BEGIN X-----\n${path}\n-----END X-----\n`;

function config(backends: string[], extra = '', resilience = ''): RuntimeConfig {
  const list = backends.map((id, i) => `{ id: ${id}, address: "h:${i + 1}" }`).join(', ');
  const text = `listen: { tls: { cert: c.pem, key: k.pem } }
upstream:
  web: { route: { host: web.example }, backends: [${list}] ${extra} }
performance: { per_backend_inflight_limit: 2 }
resilience: { circuit_breaker: { consecutive_failures: 2, open_ms: 1000, half_open_probes: 1 } ${resilience} }
`;
  const r = loadConfigText(text, 't.yaml');
  if (!r.ok) assert.fail(JSON.stringify(r.errors));
  return buildRuntimeConfig(r.config, { baseDir: '/etc/spooky', readPem });
}

/** A manager over fake dispatchers (the latest per backend id, and every one made) and a clock the test moves. */
function manager(cfg: RuntimeConfig) {
  const clock = { now: 0 };
  const dispatchers = new Map<string, FakeDispatcher>();
  const made: FakeDispatcher[] = [];
  const createDispatcher = (b: { id: string }) => {
    const d = new FakeDispatcher(b.id);
    dispatchers.set(b.id, d);
    made.push(d);
    return d;
  };
  const m = new ClusterManager(cfg, new DataPlaneMetrics(), { createDispatcher, now: () => clock.now });
  let snap = m.build(1, cfg);
  m.commit(snap);
  return {
    m,
    clock,
    dispatchers,
    made,
    cluster: (): Cluster => snap.clusters.get('web') as Cluster,
    apply(next: RuntimeConfig) {
      snap = m.build(2, next);
      m.commit(snap);
    },
  };
}

/** One GET through the cluster's dispatch (no retries): the backend it went to, or the error. */
function attempt(c: Cluster): { id: string | null; h: RecordingHandler } {
  let id: string | null = null;
  const h = new RecordingHandler();
  c.dispatcher({}, { onAttempt: (b) => (id = b.id) })(request(), h);
  return { id, h };
}

const connectError = () => new UpstreamError('connect', 'refused');

describe('Cluster', () => {
  it('picks backends in turn and dispatches to the picked backend', () => {
    const t = manager(config(['a', 'b']));
    const picks = [attempt(t.cluster()).id, attempt(t.cluster()).id, attempt(t.cluster()).id];
    assert.deepEqual(picks, ['a', 'b', 'a']);
    assert.equal(t.dispatchers.get('a')?.exchanges.length, 2);
    assert.equal(t.dispatchers.get('b')?.exchanges.length, 1);
  });

  it('one request never tries a backend twice, then says why none is left', () => {
    const t = manager(config(['a', 'b']));
    const h = new RecordingHandler();
    const dispatch = t.cluster().dispatcher({});
    dispatch(request(), h);
    dispatch(request(), h);
    assert.deepEqual(h.events, []);
    dispatch(request(), h);
    assert.ok(h.errors[0] instanceof NoBackendError);
    assert.equal((h.errors[0] as NoBackendError).reason, 'backend_inflight');
  });

  it('skips unhealthy and drained backends; none in service is no_healthy_backend', () => {
    const t = manager(config(['a', 'b']));
    t.m.states.update(1, [{ backendId: 'a', healthy: false, drained: false }]);
    assert.deepEqual([attempt(t.cluster()).id, attempt(t.cluster()).id], ['b', 'b']);
    t.m.states.update(2, [{ backendId: 'b', healthy: true, drained: true }]);
    const r = attempt(t.cluster());
    assert.equal(r.id, null);
    assert.equal((r.h.errors[0] as NoBackendError).reason, 'no_healthy_backend');
    t.m.states.update(3, [], true);
    assert.equal(attempt(t.cluster()).id !== null, true, 'a full table without them puts both back');
  });

  it('frees the in-flight slot however the attempt ends; a full backend is skipped', () => {
    const t = manager(config(['a', 'b']));
    const c = t.cluster();
    const inFlight = (id: string) => c.host(id)?.inFlight.value;
    for (let i = 0; i < 4; i++) attempt(c);
    assert.equal(inFlight('a'), 2);
    assert.equal(inFlight('b'), 2);
    assert.equal(c.state.inFlight.value, 4);
    assert.equal(t.m.admission.inFlight.value, 4);
    assert.equal((attempt(c).h.errors[0] as NoBackendError).reason, 'backend_inflight');
    const [a0, a1] = t.dispatchers.get('a')?.exchanges ?? [];
    a0?.handler.onResponseStart(200, [], false);
    a0?.handler.onComplete(null);
    a1?.handler.onError(connectError());
    assert.equal(inFlight('a'), 0);
    assert.equal(c.state.inFlight.value, 2);
    assert.equal(t.m.admission.inFlight.value, 2);
    assert.equal(attempt(c).id, 'a');
  });

  it('opens a backend circuit after consecutive failures and lets a probe through after open_ms', () => {
    const t = manager(config(['a', 'b']));
    const c = t.cluster();
    for (let i = 0; i < 2; i++) {
      assert.equal(attempt(c).id, 'a');
      t.dispatchers.get('a')?.last.handler.onError(connectError());
      attempt(c); // b's turn
      t.dispatchers.get('b')?.last.handler.onComplete(null);
    }
    assert.equal(c.host('a')?.breaker.state(t.clock.now), 'open');
    assert.deepEqual([attempt(c).id, attempt(c).id], ['b', 'b']);
    t.clock.now = 1000;
    assert.equal(c.host('a')?.breaker.state(t.clock.now), 'half-open');
  });

  it('every circuit open is circuit_open', () => {
    const t = manager(config(['a']));
    for (let i = 0; i < 2; i++) {
      attempt(t.cluster());
      t.dispatchers.get('a')?.last.handler.onError(connectError());
    }
    assert.equal((attempt(t.cluster()).h.errors[0] as NoBackendError).reason, 'circuit_open');
  });

  it('an apply carries a staying backend breaker and latency over; a new backend starts afresh', () => {
    const t = manager(config(['a', 'b'], ", load_balancing: { type: 'latency-aware' }"));
    const before = t.cluster();
    const a = before.host('a');
    for (let i = 0; i < 2; i++) before.breakerTarget(a as Host).record(false, null);
    t.clock.now = 5;
    before.breakerTarget(before.host('b') as Host).record(true, 40);
    t.apply(config(['a', 'b', 'c'], ", load_balancing: { type: 'latency-aware' }"));
    const after = t.cluster();
    assert.notEqual(after, before, 'a new cluster per snapshot');
    assert.equal(after.host('a')?.breaker, a?.breaker);
    assert.equal(after.host('a')?.breaker.state(t.clock.now), 'open');
    assert.equal(after.host('b')?.latency.value(t.clock.now), 40);
    assert.equal(after.host('c')?.breaker.state(t.clock.now), 'closed');
    assert.equal(after.host('c')?.latency.value(t.clock.now), undefined);
    assert.equal(after.host('a')?.dispatcher, a?.dispatcher, 'a staying backend keeps its dispatcher');
  });

  it('an apply with another breaker policy starts every breaker afresh; a backend that left is dropped', () => {
    const t = manager(config(['a', 'b']));
    for (let i = 0; i < 2; i++) {
      attempt(t.cluster());
      t.dispatchers.get('a')?.last.handler.onError(connectError());
      attempt(t.cluster());
    }
    assert.equal(t.cluster().host('a')?.breaker.state(t.clock.now), 'open');
    const same = t.cluster().host('a')?.breaker;
    t.apply(config(['a'], '', ', retries: { attempts: 2 }'));
    assert.equal(t.cluster().host('a')?.breaker, same, 'another retry setting keeps it');
    assert.equal(t.cluster().host('b'), undefined);
    t.apply(configWithOpenMs(['a'], 2000));
    assert.equal(t.cluster().host('a')?.breaker.state(t.clock.now), 'closed');
    assert.notEqual(t.cluster().host('a')?.breaker, same);
  });
});

describe('ClusterManager across applies', () => {
  it('makes a dispatcher on first use; an uncommitted build opens nothing', () => {
    const t = manager(config(['a', 'b']));
    assert.equal(t.made.length, 0);
    t.m.build(9, config(['a', 'b', 'x']));
    assert.equal(t.made.length, 0);
    attempt(t.cluster());
    assert.deepEqual(
      t.made.map((d) => d.name),
      ['a'],
    );
  });

  it('keeps a staying backend dispatcher; one that left or changed its timeouts drains and closes', () => {
    const t = manager(config(['a', 'b', 'c']));
    for (let i = 0; i < 3; i++) attempt(t.cluster());
    const [a, b, c] = ['a', 'b', 'c'].map((id) => t.dispatchers.get(id) as FakeDispatcher);
    t.apply(config(['a', 'b']));
    assert.deepEqual([a.closed, b.closed, c.closed], [false, false, true]);
    t.apply(config(['a', 'b'], ', timeouts: { backend_timeout_ms: 1234 }'));
    assert.deepEqual([a.closed, b.closed], [true, true], 'new timeouts need new connections');
    attempt(t.cluster());
    assert.notEqual(t.dispatchers.get('a'), a);
  });

  it('in-flight counts outlive the apply: an attempt of the old snapshot frees the new counts', () => {
    const t = manager(config(['a']));
    const old = attempt(t.cluster());
    assert.equal(old.id, 'a');
    t.apply(config(['a', 'b']));
    const c = t.cluster();
    assert.equal(c.host('a')?.inFlight.value, 1);
    assert.equal(c.state.inFlight.value, 1);
    t.dispatchers.get('a')?.last.handler.onComplete(null);
    assert.deepEqual([c.host('a')?.inFlight.value, c.state.inFlight.value, t.m.admission.inFlight.value], [0, 0, 0]);
  });

  it('each pool has its own retry budget, kept across an apply unless budget_percent changes', () => {
    const two = (percent: number) => {
      const r = loadConfigText(
        `listen: { tls: { cert: c.pem, key: k.pem } }
upstream:
  web: { route: { host: web.example }, backends: [{ id: a, address: "h:1" }] }
  api: { route: { host: api.example }, backends: [{ id: b, address: "h:2" }] }
resilience: { retries: { budget_percent: ${percent} } }
`,
        't.yaml',
      );
      if (!r.ok) assert.fail(JSON.stringify(r.errors));
      return buildRuntimeConfig(r.config, { baseDir: '/etc/spooky', readPem });
    };
    const m = new ClusterManager(two(20), new DataPlaneMetrics(), {
      createDispatcher: (b) => new FakeDispatcher(b.id),
    });
    const s1 = m.build(1, two(20));
    m.commit(s1);
    const web = s1.clusters.get('web') as Cluster;
    const api = s1.clusters.get('api') as Cluster;
    assert.notEqual(web.retryBudget, api.retryBudget);
    // The floor is 3 retries in flight: web spends it, api still has its own.
    for (let i = 0; i < 3; i++) assert.equal(web.retryBudget.tryStartRetry(), true);
    assert.equal(web.retryBudget.tryStartRetry(), false);
    assert.equal(api.retryBudget.tryStartRetry(), true);
    const s2 = m.build(2, two(20));
    m.commit(s2);
    assert.equal(s2.clusters.get('web')?.retryBudget, web.retryBudget);
    const s3 = m.build(3, two(50));
    m.commit(s3);
    assert.notEqual(s3.clusters.get('web')?.retryBudget, web.retryBudget);
  });

  it('a host reads health pushed after the snapshot was built', () => {
    const t = manager(config(['a']));
    const c = t.cluster();
    t.m.states.update(1, [{ backendId: 'a', healthy: false, drained: false }]);
    assert.equal(c.inService('a'), false);
    assert.equal((attempt(c).h.errors[0] as NoBackendError).reason, 'no_healthy_backend');
    t.m.states.update(2, [{ backendId: 'a', healthy: true, drained: false }]);
    assert.equal(attempt(c).id, 'a');
  });

  it('destroy closes every dispatcher of the committed snapshot now', () => {
    const t = manager(config(['a', 'b']));
    attempt(t.cluster());
    attempt(t.cluster());
    t.m.destroy();
    assert.deepEqual(
      t.made.map((d) => d.closed),
      [true, true],
    );
  });
});

function configWithOpenMs(backends: string[], openMs: number): RuntimeConfig {
  const c = config(backends);
  return {
    ...c,
    resilience: { ...c.resilience, circuit_breaker: { ...c.resilience.circuit_breaker, open_ms: openMs } },
  };
}
