import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfigText } from '../../model/config/load.js';
import { buildRuntimeConfig, type RuntimeConfig } from '../../model/config/runtime.js';
import { resolveWorkerCount, SHARED_LIMITS, share, workerShare } from './shares.js';

const readPem = (path: string) => `-----BEGIN X-----\n${path}\n-----END X-----\n`;

function runtime(perf: string): RuntimeConfig {
  const r = loadConfigText(
    `listen: { tls: { cert: c.pem, key: k.pem } }
upstream:
  web: { route: { host: web.example }, backends: [{ id: a, address: "h:1" }] }
performance: { ${perf} }
resilience: { adaptive_admission: { enabled: true, min_limit: 10, max_limit: 101 } }
`,
    't.yaml',
  );
  if (!r.ok) assert.fail(JSON.stringify(r.errors));
  return buildRuntimeConfig(r.config, { baseDir: '/etc/spooky', readPem });
}

describe('worker shares of the host-wide limits', () => {
  it('auto is one worker per core, as many as the memory limit gives 256 MiB each; a number is itself', () => {
    assert.equal(resolveWorkerCount('auto', 64 * 1024, 16), 16);
    assert.equal(resolveWorkerCount('auto', 64 * 1024, 0), 1);
    assert.equal(resolveWorkerCount('auto', 1536, 32), 6, 'a 2 GiB cgroup (75 %) on 32 cores: 6 workers, not 32');
    assert.equal(resolveWorkerCount('auto', 100, 8), 1);
    assert.equal(resolveWorkerCount(3, 100, 16), 3);
  });

  it('divides each total, rounding down, never below 1', () => {
    assert.equal(share(20_000, 3), 6666);
    assert.equal(share(4, 4), 1);
    assert.equal(share(1, 4), 1);
  });

  it('the shares of every worker add up to at most the configured total (limit ≥ workers)', () => {
    const rt = runtime('max_active_connections: 10, per_source_max_connections: 7, global_inflight_limit: 9');
    for (const workers of [2, 3, 4, 7]) {
      const w = workerShare(rt, workers, 1024);
      for (const key of SHARED_LIMITS) {
        const total = rt.performance[key];
        assert.ok(w.performance[key] * workers <= total, `${key}: ${w.performance[key]} × ${workers} > ${total}`);
        assert.ok(w.performance[key] >= 1);
      }
      assert.ok(w.resilience.adaptive_admission.max_limit * workers <= 101);
      assert.ok(w.resilience.adaptive_admission.min_limit <= w.resilience.adaptive_admission.max_limit);
    }
  });

  it('splits the memory limit, the automatic one included; leaves everything else alone', () => {
    const explicit = workerShare(runtime('memory_limit_mib: 1000'), 4, 9999);
    assert.equal(explicit.performance.memory_limit_mib, 250);
    const auto = workerShare(runtime('memory_limit_mib: 0'), 4, 2048);
    assert.equal(auto.performance.memory_limit_mib, 512);
    const rt = runtime('backend_timeout_ms: 1234');
    const w = workerShare(rt, 2, 1024);
    assert.equal(w.performance.backend_timeout_ms, 1234);
    assert.equal(w.performance.quic_initial_max_data, rt.performance.quic_initial_max_data);
    assert.equal(w.pools, rt.pools);
    assert.equal(w.routes, rt.routes);
    assert.ok(Object.isFrozen(w.performance));
  });

  it('one worker keeps the config as it is', () => {
    const rt = runtime('max_active_connections: 10');
    assert.equal(workerShare(rt, 1, 1024), rt);
  });
});
