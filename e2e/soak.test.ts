/**
 * The soak, shortened for CI: the same mixed load with connection churn as `npm run soak`
 * (bench/soak.ts) for 60 s in all, the first 25 s of which are warm-up.
 *
 * Warm-up: on Node 24 the data plane's heap grows for the first 20-25 s of this load and is flat
 * after that (a CI run: 194 MiB at 15 s, 233 MiB at 24 s, 235 MiB at 60 s); with 15 s, as on
 * Node 20, that settling read as +20% growth.
 * RSS tolerance: the 10-minute soak requires growth under 10% after warm-up. Over 35 s the heap
 * may still settle a little (the 10-minute run levels off after about a minute), so 10% would sit
 * close to that noise and flake. This test allows 15%: at the 1,300 to 2,400 requests/s this load
 * reaches on a 2-CPU machine, a leak of 700 bytes per request (or 35 KiB per connection) adds more
 * than that in 35 s, so gross leaks still fail here while slow ones are the 10-minute soak's job. fds: the same slack (4) as the
 * full soak.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { runSoak, type SoakResult } from '../bench/soak.js';

const RSS_LIMIT_PCT = 15;
const FD_SLACK = 4;

describe('soak (CI: 60 s, 25 s warm-up)', () => {
  let r: SoakResult;
  const progress: string[] = [];

  before(
    async () => {
      r = await runSoak({
        durationMs: 60_000,
        warmupMs: 25_000,
        sampleIntervalMs: 1000,
        rssLimitPct: RSS_LIMIT_PCT,
        fdSlack: FD_SLACK,
        // The 10-minute run owns bench/results/soak-latest.json.
        out: null,
        // Also live on stderr: should this process itself die (it holds the load generator and the
        // backends), the CI log keeps how far it got and its own RSS.
        log: (l) => {
          progress.push(l);
          process.stderr.write(`# ${l}\n`);
        },
      });
    },
    { timeout: 170_000 },
  );

  const criterion = (prefix: string) => {
    const c = r.criteria.find((x) => x.name.startsWith(prefix));
    assert.ok(c, `criterion ${prefix}`);
    return c;
  };

  it(`data plane RSS grows less than ${RSS_LIMIT_PCT}% after the warm-up`, (t) => {
    for (const l of progress) t.diagnostic(l);
    const rows = r.samples.filter((x) => x.phase !== 'warmup');
    t.diagnostic(
      `data plane RSS MiB/fds: ${rows.map((x) => `${x.t}s ${x.dataplane.rssMiB}/${x.dataplane.fds}`).join(', ')}`,
    );
    const c = criterion('data plane RSS growth');
    t.diagnostic(c.detail);
    assert.ok(r.rss.growthPct < RSS_LIMIT_PCT, c.detail);
  });

  it(`no file-descriptor growth (slack ${FD_SLACK})`, (t) => {
    const c = criterion('no fd growth');
    t.diagnostic(c.detail);
    assert.ok(r.fds.endOfLoad - r.fds.afterWarmup <= FD_SLACK, c.detail);
    assert.ok(r.fds.settled - r.fds.baseline <= FD_SLACK, c.detail);
  });

  it('every spooky_* gauge is back to its baseline after the load', (t) => {
    const c = criterion('every spooky_* gauge');
    t.diagnostic(c.detail);
    assert.notEqual(r.settledAfterMs, null, c.detail);
    for (const [series, value] of Object.entries(r.baselineGauges)) {
      assert.equal(r.finalGauges[series] ?? 0, value, series);
    }
    for (const g of ['spooky_upstream_inflight', 'spooky_active_streams', 'spooky_active_connections']) {
      assert.equal(r.finalGauges[g], 0, g);
    }
  });

  it('the load ran: requests of every kind, connections churned', (t) => {
    t.diagnostic(
      `${r.requests.sent} requests sent (${r.requests.ok} ok, ${r.requests.intended} intended 504s/aborts, ${r.requests.failed} failed), ${r.requests.connections} connections opened`,
    );
    for (const w of ['get', 'upload', 'download', 'churn', 'timeout', 'abort']) {
      const f = r.workloads[w];
      assert.ok(f && f.measure.sent > 0, `workload ${w} sent requests after the warm-up`);
    }
    assert.ok(r.requests.connections > 100, `only ${r.requests.connections} connections opened`);
  });

  it('no failed requests', (t) => {
    const c = criterion('no failed requests');
    t.diagnostic(c.detail);
    assert.equal(r.requests.failed, 0, c.detail);
  });
});
