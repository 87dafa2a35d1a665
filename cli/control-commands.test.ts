/**
 * The control commands as an operator runs them: a real CLI process against an in-process HTTP
 * server that speaks the control API contract (controlplane/api/types.ts) with canned bodies.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type {
  ApplyBody,
  BackendsBody,
  DataPlanesBody,
  ErrorBody,
  HealthBody,
  ValidateBody,
} from '../controlplane/api/types.js';
import { generateSelfSigned } from './certs.js';
import { configDefaults, controlUrlFor } from './control-client.js';
import { table } from './control-commands.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '..', '..');
const ENTRY = `import { Command, CommanderError } from 'commander';
import { registerControlCommands } from ${JSON.stringify(pathToFileURL(join(HERE, 'control-commands.js')).href)};
const p = new Command('spooky').option('-c, --config <file>').exitOverride();
registerControlCommands(p);
try { await p.parseAsync(process.argv.slice(1), { from: 'user' }); }
catch (e) { process.exit(e instanceof CommanderError ? (e.exitCode === 0 ? 0 : 2) : 1); }`;

const GOOD = 'good-token-0123456789';
const AT = new Date(Date.now() - 5000).toISOString();
const ack = (node_id: string) => ({ node_id, result: 'ack' as const });
const CANNED: Record<string, [number, unknown]> = {
  'GET /health': [200, { status: 'ok', uptime_ms: 3_723_000, version: '0.1.0' } satisfies HealthBody],
  'GET /ready': [200, { ready: true, reasons: [] }],
  'GET /v1/config': [
    200,
    { version: 3, sha256: 'abcdef0123456789'.repeat(4), applied_at: AT, applied_by: 'alice', yaml: 'version: 1\n' },
  ],
  'GET /v1/dataplanes': [
    200,
    {
      current_version: 3,
      dataplanes: [
        {
          ...{ node_id: 'dp-east-1', connected: true, peer: 'unix', pid: 4242, build: '0.1.0', connected_at: AT },
          ...{ disconnected_at: null, served_version: 3, last_ack: { version: 3, at: AT }, last_nack: null },
          ...{ active_connections: 17, requests_per_second: 123.5 },
          overload: {
            adaptive_admission: { enabled: true, limit: 48, in_flight: 40, shed_total: 7 },
            brownout: { enabled: true, active: true, shed_total: 3 },
          },
        },
        {
          ...{ node_id: 'edge-2', connected: false, peer: '10.0.0.2:51234', pid: 77, build: '0.1.0', connected_at: AT },
          ...{ disconnected_at: AT, served_version: 2, last_ack: { version: 2, at: AT }, last_nack: null },
          ...{ active_connections: 0, requests_per_second: 0, overload: null },
        },
      ],
    } satisfies DataPlanesBody,
  ],
  'GET /v1/backends': [
    200,
    {
      backends: [
        {
          ...{ id: 'api-1', pool: 'api', origin: 'http://10.0.10.10:8080', state: 'healthy', since: AT },
          ...{ last_probe: { ok: true, status: 200, latency_ms: 3, at: AT }, in_flight: 2, drained: false },
        },
        {
          ...{ id: 'web-1', pool: 'default', origin: 'http://10.0.20.10:8080', state: 'unhealthy', since: AT },
          ...{ last_probe: { ok: false, error: 'connection refused', latency_ms: 1, at: AT }, in_flight: 0 },
          drained: true,
        },
      ],
    } satisfies BackendsBody,
  ],
  'POST /v1/config': [
    200,
    { version: 4, unchanged: false, dataplanes: [ack('dp-1'), ack('dp-2')] } satisfies ApplyBody,
  ],
  'POST /v1/config/validate': [
    200,
    { ok: true, errors: [], warnings: [], diff: '--- applied\n+++ new\n-  port: 443\n+  port: 8443\n' } as ValidateBody,
  ],
  'POST /v1/config/rollback': [200, { version: 2, unchanged: false, dataplanes: [ack('dp-1')] } satisfies ApplyBody],
  'POST /v1/backends/api-1/drain': [200, { id: 'api-1', drained: true }],
  'POST /v1/backends/api-1/undrain': [200, { id: 'api-1', drained: false }],
};

interface Recorded {
  method: string;
  path: string;
  auth: string | undefined;
  agent: string | undefined;
  body: string;
}

describe('spooky apply, rollback, status, dataplanes, backends, drain, undrain', () => {
  let dir: string;
  let server: Server;
  let url: string;
  let port: number;
  let configFile: string;
  let requests: Recorded[] = [];
  let overrides: Record<string, [number, unknown]> = {};

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'spooky-control-cli-'));
    const cert = generateSelfSigned(join(dir, 'certs'));
    configFile = join(dir, 'config.yaml');
    writeFileSync(
      configFile,
      `listen:\n  port: 8443\n  tls:\n    cert: ${cert.certFile}\n    key: ${cert.keyFile}\n` +
        'upstream:\n  api:\n    route: { path_prefix: "/" }\n    backends:\n      - id: api-1\n        address: "127.0.0.1:8080"\n',
    );
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const path = req.url ?? '';
        requests.push({
          method: req.method ?? '',
          path,
          auth: req.headers.authorization,
          agent: req.headers['user-agent'],
          body,
        });
        const key = `${req.method} ${path}`;
        const open = path === '/health' || path === '/ready';
        const [status, payload] =
          !open && req.headers.authorization !== `Bearer ${GOOD}`
            ? [401, { error: 'missing or wrong bearer token' }]
            : (overrides[key] ?? CANNED[key] ?? [404, { error: `no route ${key}` } satisfies ErrorBody]);
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (status === 401) headers['www-authenticate'] = 'Bearer';
        res.writeHead(status, headers).end(JSON.stringify(payload));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    url = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    requests = [];
    overrides = {};
  });

  /** Runs the CLI with a clean SPOOKY_* environment; the control API and token are passed unless `bare`. */
  function spooky(args: string[], opts: { env?: Record<string, string>; bare?: boolean } = {}) {
    const env: Record<string, string | undefined> = {
      ...process.env,
      SPOOKY_TOKEN: undefined,
      SPOOKY_CONTROL: undefined,
    };
    Object.assign(env, opts.env);
    const argv = opts.bare ? args : [...args, '--control', url, '--token', GOOD];
    const child = spawn(process.execPath, ['--input-type=module', '-e', ENTRY, '--', ...argv], { cwd: REPO, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
      child.on('close', (code) => resolve({ code, stdout, stderr })),
    );
  }

  function write(name: string, text: string): string {
    const file = join(dir, name);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    return file;
  }

  describe('connection', () => {
    it('takes the token from --token, SPOOKY_TOKEN, --token-file, the config, then control.state_dir', async () => {
      const bad = write('tokens/bad', 'wrong-token-from-file\n');
      const good = write('tokens/good', `${GOOD}\n`);
      write('secrets/api.token', GOOD);
      write('state/control.token', `${GOOD}\n`);
      const api = (line: string) => `observability:\n  control_api:\n    ${line}\n`;
      const cases: [string[], Record<string, string>][] = [
        [['--token', GOOD, '--token-file', bad], { SPOOKY_TOKEN: 'wrong-token-from-env' }],
        [['--token-file', bad], { SPOOKY_TOKEN: GOOD }],
        [['--token-file', good, '--config', write('bt.yaml', api('auth_token: wrong-token-in-config'))], {}],
        [['--config', write('at.yaml', api(`auth_token: ${GOOD}`))], {}],
        [['--config', write('atf.yaml', api('auth_token_file: secrets/api.token'))], {}],
        [['--config', write('sd.yaml', `control:\n  state_dir: ${join(dir, 'state')}\n`)], {}],
      ];
      for (const [args, env] of cases) {
        const r = await spooky(['backends', '--control', url, ...args], { env, bare: true });
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      }
      assert.equal(requests.length, cases.length);
      assert.ok(requests.every((q) => q.auth === `Bearer ${GOOD}`));
    });

    it('takes the URL from SPOOKY_CONTROL, else from the config (0.0.0.0 → 127.0.0.1)', async () => {
      let r = await spooky(['backends', '--token', GOOD], { env: { SPOOKY_CONTROL: url }, bare: true });
      assert.equal(r.code, 0, r.stderr);
      const cfg = write('url.yaml', `observability:\n  control_api:\n    address: 0.0.0.0\n    port: ${port}\n`);
      r = await spooky(['backends', '--token', GOOD, '--config', cfg], { bare: true });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(requests.length, 2);
    });

    it('names an unreadable token file and suggests --token, exit 1', async () => {
      const missing = join(dir, 'nope', 'control.token');
      const r = await spooky(['status', '--control', url, '--token-file', missing], { bare: true });
      assert.equal(r.code, 1);
      assert.equal(
        r.stderr,
        `spooky: cannot read the token file ${missing} (no such file); pass --token or set SPOOKY_TOKEN\n`,
      );
      assert.equal(requests.length, 0);
    });

    it('says the token was refused on 401, without printing it', async () => {
      const r = await spooky(['backends', '--control', url, '--token', 'wrong-token-00000000'], { bare: true });
      assert.equal(r.code, 1);
      assert.equal(r.stderr, 'spooky: the control API refused the token (401); pass --token or set SPOOKY_TOKEN\n');
      assert.doesNotMatch(r.stdout + r.stderr, /wrong-token/);
    });

    it('says when the control API cannot be reached', async () => {
      const closed = createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const dead = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
      await new Promise((r) => closed.close(r));
      const r = await spooky(['status', '--control', dead, '--token', GOOD], { bare: true });
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `spooky: cannot reach the control API at ${dead} (is spooky-control running?)\n`);
    });

    it('builds URLs from config addresses', () => {
      assert.equal(controlUrlFor('::', 9902), 'http://[::1]:9902');
      assert.equal(controlUrlFor('fd00::5', 9902), 'http://[fd00::5]:9902');
      assert.equal(controlUrlFor('0.0.0.0', 80), 'http://127.0.0.1:80');
    });
  });

  describe('apply and rollback', () => {
    it('validates, pushes and reports the ACKs', async () => {
      const r = await spooky(['apply', configFile]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        r.stderr,
        'validated: 2 listeners (h3 udp 0.0.0.0:8443, h1/h2 tcp 0.0.0.0:8443), 1 pool, 1 backend, policies: round-robin ×1\n' +
          'pushed: version 4\n2 of 2 data planes ACKed\n  dp-1: ACK\n  dp-2: ACK\n',
      );
      const post = requests.find((q) => q.path === '/v1/config');
      assert.equal(post?.method, 'POST');
      assert.match(post?.body ?? '', /path_prefix/);
      assert.match(post?.agent ?? '', /^spooky\/\d+\.\d+\.\d+/);
    });

    it('--no-file-checks: paths that exist only where spooky-control runs are left to it', async () => {
      const remote = join(dir, 'remote.yaml');
      writeFileSync(
        remote,
        'listen:\n  port: 8443\n  tls:\n    cert: /etc/spooky/fleet/not-here.crt\n    key: /etc/spooky/fleet/not-here.key\n' +
          'upstream:\n  api:\n    backends:\n      - id: api-1\n        address: "127.0.0.1:8080"\n',
      );
      const checked = await spooky(['apply', remote]);
      assert.equal(checked.code, 1);
      assert.match(checked.stderr, /not-here\.crt/);
      const r = await spooky(['apply', remote, '--no-file-checks']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /\npushed: version 4\n/);
    });

    it('with no data plane connected: a clear warning and exit 3, not success', async () => {
      overrides['POST /v1/config'] = [200, { version: 5, unchanged: false, dataplanes: [] }];
      const r = await spooky(['apply', configFile]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /\npushed: version 5\nwarning: no data plane is connected: version 5 is saved/);
      assert.doesNotMatch(r.stderr, /ACKed/);
      const j = await spooky(['apply', configFile, '--json']);
      assert.equal(j.code, 3);
      assert.equal(JSON.parse(j.stdout).version, 5);
      const allowed = await spooky(['apply', configFile, '--allow-empty']);
      assert.equal(allowed.code, 0, allowed.stderr);
      assert.match(allowed.stderr, /\nnote: no data plane is connected: version 5 is saved/);
      assert.equal((await spooky(['apply', configFile, '--allow-empty', '--json'])).code, 0);
    });

    it('a data plane that did not answer in time: every node reported, exit 4', async () => {
      const dataplanes = [ack('dp-1'), { node_id: 'dp-2', result: 'timeout' as const }];
      overrides['POST /v1/config'] = [200, { version: 6, unchanged: false, dataplanes }];
      const r = await spooky(['apply', configFile]);
      assert.equal(r.code, 4, r.stderr);
      assert.match(
        r.stderr,
        /\npushed: version 6\n1 of 2 data planes ACKed\n {2}dp-1: ACK\n {2}dp-2: no answer \(timeout\)\nwarning: 1 data plane did not confirm \(no answer in time, or disconnected during the push\): version 6 is current and reaches it when it answers or reconnects/,
      );
      assert.equal((await spooky(['apply', configFile, '--json'])).code, 4);
    });

    it('a known node that is away is reported as not connected; it does not count as served', async () => {
      const away = { node_id: 'edge-3', result: 'not_connected' as const };
      overrides['POST /v1/config'] = [200, { version: 7, unchanged: false, dataplanes: [ack('dp-1'), away] }];
      let r = await spooky(['apply', configFile]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        /\npushed: version 7\n1 of 1 data plane ACKed \(1 not connected\)\n {2}dp-1: ACK\n {2}edge-3: not connected \(gets it when it reconnects\)\n$/,
      );
      overrides['POST /v1/config'] = [200, { version: 8, unchanged: false, dataplanes: [away] }];
      r = await spooky(['apply', configFile]);
      assert.equal(r.code, 3, r.stderr);
      assert.match(r.stderr, /warning: no data plane is connected/);
    });

    it('reload: the applied config again with its files re-read, reported like apply', async () => {
      overrides['POST /v1/config/reload'] = [200, { version: 9, unchanged: false, dataplanes: [ack('dp-1')] }];
      let r = await spooky(['reload']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, 'pushed: version 9\n1 of 1 data plane ACKed\n  dp-1: ACK\n');
      assert.ok(requests.some((q) => q.method === 'POST' && q.path === '/v1/config/reload'));
      overrides['POST /v1/config/reload'] = [200, { version: 9, unchanged: true, dataplanes: [] }];
      r = await spooky(['reload']);
      assert.match(r.stderr, /unchanged: version 9 already applied/);
      overrides['POST /v1/config/reload'] = [409, { error: 'no config applied yet: nothing to reload' }];
      r = await spooky(['reload']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /no config applied yet: nothing to reload/);
    });

    it('says when the config is unchanged', async () => {
      overrides['POST /v1/config'] = [200, { version: 3, unchanged: true, dataplanes: [] }];
      const r = await spooky(['apply', configFile]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /\nunchanged: version 3 already applied\n$/);
    });

    it("prints the server's validation errors with file, line and column on 422", async () => {
      const errors = [
        { path: 'listen.port', line: 2, column: 9, message: 'expected a port' },
        { path: 'upstream.api', line: 7, column: 3, message: 'bad pool' },
      ];
      overrides['POST /v1/config'] = [422, { error: 'invalid config', errors }];
      const r = await spooky(['apply', configFile]);
      assert.equal(r.code, 1);
      const lines = r.stderr.trim().split('\n');
      assert.deepEqual(lines.slice(1), [
        `${configFile}:2:9: listen.port: expected a port`,
        `${configFile}:7:3: upstream.api: bad pool`,
        `${configFile}: 2 errors; nothing was applied`,
      ]);
    });

    it('prints every NACK on 409 and says the previous config stays active', async () => {
      const dataplanes = [
        ack('dp-1'),
        { node_id: 'dp-2', result: 'nack', error: 'listen.port changed', restart_required: true },
      ];
      overrides['POST /v1/config'] = [409, { error: 'a data plane rejected the config', dataplanes }];
      const r = await spooky(['apply', configFile]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /\ndp-2: NACK: listen\.port changed \(restart of spooky-dataplane required\)\n/);
      assert.match(r.stderr, /the previous config stays active\n$/);
      assert.doesNotMatch(r.stderr, /dp-1/);
    });

    it('--dry-run prints the diff, or "no changes"', async () => {
      let r = await spooky(['apply', configFile, '--dry-run']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '--- applied\n+++ new\n-  port: 443\n+  port: 8443\n');
      assert.deepEqual(
        requests.map((q) => `${q.method} ${q.path}`),
        ['POST /v1/config/validate'],
      );
      overrides['POST /v1/config/validate'] = [200, { ok: true, errors: [], warnings: [], diff: '' }];
      r = await spooky(['apply', configFile, '--dry-run']);
      assert.equal(r.stdout, 'no changes\n');
      const errors = [{ path: 'listen.tls.cert', line: 4, column: 5, message: 'no such file' }];
      overrides['POST /v1/config/validate'] = [200, { ok: false, errors, warnings: [], diff: '' }];
      r = await spooky(['apply', configFile, '--dry-run']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`${configFile}:4:5: listen\\.tls\\.cert: no such file\\n`));
    });

    it('--json prints the response body and keeps the exit codes', async () => {
      let r = await spooky(['apply', configFile, '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), CANNED['POST /v1/config'][1]);
      overrides['POST /v1/config'] = [409, { error: 'rejected', dataplanes: [{ node_id: 'x', result: 'timeout' }] }];
      r = await spooky(['apply', configFile, '--json']);
      assert.equal(r.code, 1);
      assert.equal(JSON.parse(r.stdout).dataplanes[0].result, 'timeout');
    });

    it('a missing file is a usage error (exit 2) and sends nothing', async () => {
      const r = await spooky(['apply', join(dir, 'missing.yaml')]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /missing\.yaml: no such file/);
      assert.equal(requests.length, 0);
    });

    it('a locally invalid config fails (exit 1) like spooky validate, without any request', async () => {
      const bad = write('bad.yaml', 'listen:\n  port: 99999\n');
      const r = await spooky(['apply', bad]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /bad\.yaml:2:3: listen\.port: expected an integer from 0 to 65535, got 99999\n/);
      assert.match(r.stderr, /nothing was applied\n$/);
      assert.equal(requests.length, 0);
    });

    it('rollback reports like apply', async () => {
      const r = await spooky(['rollback']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, 'pushed: version 2\n1 of 1 data plane ACKed\n  dp-1: ACK\n');
      assert.equal(requests[0].path, '/v1/config/rollback');
    });
  });

  describe('read commands and drain', () => {
    it('status summarises health, config, data planes and readiness', async () => {
      const r = await spooky(['status']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /^control API: up at http:\/\/127\.0\.0\.1:\d+ \(spooky-control 0\.1\.0, uptime 1h 2m\)\n/,
      );
      assert.match(r.stdout, /\nconfig: version 3, sha256 abcdef012345, applied .* by alice\n/);
      assert.match(r.stdout, /\ndata planes: 1 connected: dp-east-1 v3\n/);
      assert.match(
        r.stdout,
        /\noverload dp-east-1: adaptive admission limit 48, 40 in flight, 7 shed; brownout ACTIVE, 3 shed\nready: yes\n$/,
      );
    });

    it('status says when no config is applied and why it is not ready; --json is one object', async () => {
      overrides['GET /v1/config'] = [404, { error: 'no config applied' }];
      overrides['GET /ready'] = [503, { ready: false, reasons: ['no data plane connected'] }];
      let r = await spooky(['status']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /\nconfig: no config applied yet\n/);
      assert.match(r.stdout, /\nready: no \(no data plane connected\)\n$/);
      r = await spooky(['status', '--json']);
      const o = JSON.parse(r.stdout);
      assert.equal(o.config, null);
      assert.equal(o.ready.ready, false);
      assert.equal(o.health.version, '0.1.0');
      assert.equal(o.dataplanes.dataplanes[0].node_id, 'dp-east-1');
    });

    it('dataplanes and backends print tables; --json prints the bodies', async () => {
      let r = await spooky(['dataplanes']);
      assert.equal(r.code, 0, r.stderr);
      let lines = r.stdout.trim().split('\n');
      assert.match(lines[0], /^NODE\s+PID\s+VERSION\s+LAST ACK\s+LAST NACK\s+CONNS\s+REQ\/S$/);
      assert.match(lines[1], /^dp-east-1\s+4242\s+v3\s+v3 \d+s ago\s+-\s+17\s+123\.5$/);
      assert.match(lines[2], /^edge-2\s+-\s+v2\s+v2 \d+s ago\s+-\s+not connected since \d+s ago\s+-$/);
      r = await spooky(['backends']);
      lines = r.stdout.trim().split('\n');
      assert.match(lines[0], /^ID\s+POOL\s+STATE\s+SINCE\s+LAST PROBE\s+IN-FLIGHT\s+DRAINED$/);
      assert.match(lines[1], /^api-1\s+api\s+healthy\s+\d+s ago\s+ok 200 3ms \d+s ago\s+2\s+no$/);
      assert.match(lines[2], /^web-1\s+default\s+unhealthy\s+.*failed: connection refused 1ms.*\s+0\s+yes$/);
      r = await spooky(['backends', '--json']);
      assert.deepEqual(JSON.parse(r.stdout), CANNED['GET /v1/backends'][1]);
      r = await spooky(['dataplanes', '--json']);
      assert.deepEqual(JSON.parse(r.stdout), CANNED['GET /v1/dataplanes'][1]);
    });

    it('drain and undrain a backend; an unknown id is exit 1', async () => {
      let r = await spooky(['drain', 'api-1']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'drained api-1\n');
      r = await spooky(['undrain', 'api-1', '--json']);
      assert.deepEqual(JSON.parse(r.stdout), { id: 'api-1', drained: false });
      r = await spooky(['drain', 'nope']);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, 'spooky: no backend with id nope\n');
      assert.deepEqual(
        requests.map((q) => `${q.method} ${q.path}`),
        ['POST /v1/backends/api-1/drain', 'POST /v1/backends/api-1/undrain', 'POST /v1/backends/nope/drain'],
      );
    });

    it('a missing argument is a usage error (exit 2)', async () => {
      const r = await spooky(['drain']);
      assert.equal(r.code, 2);
    });

    it('table() aligns columns', () => {
      assert.equal(
        table([
          ['A', 'BB', 'C'],
          ['long', 'x', 'y'],
        ]),
        'A     BB  C\nlong  x   y',
      );
    });
  });
});

describe('configDefaults', () => {
  it('resolves a relative state_dir and token file against the config file, not the working directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spooky-defaults-'));
    try {
      const file = join(dir, 'spooky.yaml');
      writeFileSync(
        file,
        'control: { state_dir: dev-state }\nobservability: { control_api: { auth_token_file: t.token } }\n',
      );
      const d = configDefaults(file);
      assert.equal(d.stateDir, join(dir, 'dev-state'));
      assert.equal(d.tokenFile, join(dir, 't.token'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
