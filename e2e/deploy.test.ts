/**
 * The deployment files in deploy/, checked with the tools that consume them: `systemd-analyze verify`
 * on both units, `promtool check rules` / `promtool test rules` on the alert rules, the Grafana
 * dashboard's queries against the documented metric names, and install.sh (`bash -n`, a dry run
 * and a real run under --prefix, neither of which may touch the host).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  accessSync,
  appendFileSync,
  constants,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/** The repository root, from dist/e2e/deploy.test.js. */
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const DEPLOY = join(REPO, 'deploy');
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const PROMTOOL = '/usr/bin/promtool';
const UNITS = ['spooky-control.service', 'spooky-dataplane.service'];
/** The dashboard's data source: Grafana asks for it on import (`__inputs`). */
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's input placeholder, not a JS template
const DS_UID = '${DS_PROMETHEUS}';

/** The metric names of docs (operations.md, "Metrics"); histograms also expose _bucket, _sum, _count. */
const SPOOKY_METRICS = [
  'spooky_requests_total',
  'spooky_upstream_requests_total',
  'spooky_active_connections',
  'spooky_connections_total',
  'spooky_active_streams',
  'spooky_overload_shed_by_reason_total',
  'spooky_health_checks_total',
  'spooky_health_checks_success_total',
  'spooky_health_checks_failure_total',
  // The seed's names, still served (untyped copies of the two above).
  'spooky_health_checks_success',
  'spooky_health_checks_failure',
  'spooky_backend_healthy',
  'spooky_circuit_breaker_open',
  'spooky_retries_total',
  'spooky_snapshot_version',
  'spooky_snapshot_apply_total',
  'spooky_dataplanes_connected',
];
const SPOOKY_HISTOGRAMS = ['spooky_request_duration_seconds', 'spooky_upstream_duration_seconds'];
/** prom-client's default process metrics. */
const PROCESS_METRICS = [
  'process_cpu_seconds_total',
  'process_cpu_user_seconds_total',
  'process_cpu_system_seconds_total',
  'process_start_time_seconds',
  'process_resident_memory_bytes',
  'process_virtual_memory_bytes',
  'process_heap_bytes',
  'process_open_fds',
  'process_max_fds',
  'nodejs_eventloop_lag_seconds',
  'nodejs_eventloop_lag_min_seconds',
  'nodejs_eventloop_lag_max_seconds',
  'nodejs_eventloop_lag_mean_seconds',
  'nodejs_eventloop_lag_stddev_seconds',
  'nodejs_eventloop_lag_p50_seconds',
  'nodejs_eventloop_lag_p90_seconds',
  'nodejs_eventloop_lag_p99_seconds',
  'nodejs_heap_size_total_bytes',
  'nodejs_heap_size_used_bytes',
  'nodejs_external_memory_bytes',
  'nodejs_active_handles',
  'nodejs_active_requests',
];
const DASHBOARD_METRICS = new Set([
  ...SPOOKY_METRICS,
  ...SPOOKY_HISTOGRAMS.flatMap((h) => [`${h}_bucket`, `${h}_sum`, `${h}_count`]),
  ...PROCESS_METRICS,
]);
/** The alert rules may also use Prometheus' own per-target series. */
const ALERT_METRICS = new Set([...DASHBOARD_METRICS, 'up']);

const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool']);
const PROMQL_KEYWORDS_CI = new Set(['and', 'or', 'unless', 'offset', 'inf', 'nan']);

/** The metric names a PromQL expression (or Grafana query) selects. */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // label values and other strings
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // ranges and subqueries
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '') // label lists
    .replace(/\$\{?\w+\}?/g, ''); // Grafana variables
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[A-Za-z_:][\w:]*/g)) {
    const rest = stripped.slice((m.index ?? 0) + m[0].length).trimStart();
    if (rest.startsWith('(')) continue; // a function or an aggregation
    if (PROMQL_KEYWORDS.has(m[0]) || PROMQL_KEYWORDS_CI.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const groups = new Set<number>();
process.on('exit', () => {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Runs a command in its own process group; the whole group is killed after timeoutMs. */
function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Result> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, {
      cwd: opts.cwd ?? REPO,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const pgid = p.pid;
    if (pgid !== undefined) groups.add(pgid);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    p.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    p.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const kill = () => {
      if (pgid === undefined) return;
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      kill(); // nothing it started outlives it
      if (pgid !== undefined) groups.delete(pgid);
      if (timedOut) reject(new Error(`${cmd} ${args.join(' ')}: still running after ${timeoutMs} ms, killed`));
      else resolve({ code, signal, stdout, stderr });
    });
  });
}

let toolsReady: Promise<void> | undefined;
/** systemd-analyze and promtool come from Debian packages that may still be being installed. */
function waitForTools(): Promise<void> {
  toolsReady ??= (async () => {
    const deadline = Date.now() + 300_000;
    for (;;) {
      const missing = [SYSTEMD_ANALYZE, PROMTOOL].filter((p) => {
        try {
          accessSync(p, constants.X_OK);
          return false;
        } catch {
          return true;
        }
      });
      if (missing.length === 0) return;
      if (Date.now() > deadline) {
        throw new Error(
          `${missing.join(' and ')} still missing after 5 minutes: install the Debian packages systemd and prometheus (scripts/install-test-deps.sh)`,
        );
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  })();
  return toolsReady;
}

const tempDirs: string[] = [];
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A unit file as section -> [key, value] pairs, in order (keys repeat). */
function parseUnit(text: string): Map<string, Array<[string, string]>> {
  const sections = new Map<string, Array<[string, string]>>();
  let current: Array<[string, string]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = [];
      sections.set(section[1], current);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(current && eq > 0, `unexpected unit line: ${raw}`);
    current.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return sections;
}

function values(unit: Map<string, Array<[string, string]>>, section: string, key: string): string[] {
  return (unit.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
}

describe('systemd units (deploy/systemd)', () => {
  before(() => waitForTools(), { timeout: 330_000 });

  it('systemd-analyze verify accepts both units: nothing but the missing ExecStart binaries', async () => {
    const dir = tempDir('spooky-units-');
    for (const u of UNITS) copyFileSync(join(DEPLOY, 'systemd', u), join(dir, u));
    const r = await run(SYSTEMD_ANALYZE, ['verify', '--man=no', ...UNITS.map((u) => join(dir, u))], {
      cwd: dir,
      env: { ...process.env, SYSTEMD_LOG_COLOR: '0', SYSTEMD_PAGER: '' },
    });
    const output = `${r.stdout}${r.stderr}`;
    console.log(`systemd-analyze verify (exit ${r.code}):\n${output}`);
    assert.doesNotMatch(output, /Unknown (key|section|lvalue)/i);
    // Where Spooky is not installed, each unit's ExecStart binary is reported missing; nothing else may be.
    const missingBinary =
      /^(spooky-control|spooky-dataplane)\.service: Command \/usr\/local\/bin\/(spooky-control|spooky-dataplane) (is not executable: No such file or directory|not found\.?|is not executable: Permission denied)$/;
    for (const line of output.split('\n').filter((l) => l.trim() !== '')) {
      const m = missingBinary.exec(line);
      assert.ok(m, `systemd-analyze verify complained: ${line}`);
      assert.equal(m[1], m[2], `a unit names the other daemon's binary: ${line}`);
    }
    if (output.trim() === '') assert.equal(r.code, 0);
  });

  it('systemd-analyze verify is not silent about a misplaced key (the check is real)', async () => {
    const dir = tempDir('spooky-units-bad-');
    // The seed page's mistake: StartLimitIntervalSec in [Service].
    const text = readFileSync(join(DEPLOY, 'systemd', 'spooky-control.service'), 'utf8')
      .replace(/^StartLimit.*\n/gm, '')
      .replace('[Service]\n', '[Service]\nStartLimitIntervalSec=60s\n');
    writeFileSync(join(dir, 'spooky-control.service'), text);
    const r = await run(SYSTEMD_ANALYZE, ['verify', '--man=no', join(dir, 'spooky-control.service')], { cwd: dir });
    assert.match(`${r.stdout}${r.stderr}`, /Unknown key.*StartLimitIntervalSec/);
  });

  it('both units: the seed sandboxing, start limits in [Unit], on-failure restarts, journald', () => {
    for (const name of UNITS) {
      const unit = parseUnit(readFileSync(join(DEPLOY, 'systemd', name), 'utf8'));
      const one = (section: string, key: string) => {
        const v = values(unit, section, key);
        assert.equal(v.length, 1, `${name}: [${section}] ${key} set ${v.length} times`);
        return v[0];
      };
      assert.deepEqual([...unit.keys()], ['Unit', 'Service', 'Install'], name);
      assert.equal(one('Unit', 'StartLimitIntervalSec'), '60s', name);
      assert.equal(one('Unit', 'StartLimitBurst'), '3', name);
      assert.deepEqual(values(unit, 'Service', 'StartLimitIntervalSec'), [], name);
      assert.deepEqual(values(unit, 'Service', 'StartLimitBurst'), [], name);
      assert.ok(values(unit, 'Unit', 'After').join(' ').split(/\s+/).includes('network-online.target'), name);
      assert.ok(values(unit, 'Unit', 'Wants').join(' ').split(/\s+/).includes('network-online.target'), name);
      const expected: Record<string, string> = {
        User: 'spooky',
        Group: 'spooky',
        Restart: 'on-failure',
        LimitNOFILE: '1048576',
        NoNewPrivileges: 'true',
        PrivateTmp: 'true',
        ProtectSystem: 'strict',
        ProtectHome: 'true',
        RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
        RestrictNamespaces: 'true',
        SystemCallArchitectures: 'native',
        SystemCallFilter: '@system-service',
        StandardOutput: 'journal',
        StandardError: 'journal',
      };
      for (const [key, value] of Object.entries(expected)) assert.equal(one('Service', key), value, `${name}: ${key}`);
      const daemon = name.replace('.service', '');
      assert.equal(one('Service', 'ExecStart'), `/usr/local/bin/${daemon} --config /etc/spooky/config.yaml`);
      const writable = values(unit, 'Service', 'ReadWritePaths').join(' ').split(/\s+/);
      for (const p of ['/var/lib/spooky', '/var/log/spooky', '/run/spooky'])
        assert.ok(writable.includes(p), `${name}: ${p}`);
      assert.equal(one('Install', 'WantedBy'), 'multi-user.target');
    }
  });

  it('spooky-control reloads on SIGHUP and holds no capability', () => {
    const unit = parseUnit(readFileSync(join(DEPLOY, 'systemd', 'spooky-control.service'), 'utf8'));
    assert.deepEqual(values(unit, 'Service', 'ExecReload'), ['/bin/kill -HUP $MAINPID']);
    assert.deepEqual(values(unit, 'Service', 'CapabilityBoundingSet'), ['']);
    assert.deepEqual(values(unit, 'Service', 'AmbientCapabilities'), []);
  });

  it('spooky-dataplane binds 443 as spooky, follows the control plane softly and drains on stop', () => {
    const unit = parseUnit(readFileSync(join(DEPLOY, 'systemd', 'spooky-dataplane.service'), 'utf8'));
    assert.deepEqual(values(unit, 'Service', 'AmbientCapabilities'), ['CAP_NET_BIND_SERVICE']);
    assert.deepEqual(values(unit, 'Service', 'CapabilityBoundingSet'), ['CAP_NET_BIND_SERVICE']);
    assert.ok(values(unit, 'Unit', 'After').join(' ').split(/\s+/).includes('spooky-control.service'));
    assert.ok(values(unit, 'Unit', 'Wants').join(' ').split(/\s+/).includes('spooky-control.service'));
    // It serves from its cached snapshot while the control plane is down: no hard dependency.
    for (const hard of ['Requires', 'Requisite', 'BindsTo', 'PartOf']) assert.deepEqual(values(unit, 'Unit', hard), []);
    assert.deepEqual(values(unit, 'Service', 'KillSignal'), ['SIGTERM']);
    // The drain (performance.shutdown_drain_timeout_ms) is 10 s by default: stop must allow more.
    const [stop] = values(unit, 'Service', 'TimeoutStopSec');
    assert.equal(stop, '15');
    assert.ok(Number(stop) > 10);
  });
});

describe('system settings (deploy/tmpfiles.d, sysctl.d, limits.d)', () => {
  const settings = (file: string) =>
    readFileSync(join(DEPLOY, file), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith(';'));

  it('sysctl: the seed page values, with whole-line comments only', () => {
    assert.deepEqual(settings('sysctl.d/99-spooky.conf'), [
      'net.core.rmem_max = 67108864',
      'net.core.rmem_default = 16777216',
    ]);
    const text = readFileSync(join(DEPLOY, 'sysctl.d/99-spooky.conf'), 'utf8');
    assert.match(text, /^# 64 MiB — maximum socket receive buffer size$/m);
    assert.match(text, /^# 16 MiB — default for new sockets$/m);
  });

  it('limits: the seed page nofile for spooky', () => {
    assert.deepEqual(settings('limits.d/spooky.conf'), ['spooky soft nofile 1048576', 'spooky hard nofile 1048576']);
  });

  it('tmpfiles: /run/spooky 0750 spooky:spooky', () => {
    assert.deepEqual(
      settings('tmpfiles.d/spooky.conf').map((l) => l.split(/\s+/)),
      [['d', '/run/spooky', '0750', 'spooky', 'spooky', '-']],
    );
  });
});

describe('Prometheus alert rules (deploy/prometheus/spooky-alerts.yml)', () => {
  const file = join(DEPLOY, 'prometheus', 'spooky-alerts.yml');
  const REQUIRED = [
    'SpookyBackendInflightShedding',
    'SpookyNoHealthyBackend',
    'SpookyBackendDown',
    'SpookyCircuitOpen',
    'SpookyHigh5xxRate',
    'SpookyHighLatencyP99',
    'SpookyDataplaneDisconnected',
    'SpookySnapshotRejected',
    'SpookyDown',
  ];
  interface Rule {
    alert?: string;
    expr: string;
    for?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  }
  const rules = () =>
    (parse(readFileSync(file, 'utf8')) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap((g) => g.rules);

  before(() => waitForTools(), { timeout: 330_000 });

  it('promtool check rules accepts the file and counts every rule', async () => {
    const r = await run(PROMTOOL, ['check', 'rules', file]);
    console.log(`promtool check rules (exit ${r.code}):\n${r.stdout}${r.stderr}`);
    assert.equal(r.code, 0, r.stderr);
    const m = /SUCCESS: (\d+) rules found/.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.equal(Number(m[1]), rules().length);
  });

  it('has every alert, each with a severity, a summary and a description saying what to do', () => {
    const all = rules();
    assert.deepEqual(all.map((r) => r.alert).sort(), [...REQUIRED].sort());
    for (const r of all) {
      assert.match(r.labels?.severity ?? '', /^(warning|critical)$/, `${r.alert}: severity`);
      assert.ok((r.annotations?.summary ?? '').length > 10, `${r.alert}: summary`);
      assert.ok((r.annotations?.description ?? '').length > 40, `${r.alert}: description`);
      for (const name of metricNames(r.expr)) assert.ok(ALERT_METRICS.has(name), `${r.alert}: unknown metric ${name}`);
    }
    const byName = new Map(all.map((r) => [r.alert, r]));
    const shedding = byName.get('SpookyBackendInflightShedding')!;
    assert.match(
      shedding.expr,
      /rate\(spooky_overload_shed_by_reason_total\{reason="backend_inflight"\}\[5m\]\)\)? > 0/,
    );
    assert.equal(shedding.for, '10m');
    assert.match(shedding.annotations!.description, /add backends/i);
    assert.match(byName.get('SpookyDataplaneDisconnected')!.expr, /spooky_dataplanes_connected < 1/);
    assert.equal(
      byName.get('SpookySnapshotRejected')!.expr,
      'increase(spooky_snapshot_apply_total{result="nack"}[15m]) > 0',
    );
    assert.match(byName.get('SpookyDown')!.expr, /^up(\{[^}]*\})? == 0$/);
  });

  it('promtool test rules: the alerts fire when, and only where, they should', async () => {
    const dir = tempDir('spooky-rules-');
    const series = (s: string, v: string) => `      - series: '${s}'\n        values: '${v}'\n`;
    const alerts = (name: string, at: string, samples: string[]) =>
      `      - expr: 'ALERTS{alertname="${name}"}'\n        eval_time: ${at}\n        exp_samples:\n` +
      samples.map((l) => `          - labels: '${l}'\n            value: 1\n`).join('');
    const test =
      `rule_files:\n  - ${JSON.stringify(file)}\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n` +
      series('spooky_overload_shed_by_reason_total{reason="backend_inflight",instance="a"}', '0+10x30') +
      series('spooky_overload_shed_by_reason_total{reason="global_inflight",instance="b"}', '0+10x30') +
      series('spooky_backend_healthy{pool="api",backend="api-1",instance="a"}', '0x30') +
      series('spooky_backend_healthy{pool="api",backend="api-2",instance="a"}', '1x30') +
      series('spooky_backend_healthy{pool="web",backend="web-1",instance="a"}', '0x30') +
      series('spooky_dataplanes_connected{instance="a"}', '1 1 1 0x27') +
      series('spooky_snapshot_apply_total{result="ack",instance="a"}', '0+1x30') +
      series('spooky_snapshot_apply_total{result="nack",instance="a"}', '0x10 1x20') +
      '    promql_expr_test:\n' +
      // Pending for its first 10 minutes of shedding, then firing; other reasons do not count.
      alerts('SpookyBackendInflightShedding', '8m', [
        'ALERTS{alertname="SpookyBackendInflightShedding",alertstate="pending",instance="a",severity="warning"}',
      ]) +
      alerts('SpookyBackendInflightShedding', '20m', [
        'ALERTS{alertname="SpookyBackendInflightShedding",alertstate="firing",instance="a",severity="warning"}',
      ]) +
      // api still has api-2: only web has no healthy backend.
      alerts('SpookyNoHealthyBackend', '5m', [
        'ALERTS{alertname="SpookyNoHealthyBackend",alertstate="firing",instance="a",pool="web",severity="critical"}',
      ]) +
      alerts('SpookyDataplaneDisconnected', '10m', [
        'ALERTS{alertname="SpookyDataplaneDisconnected",alertstate="firing",instance="a",severity="critical"}',
      ]) +
      alerts('SpookySnapshotRejected', '15m', [
        'ALERTS{alertname="SpookySnapshotRejected",alertstate="firing",instance="a",result="nack",severity="warning"}',
      ]);
    const testFile = join(dir, 'spooky-alerts.test.yml');
    writeFileSync(testFile, test);
    const r = await run(PROMTOOL, ['test', 'rules', testFile], { cwd: dir });
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  });
});

describe('Grafana dashboard (deploy/grafana/spooky-dashboard.json)', () => {
  interface Target {
    expr?: string;
    datasource?: { type?: string; uid?: string };
  }
  interface Panel {
    type: string;
    title?: string;
    datasource?: { type?: string; uid?: string };
    targets?: Target[];
    panels?: Panel[];
    gridPos?: { h: number; w: number; x: number; y: number };
  }
  interface Dashboard {
    __inputs: Array<{ name: string; type: string; pluginId: string }>;
    panels: Panel[];
    templating?: { list: Array<{ query?: string | { query?: string }; definition?: string; datasource?: unknown }> };
    schemaVersion: number;
    title: string;
    uid: string;
  }
  const text = readFileSync(join(DEPLOY, 'grafana', 'spooky-dashboard.json'), 'utf8');
  const flat = (panels: Panel[]): Panel[] => panels.flatMap((p) => [p, ...flat(p.panels ?? [])]);

  it('parses as a Grafana 9+ dashboard with the data source as the DS_PROMETHEUS input', () => {
    const d = JSON.parse(text) as Dashboard;
    assert.ok(d.schemaVersion >= 36, `schemaVersion ${d.schemaVersion}`);
    assert.ok(d.title && d.uid);
    assert.deepEqual(
      d.__inputs.map((i) => [i.name, i.type, i.pluginId]),
      [['DS_PROMETHEUS', 'datasource', 'prometheus']],
    );
    for (const p of flat(d.panels).filter((p) => p.type !== 'row')) {
      assert.deepEqual(p.datasource, { type: 'prometheus', uid: DS_UID }, `${p.title}: datasource`);
      assert.ok(p.targets && p.targets.length > 0, `${p.title}: no query`);
      for (const t of p.targets) assert.equal(t.datasource?.uid ?? DS_UID, DS_UID);
      assert.ok(p.gridPos && p.gridPos.x + p.gridPos.w <= 24, `${p.title}: gridPos`);
    }
    const ids = flat(d.panels).map((p) => (p as unknown as { id: number }).id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  });

  it('queries only documented metric names, and covers the ones operators watch', () => {
    const d = JSON.parse(text) as Dashboard;
    const exprs = flat(d.panels).flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''));
    for (const v of d.templating?.list ?? []) {
      const q = typeof v.query === 'string' ? v.query : v.query?.query;
      if (q) exprs.push(q.replace(/^label_values\(\s*([^,)]+).*$/s, '$1'));
    }
    const used = new Set<string>();
    for (const expr of exprs) {
      assert.ok(expr.trim() !== '', 'empty query');
      const names = metricNames(expr);
      assert.ok(names.length > 0, `no metric in ${expr}`);
      for (const name of names) {
        assert.ok(DASHBOARD_METRICS.has(name), `unknown metric ${name} in ${expr}`);
        used.add(name);
      }
    }
    for (const name of [
      'spooky_requests_total',
      'spooky_request_duration_seconds_bucket',
      'spooky_upstream_requests_total',
      'spooky_active_connections',
      'spooky_overload_shed_by_reason_total',
      'spooky_backend_healthy',
      'spooky_circuit_breaker_open',
      'spooky_retries_total',
      'spooky_snapshot_version',
      'spooky_dataplanes_connected',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
    ]) {
      assert.ok(used.has(name), `no panel on ${name}`);
    }
    const all = exprs.join('\n');
    assert.match(all, /histogram_quantile\(0\.5,.*spooky_request_duration_seconds_bucket/);
    assert.match(all, /histogram_quantile\(0\.99,.*spooky_request_duration_seconds_bucket/);
    assert.match(all, /sum by \(code\) \(rate\(spooky_requests_total/);
    assert.match(all, /sum by \(backend, outcome\) \(rate\(spooky_upstream_requests_total/);
    assert.match(all, /sum by \(reason\) \(rate\(spooky_overload_shed_by_reason_total/);
  });

  it('the metric-name check itself sees through PromQL', () => {
    assert.deepEqual(
      metricNames('histogram_quantile(0.99, sum by (le) (rate(x_bucket{a="b c"}[$__rate_interval]))) > bool 1'),
      ['x_bucket'],
    );
    assert.deepEqual(metricNames('sum by (instance) (rate(a_total[5m])) / on (instance) group_left b'), [
      'a_total',
      'b',
    ]);
  });
});

describe('install.sh', () => {
  const script = join(DEPLOY, 'install.sh');
  /** Everything install.sh writes on a real install, and the account it creates. */
  const HOST_PATHS = [
    '/etc/spooky',
    '/etc/spooky/certs',
    '/etc/spooky/config.yaml',
    '/var/lib/spooky',
    '/var/log/spooky',
    '/run/spooky',
    '/usr/local/bin/spooky',
    '/usr/local/bin/spooky-control',
    '/usr/local/bin/spooky-dataplane',
    '/etc/systemd/system/spooky-control.service',
    '/etc/systemd/system/spooky-dataplane.service',
    '/etc/tmpfiles.d/spooky.conf',
    '/etc/sysctl.d/99-spooky.conf',
    '/etc/security/limits.d/spooky.conf',
  ];
  const hostState = () =>
    JSON.stringify([
      ...HOST_PATHS.map((p) => {
        try {
          const s = lstatSync(p);
          return [p, s.mode, s.uid, s.gid, s.size, s.mtimeMs];
        } catch {
          return [p, null];
        }
      }),
      ...['/etc/passwd', '/etc/group'].map((f) => [
        f,
        existsSync(f) &&
          readFileSync(f, 'utf8')
            .split('\n')
            .some((l) => l.startsWith('spooky:')),
      ]),
    ]);
  /** Commands that change the host: stubs first on PATH, each logging that it was called. */
  const HOST_COMMANDS = ['useradd', 'groupadd', 'usermod', 'chown', 'systemctl', 'systemd-tmpfiles', 'sysctl'];
  let stubs: string;
  let calls: string;
  let env: NodeJS.ProcessEnv;
  const installed: Record<string, string> = {
    'systemd/spooky-control.service': 'etc/systemd/system/spooky-control.service',
    'systemd/spooky-dataplane.service': 'etc/systemd/system/spooky-dataplane.service',
    'tmpfiles.d/spooky.conf': 'etc/tmpfiles.d/spooky.conf',
    'sysctl.d/99-spooky.conf': 'etc/sysctl.d/99-spooky.conf',
    'limits.d/spooky.conf': 'etc/security/limits.d/spooky.conf',
  };
  const bins = () =>
    (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin;

  before(() => {
    stubs = tempDir('spooky-stubs-');
    calls = join(stubs, 'calls.log');
    writeFileSync(calls, '');
    for (const c of HOST_COMMANDS) {
      writeFileSync(join(stubs, c), `#!/bin/sh\necho "${c} $*" >> '${calls}'\nexit 0\n`, { mode: 0o755 });
    }
    env = { ...process.env, PATH: `${stubs}:${process.env.PATH ?? '/usr/bin:/bin'}` };
  });

  it('bash -n: the script parses', async () => {
    const r = await run('bash', ['-n', script]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(statSync(script).mode & 0o111, 0o111, 'install.sh is executable');
    assert.match(readFileSync(script, 'utf8'), /^set -euo pipefail$/m);
  });

  it('--dry-run --prefix prints the actions and creates nothing, inside or outside the prefix', async () => {
    const prefix = tempDir('spooky-prefix-');
    const hostBefore = hostState();
    const r = await run(script, ['--dry-run', '--prefix', prefix], { env, timeoutMs: 120_000 });
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    assert.equal(hostState(), hostBefore, 'the host changed');
    assert.deepEqual(readdirSync(prefix), [], 'a dry run created files under the prefix');
    assert.equal(readFileSync(calls, 'utf8'), '', 'a dry run called a host command');
    const actions = r.stdout.split('\n').filter((l) => l.startsWith('+ '));
    for (const a of actions) assert.ok(a.split(' ').at(-1)!.startsWith(`${prefix}/`), `outside the prefix: ${a}`);
    const targets = new Set(actions.map((a) => a.split(' ').at(-1)));
    for (const p of [
      'etc/spooky',
      'etc/spooky/certs',
      'var/lib/spooky',
      'var/log/spooky',
      'etc/spooky/config.yaml',
      ...Object.values(installed),
      ...Object.keys(bins()).map((b) => `usr/local/bin/${b}`),
    ]) {
      assert.ok(targets.has(join(prefix, p)), `no action for ${p}:\n${r.stdout}`);
    }
    assert.match(r.stdout, /Next steps/);
    assert.match(r.stdout, /systemctl enable --now/);
  });

  it('--prefix installs the tree with its modes and links, idempotently, without touching the host', async () => {
    const prefix = tempDir('spooky-prefix-');
    const pkg = tempDir('spooky-pkg-');
    for (const rel of Object.values(bins())) {
      mkdirSync(dirname(join(pkg, rel)), { recursive: true });
      writeFileSync(join(pkg, rel), '#!/usr/bin/env node\n', { mode: 0o755 });
    }
    const hostBefore = hostState();
    const r = await run(script, ['--prefix', prefix, '--from', pkg], { env });
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    assert.equal(hostState(), hostBefore, 'the host changed');
    assert.equal(readFileSync(calls, 'utf8'), '', 'a host command was called under --prefix');

    const mode = (p: string) => statSync(join(prefix, p)).mode & 0o777;
    for (const d of ['etc/spooky', 'etc/spooky/certs', 'var/lib/spooky', 'var/log/spooky'])
      assert.equal(mode(d), 0o750, d);
    for (const [src, dst] of Object.entries(installed)) {
      assert.deepEqual(readFileSync(join(prefix, dst)), readFileSync(join(DEPLOY, src)), dst);
      assert.equal(mode(dst), 0o644, dst);
    }
    const config = join(prefix, 'etc/spooky/config.yaml');
    assert.deepEqual(readFileSync(config), readFileSync(join(DEPLOY, 'examples', 'production.yaml')));
    assert.equal(mode('etc/spooky/config.yaml'), 0o640);
    for (const [name, rel] of Object.entries(bins())) {
      assert.equal(readlinkSync(join(prefix, 'usr/local/bin', name)), join(pkg, rel), name);
    }

    // Again, after an operator edited the config: nothing is redone, the config is kept.
    appendFileSync(config, '# edited by the operator\n');
    const again = await run(script, ['--prefix', prefix, '--from', pkg], { env });
    assert.equal(again.code, 0, `${again.stdout}${again.stderr}`);
    assert.match(readFileSync(config, 'utf8'), /# edited by the operator\n$/);
    assert.match(again.stdout, /kept: .*config\.yaml/);
    const redone = again.stdout.split('\n').filter((l) => l.startsWith('+ ') && !l.startsWith('+ install -d '));
    assert.deepEqual(redone, [], 'a second run changed files');
    assert.equal(hostState(), hostBefore, 'the host changed');
  });

  it('refuses an unknown option with the usage (exit 2)', async () => {
    const r = await run(script, ['--bogus'], { env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown option --bogus/);
    assert.match(r.stderr, /Usage: /);
  });
});
