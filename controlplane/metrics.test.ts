import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { installedBinary } from '../e2e/support/installed.js';
import { ControlPlaneMetrics, legacyAliasText, mergeExpositions } from './metrics.js';
import type { ConnectedDataPlane } from './xds/server.js';

const PROMTOOL = '/usr/bin/promtool';

/** `promtool check metrics` on `text` (exit 0: clean; 3: lint findings; 1: parse error). */
async function checkMetrics(text: string): Promise<{ code: number | null; out: string }> {
  const p = spawn(await installedBinary(PROMTOOL), ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  p.stdin.end(text);
  const code = await new Promise<number | null>((r) => p.on('close', r));
  return { code, out };
}

/** Structure the text format requires beyond what promtool checks: groups contiguous, series unique. */
function assertWellFormed(text: string): void {
  const done = new Set<string>();
  const series = new Set<string>();
  let current = '';
  for (const line of text.trimEnd().split('\n')) {
    const m = /^# (HELP|TYPE) (\S+)/.exec(line);
    const fam = m ? m[2] : (/^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0] ?? '').replace(/_(bucket|sum|count)$/, '');
    if (m && fam === current && m[1] === 'HELP') assert.fail(`second HELP for ${fam}`);
    if (fam !== current) {
      assert.ok(!done.has(fam), `family ${fam} is split: ${line}`);
      if (current) done.add(current);
      current = fam;
    }
    if (!m) {
      const key = line.slice(0, line.lastIndexOf(' '));
      assert.ok(!series.has(key), `duplicate series ${key}`);
      series.add(key);
    }
  }
}

const DP_A = `# HELP spooky_requests_total Requests
# TYPE spooky_requests_total counter
spooky_requests_total{route="web",code="200"} 3
spooky_requests_total{route="we\\"b",code="503"} 1
# HELP spooky_active_connections Connections
# TYPE spooky_active_connections gauge
spooky_active_connections 2
# HELP spooky_request_duration_seconds Durations
# TYPE spooky_request_duration_seconds histogram
spooky_request_duration_seconds_bucket{le="0.1",route="web"} 1
spooky_request_duration_seconds_bucket{le="+Inf",route="web"} 4
spooky_request_duration_seconds_sum{route="web"} 0.5
spooky_request_duration_seconds_count{route="web"} 4
`;
const OWN = `# HELP spooky_dataplanes_connected Data planes
# TYPE spooky_dataplanes_connected gauge
spooky_dataplanes_connected 2

# HELP process_cpu_seconds_total CPU
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 1.5
`;

describe('mergeExpositions', () => {
  it('passes a single data plane through without a node label', () => {
    const out = mergeExpositions(OWN, [{ nodeId: 'h:1', text: DP_A }]);
    assert.ok(out.startsWith('# HELP spooky_dataplanes_connected Data planes\n'));
    assert.ok(out.includes('\nspooky_requests_total{route="web",code="200"} 3\n'));
    assert.ok(out.includes('\nspooky_requests_total{route="we\\"b",code="503"} 1\n'));
    assert.ok(out.includes('\nspooky_active_connections 2\n'));
    assert.ok(out.includes('\nspooky_request_duration_seconds_count{route="web"} 4\n'));
    assert.ok(!out.includes('node='));
    assertWellFormed(out);
  });

  it('labels a lone data plane only where its family collides with the control plane’s', () => {
    const dp = `# HELP process_cpu_seconds_total CPU\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 7\n`;
    const out = mergeExpositions(OWN, [{ nodeId: 'h:1', text: `${DP_A}${dp}` }]);
    assert.match(out, /\nprocess_cpu_seconds_total 1\.5\nprocess_cpu_seconds_total\{node="h:1"\} 7\n/);
    assert.ok(out.includes('\nspooky_active_connections 2\n'));
    assertWellFormed(out);
  });

  it('labels every data plane sample with its node, groups families, HELP/TYPE once', () => {
    const dpB = DP_A.replace(/ (\d+(\.\d+)?)$/gm, ' 9$1').replace(
      'spooky_active_connections 92',
      'spooky_active_connections 5',
    );
    const out = mergeExpositions(OWN, [
      { nodeId: 'h:1', text: DP_A },
      { nodeId: 'h"2', text: `# some comment\n${dpB}` },
    ]);
    for (const name of ['spooky_requests_total', 'spooky_active_connections', 'spooky_request_duration_seconds']) {
      assert.equal(out.split(`# HELP ${name} `).length, 2, `one HELP for ${name}`);
      assert.equal(out.split(`# TYPE ${name} `).length, 2, `one TYPE for ${name}`);
    }
    assert.ok(!out.includes('# some comment'));
    assert.ok(out.includes('\nspooky_requests_total{route="web",code="200",node="h:1"} 3\n'));
    assert.ok(out.includes('\nspooky_requests_total{route="we\\"b",code="503",node="h\\"2"} 91\n'));
    assert.match(out, /\nspooky_active_connections\{node="h:1"\} 2\nspooky_active_connections\{node="h\\"2"\} 5\n/);
    assert.ok(out.includes('\nspooky_request_duration_seconds_bucket{le="+Inf",route="web",node="h\\"2"} 94\n'));
    assert.ok(out.includes('\nspooky_request_duration_seconds_sum{route="web",node="h:1"} 0.5\n'));
    assert.ok(out.includes('\nspooky_dataplanes_connected 2\n'), 'own series stay unlabelled');
    assertWellFormed(out);
  });

  it('parses odd but valid sample lines and drops malformed ones', () => {
    const dp = [
      '# TYPE a gauge',
      'a { x = "}{ ,\\\\" , } 1 1700000000000',
      'a{y="1"} NaN',
      'a{bad} 1',
      'a{z="unterminated} 1',
      'b_total 4',
    ].join('\n');
    const out = mergeExpositions('', [
      { nodeId: 'n1', text: dp },
      { nodeId: 'n2', text: 'a{node="inner"} 2' },
    ]);
    assert.equal(
      out,
      '# TYPE a gauge\na{x="}{ ,\\\\",node="n1"} 1 1700000000000\na{y="1",node="n1"} NaN\n' +
        'a{exported_node="inner",node="n2"} 2\nb_total{node="n1"} 4\n',
    );
  });
});

describe('legacyAliasText', () => {
  it('serves the seed names as untyped copies of the _total counters', async () => {
    const registry = new Registry();
    const failure = new Counter({
      name: 'spooky_health_checks_failure_total',
      help: 'Failed probes',
      labelNames: ['backend', 'reason'],
      registers: [registry],
    });
    assert.doesNotMatch(await legacyAliasText(registry), /^spooky_health_checks_failure[{ ]/m, 'no samples yet');
    failure.inc({ backend: 'a', reason: 'status "503"' }, 3);
    const text = await legacyAliasText(registry);
    assert.match(text, /^# TYPE spooky_health_checks_failure untyped$/m);
    assert.match(text, /^spooky_health_checks_failure\{backend="a",reason="status \\"503\\""\} 3$/m);
    assert.doesNotMatch(text, /spooky_health_checks_success/);
  });
});

describe('ControlPlaneMetrics', () => {
  it('reflects connected data planes and apply outcomes; a second instance reuses the series', async () => {
    const registry = new Registry();
    const m = new ControlPlaneMetrics(registry);
    assert.equal(ControlPlaneMetrics.for(registry), m);
    assert.doesNotThrow(() => new ControlPlaneMetrics(registry));
    const dp = (nodeId: string, servedVersion: number) => ({ nodeId, servedVersion }) as ConnectedDataPlane;
    m.update([dp('a', 3), dp('b', 2)]);
    m.recordApply([{ result: 'ack' }, { result: 'timeout' }]);
    m.update([dp('a', 4)]);
    const text = await registry.metrics();
    assert.match(text, /\nspooky_dataplanes_connected 1\n/);
    assert.match(text, /\nspooky_snapshot_version\{node="a"\} 4\n/);
    assert.ok(!text.includes('node="b"'), 'a disconnected data plane leaves no version series');
    assert.match(text, /\nspooky_snapshot_apply_total\{result="ack"\} 1\n/);
    assert.match(text, /\nspooky_snapshot_apply_total\{result="nack"\} 0\n/);
    assert.match(text, /\nprocess_cpu_user_seconds_total /);
  });
});

describe('promtool check metrics', () => {
  it('accepts a merge of real prom-client registries without findings', async () => {
    const own = new Registry();
    new ControlPlaneMetrics(own).update([]);
    new Counter({
      name: 'spooky_health_checks_success_total',
      help: 'Probes',
      labelNames: ['backend'],
      registers: [own],
    })
      .labels({ backend: 'a' })
      .inc(2);
    const dataplane = (seed: number) => {
      const registry = new Registry();
      const registers = [registry];
      const c = new Counter({
        name: 'spooky_requests_total',
        help: 'Requests',
        labelNames: ['route', 'code'],
        registers,
      });
      const g = new Gauge({ name: 'spooky_active_connections', help: 'Connections', registers });
      const h = new Histogram({
        name: 'spooky_request_duration_seconds',
        help: 'Durations',
        labelNames: ['route'],
        buckets: [0.01, 0.1, 1],
        registers,
      });
      c.inc({ route: 'web', code: '200' }, seed);
      c.inc({ route: 'a "quoted" \\ route\n', code: '503' });
      g.set(seed);
      h.observe({ route: 'web' }, 0.05 * seed);
      return registry.metrics();
    };
    const dps = [
      { nodeId: 'host:443', text: await dataplane(1) },
      { nodeId: 'host:8443', text: await dataplane(2) },
    ];
    const ownText = (await own.metrics()) + (await legacyAliasText(own));
    for (const merged of [mergeExpositions(ownText, dps), mergeExpositions(ownText, dps.slice(0, 1))]) {
      assertWellFormed(merged);
      assert.match(merged, /^spooky_health_checks_success\{backend="a"\} 2$/m);
      const { code, out } = await checkMetrics(merged);
      assert.equal(code, 0, `promtool exit ${code}: ${out}`);
    }
  });
});
