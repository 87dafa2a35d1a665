/**
 * A backend that allows few concurrent streams per HTTP/2 connection (nginx allows 128, nghttpd
 * 100; this one 8) behind the real data plane, loaded by two gtlsclient processes that pipeline
 * up to 100 requests each. Before the upstream pool kept to SETTINGS_MAX_CONCURRENT_STREAMS,
 * Spooky sent every request on one session: the backend refused the streams past its limit
 * (502 "refused the stream"), the breaker opened, and the rest were answered 503.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { streamLimitedBackend } from '../dataplane/upstream/h2/test-backend.js';
import { dataplaneConfig, gtlsclient, gtlsStatuses, type RunningDataplane, startDataplane } from './support/harness.js';

const LIMIT = 8;

describe("upstream HTTP/2: the backend's stream limit", { timeout: 120_000 }, () => {
  let backend: Awaited<ReturnType<typeof streamLimitedBackend>>;
  let dp: RunningDataplane;

  before(async () => {
    // Slow enough that many requests are in flight at once.
    backend = await streamLimitedBackend(LIMIT, 20);
    dp = await startDataplane(
      dataplaneConfig(`  app:\n    backends:\n      - { id: limited, address: "${backend.origin}" }\n`),
    );
  });

  after(async () => {
    await dp?.stop();
    await backend?.close();
  });

  it('200 pipelined requests from two gtlsclient processes all succeed; no session carries more than the limit', async () => {
    const url = `https://localhost:${dp.port}/x`;
    // One request first: the data plane's first session learns the limit, as a warm one has
    // (a cold burst sends up to 100 streams before the backend's SETTINGS arrive: RFC 9113 §5.1.2).
    const warm = await gtlsclient(dp.port, [url]);
    assert.deepEqual(gtlsStatuses(warm.stdout + warm.stderr), [200]);
    const runs = await Promise.all([1, 2].map(() => gtlsclient(dp.port, [url], ['-n', '100'])));
    for (const r of runs) {
      const statuses = gtlsStatuses(r.stdout + r.stderr);
      assert.equal(statuses.length, 100, `gtlsclient saw ${statuses.length} responses (exit ${r.code})`);
      assert.deepEqual(
        statuses.filter((s) => s !== 200),
        [],
      );
    }
    const { stats } = backend;
    assert.equal(stats.served, 201);
    assert.ok(stats.peakPerSession <= LIMIT, `peak ${stats.peakPerSession} streams on one backend session`);
    assert.ok(stats.sessions > 1, `${stats.sessions} backend sessions for up to 200 concurrent requests`);
  });
});
