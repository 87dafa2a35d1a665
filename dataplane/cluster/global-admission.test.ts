import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfigText } from '../../model/config/load.js';
import { buildRuntimeConfig, type RuntimeConfig } from '../../model/config/runtime.js';
import { GlobalAdmission } from './global-admission.js';

const readPem = (path: string) => `-----BEGIN X-----\n${path}\n-----END X-----\n`;

function runtime(resilience: string, perf = 'global_inflight_limit: 10'): RuntimeConfig {
  const text = `listen: { tls: { cert: c.pem, key: k.pem } }
upstream:
  core: { route: { host: core.example }, backends: [{ id: c, address: "h:1" }] }
  extra: { route: { host: extra.example }, backends: [{ id: e, address: "h:2" }] }
performance: { ${perf} }
resilience: { ${resilience} }
`;
  const r = loadConfigText(text, 't.yaml');
  if (!r.ok) assert.fail(JSON.stringify(r.errors));
  return buildRuntimeConfig(r.config, { baseDir: '/etc/spooky', readPem });
}

const BROWNOUT =
  'brownout: { enabled: true, trigger_percent: 50, recover_percent: 20, shed_percent: 100, core_routes: [core] }';
const ADAPTIVE = 'adaptive_admission: { enabled: true, min_limit: 2, max_limit: 4, high_latency_ms: 100 }';

/** `n` more attempts in flight (a cluster takes the global count with its own). */
function load(rt: GlobalAdmission, n: number): void {
  for (let i = 0; i < n; i++) rt.inFlight.increment();
}

/** `n` attempts end. */
function unload(rt: GlobalAdmission, n: number): void {
  for (let i = 0; i < n; i++) rt.inFlight.decrement();
  rt.observeLoad();
}

describe('GlobalAdmission (brownout, adaptive admission)', () => {
  it('admits everything with both off (the defaults)', () => {
    const rt = new GlobalAdmission(runtime(''));
    load(rt, 9);
    assert.equal(rt.admit('extra'), null);
  });

  it('brownout sheds the non-core pool at trigger_percent and ends when the load is released', () => {
    const rt = new GlobalAdmission(runtime(BROWNOUT));
    load(rt, 4);
    assert.equal(rt.admit('extra'), null);
    load(rt, 1);
    assert.equal(rt.admit('extra'), 'brownout');
    assert.equal(rt.admit('core'), null);
    unload(rt, 3);
    assert.equal(rt.overloadState().brownoutActive, false, '2 of 10 is recover_percent: over without a new request');
    assert.equal(rt.overloadState().brownoutShed, 1);
  });

  it('brownout measures against the adaptive limit when lower, and comes first', () => {
    const rt = new GlobalAdmission(runtime(`${BROWNOUT}, ${ADAPTIVE}`));
    load(rt, 2); // 2 of limit 4 = 50 %
    assert.equal(rt.admit('extra'), 'brownout');
    load(rt, 2);
    assert.equal(rt.admit('core'), 'adaptive_admission');
    assert.deepEqual(
      { ...rt.overloadState() },
      {
        adaptiveEnabled: true,
        adaptiveLimit: 4,
        inFlight: 4,
        adaptiveShed: 1,
        brownoutEnabled: true,
        brownoutActive: true,
        brownoutShed: 1,
      },
    );
  });

  it('slow answers lower the adaptive limit; an apply of the same settings keeps it', () => {
    const cfg = runtime(ADAPTIVE);
    const rt = new GlobalAdmission(cfg);
    rt.record(true, 150);
    assert.equal(rt.adaptive.limit, 3);
    rt.configure(runtime(ADAPTIVE));
    assert.equal(rt.adaptive.limit, 3);
    rt.configure(runtime(ADAPTIVE.replace('max_limit: 4', 'max_limit: 2')));
    assert.equal(rt.adaptive.limit, 2);
  });
});
