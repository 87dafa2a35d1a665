import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createH2Server, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generateSelfSigned } from './certs.js';
import { readDoctorConfig } from './doctor.js';
import {
  type CheckResult,
  checkAllocator,
  checkHealthEndpoints,
  checkKernel,
  checkKeyPermissions,
  checkNode,
  checkNofile,
  checkPlatform,
  checkQuicStack,
  checkRollback,
  checkTlsExpiry,
  checkTlsTrusted,
  doctorEnv,
  systemTrustStore,
} from './doctor-checks.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '../..');
const DOCTOR_JS = join(HERE, 'doctor.js');
const ENTRY = `import {Command} from 'commander'; import {registerDoctorCommand} from ${JSON.stringify(DOCTOR_JS)};
const p = new Command('spooky').option('-c, --config <file>').exitOverride(); registerDoctorCommand(p);
p.parseAsync(process.argv.slice(1), { from: 'user' }).catch((e) => process.exit(e.exitCode === 0 ? 0 : 2));`;
const IDS = [
  'tls-trusted',
  'tls-expiry',
  'key-permissions',
  'config-valid',
  'health-endpoints',
  'control-api-loopback',
  'metrics-endpoint',
  'rollback',
  'rmem',
  'nofile',
  'kernel',
  'platform',
  'node',
  'quic-stack',
  'allocator',
];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI in a child process (asynchronously: the backend and metrics servers live in this one). */
function doctor(...args: string[]): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', ENTRY, '--', 'doctor', ...args], { cwd: REPO });
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

async function doctorJson(...args: string[]): Promise<{ run: Run; checks: CheckResult[] }> {
  const run = await doctor(...args, '--json');
  const body = JSON.parse(run.stdout) as { ok: boolean; checks: CheckResult[] };
  assert.equal(body.ok, run.code === 0, run.stdout);
  return { run, checks: body.checks };
}

const failed = (checks: CheckResult[]) => checks.filter((c) => c.status === 'fail').map((c) => c.id);
const byId = (checks: CheckResult[], id: string) => checks.find((c) => c.id === id)!;

function listen(server: Server | Http2Server): Promise<number> {
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done((server.address() as AddressInfo).port)));
}

function writeFiles(root: string, files: Record<string, string>): string {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, name)), { recursive: true });
    writeFileSync(join(root, name), text);
  }
  return root;
}

const limits = (soft: string) =>
  'Limit                     Soft Limit           Hard Limit           Units     \n' +
  'Max processes             96365                96365                processes \n' +
  `Max open files            ${soft.padEnd(20)} 1048576              files     \n`;

function fakeProc(root: string, over: Record<string, string> = {}): string {
  return writeFiles(root, {
    'sys/net/core/rmem_max': '67108864\n',
    'sys/net/core/rmem_default': '16777216\n',
    'sys/kernel/osrelease': '6.1.0-21-amd64\n',
    'sys/kernel/ostype': 'Linux\n',
    'sys/kernel/arch': 'x86_64\n',
    'self/limits': limits('1048576'),
    ...over,
  });
}

describe('spooky doctor', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'spooky-doctor-'));
  const servers: Array<Server | Http2Server> = [];
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const proc = fakeProc(join(tmp, 'proc'));
  const etc = writeFiles(join(tmp, 'etc'), {
    passwd: `root:x:${uid}:${gid}:root:/root:/bin/sh\n`,
    group: `root:x:${gid + 1}:\nspooky:x:${gid}:\n`,
  });
  const stateDir = writeFiles(join(tmp, 'state'), { 'config/previous.yaml': 'version: 1\n' });
  const ca = join(tmp, 'ca');
  let http1Port = 0;
  let h2Port = 0;
  let metricsPort = 0;
  let closedPort = 0;

  function config(name: string, o: { cert?: string; key?: string; control?: string; metrics?: number } = {}): string {
    const yaml = `version: 1
listen:
  address: 127.0.0.1
  port: 0
  tls:
    cert: ${o.cert ?? join(ca, 'fullchain.pem')}
    key: ${o.key ?? join(ca, 'leaf.key')}
upstream:
  default:
    backends:
      - id: web-1
        address: http://127.0.0.1:${http1Port}
        protocol: http1
        health_check:
          path: /health
      - id: web-2
        address: http://127.0.0.1:${h2Port}
        health_check:
          path: /health
observability:
  control_api:
    address: ${o.control ?? '127.0.0.1'}
  metrics:
    address: 127.0.0.1
    port: ${o.metrics ?? metricsPort}
    path: /metrics
control:
  state_dir: ${stateDir}
`;
    writeFiles(tmp, { [name]: yaml });
    return join(tmp, name);
  }
  // The test CA stands for a public one: trusted through --ca-file (the tests below go without).
  const hostArgs = (procRoot = proc) => ['--proc-root', procRoot, '--etc-root', etc, '--ca-file', join(ca, 'ca.pem')];

  before(async () => {
    const openssl = (...args: string[]) =>
      execFileSync('openssl', args, { cwd: ca, stdio: ['ignore', 'ignore', 'pipe'] });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    writeFiles(ca, { 'ext.cnf': 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' });
    openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30', '-subj', '/CN=Spooky Test CA');
    openssl('req', '-new', ...ec, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=localhost');
    openssl(
      ...['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '2', '-days', '30'],
      ...['-extfile', 'ext.cnf', '-out', 'leaf.pem'],
    );
    const read = (f: string) => readFileSync(join(ca, f), 'utf8');
    writeFiles(ca, { 'fullchain.pem': read('leaf.pem') + read('ca.pem'), 'leaf-0644.key': read('leaf.key') });
    // Same issuer name as the test CA, another key: only a signature check tells them apart.
    openssl(
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'fake-ca.key',
      '-out',
      'fake-ca.pem',
      '-days',
      '30',
      '-subj',
      '/CN=Spooky Test CA',
    );
    openssl(
      ...['x509', '-req', '-in', 'leaf.csr', '-CA', 'fake-ca.pem', '-CAkey', 'fake-ca.key', '-set_serial', '3'],
      ...['-days', '30', '-extfile', 'ext.cnf', '-out', 'forged.pem'],
    );
    chmodSync(join(ca, 'leaf.key'), 0o640);
    chmodSync(join(ca, 'leaf-0644.key'), 0o644);
    const self = generateSelfSigned(join(tmp, 'self'));
    chmodSync(self.keyFile, 0o640);

    const health = (path: string | undefined) => (path === '/health' ? 200 : 404);
    const http1 = createServer((req, res) => res.writeHead(health(req.url)).end('ok'));
    const h2 = createH2Server((req, res) => res.writeHead(health(req.url)).end('ok'));
    const metrics = createServer((req, res) => {
      if (req.url !== '/metrics') return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end('# HELP spooky_dataplanes_connected Connected data planes.\n# TYPE spooky_dataplanes_connected gauge\n');
    });
    const closed = createServer();
    servers.push(http1, h2, metrics);
    [http1Port, h2Port, metricsPort, closedPort] = await Promise.all([http1, h2, metrics, closed].map(listen));
    await new Promise((done) => closed.close(done));
  });

  after(async () => {
    await Promise.all(servers.map((s) => new Promise((done) => s.close(done))));
    rmSync(tmp, { recursive: true, force: true });
  });

  test('a production-ready setup passes every check and exits 0', async () => {
    const file = config('good.yaml');
    const { run, checks } = await doctorJson('--config', file, ...hostArgs());
    assert.deepEqual(
      checks.map((c) => c.id),
      IDS,
    );
    // The bundled quiche 0.18 has published advisories: a warning, not a failure.
    for (const c of checks) assert.equal(c.status, c.id === 'quic-stack' ? 'warn' : 'pass', `${c.id}: ${c.detail}`);
    assert.match(
      byId(checks, 'quic-stack').detail,
      /^quiche 0\.18\.0 \(@matrixai\/quic 2\.0\.9\): CVE-2023-6193 .*CVE-2024-1410 .*CVE-2024-1765 /,
    );
    assert.equal(run.code, 0);
    assert.match(byId(checks, 'tls-trusted').detail, /issued by Spooky Test CA/);
    assert.match(byId(checks, 'health-endpoints').detail, /web-1 http:\/\/127\.0\.0\.1:\d+\/health 200; web-2 /);

    const human = await doctor('--config', file, ...hostArgs());
    assert.equal(human.code, 0, human.stdout + human.stderr);
    assert.match(
      human.stdout,
      /^PASS {2}TLS certificate from a trusted CA — localhost issued by Spooky Test CA, trusted via Spooky Test CA$/m,
    );
    assert.doesNotMatch(human.stdout, /^FAIL /m);
    assert.match(human.stdout, /^WARN {2}QUIC engine without known advisories — quiche 0\.18\.0 /m);
    assert.match(human.stdout, /^15 checks: 14 pass, 1 warn, 0 fail$/m);
  });

  test('trusted CA: the chain is verified against the trust store, not only for a self-signed leaf', async () => {
    const system = doctorEnv();
    const trusted = (cert: string, env = system) =>
      checkTlsTrusted(readDoctorConfig(config('t.yaml', { cert }), env), env);
    const self = trusted(selfSigned().cert);
    assert.equal(self.status, 'fail');
    assert.match(self.detail, /localhost is self-signed; HTTP\/3 clients reject it/);
    // A private CA that no client trusts: signed, but not by anyone a browser knows.
    const privateCa = trusted(join(ca, 'fullchain.pem'));
    assert.equal(privateCa.status, 'fail', privateCa.detail);
    assert.match(privateCa.detail, /the chain ends at Spooky Test CA, a CA this host's trust store does not have/);
    assert.match(privateCa.fix, /--ca-file/);
    const leafOnly = trusted(join(ca, 'leaf.pem'));
    assert.equal(leafOnly.status, 'fail');
    assert.match(
      leafOnly.detail,
      /localhost is issued by Spooky Test CA, which is neither in the file nor a trusted CA/,
    );
    assert.match(leafOnly.fix, /fullchain\.pem/);
    // Trusted once the CA is in the store, with or without the root in the served chain.
    const withCa = doctorEnv({ trustedCas: () => [...systemTrustStore(), readFileSync(join(ca, 'ca.pem'), 'utf8')] });
    assert.equal(trusted(join(ca, 'fullchain.pem'), withCa).status, 'pass');
    assert.equal(trusted(join(ca, 'leaf.pem'), withCa).status, 'pass');
    // A certificate that names the CA as issuer but is signed by another key is not trusted.
    assert.equal(trusted(join(ca, 'forged.pem'), withCa).status, 'fail');
    // The CA added the way Node adds one for every client, NODE_EXTRA_CA_CERTS, counts as trusted.
    const viaEnv = await new Promise<Run>((done, fail) => {
      const args = ['--input-type=module', '-e', ENTRY, '--', 'doctor', '--config', config('t.yaml'), '--json'];
      const env = { ...process.env, NODE_EXTRA_CA_CERTS: join(ca, 'ca.pem') };
      const child = spawn(process.execPath, args, { cwd: REPO, env });
      let [stdout, stderr] = ['', ''];
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', fail);
      child.on('close', (code) => done({ code, stdout, stderr }));
    });
    const viaEnvCheck = byId(JSON.parse(viaEnv.stdout).checks, 'tls-trusted');
    assert.equal(viaEnvCheck.status, 'pass', viaEnvCheck.detail);
  });

  test('-c, which the root program takes, names the config too', async () => {
    const { run, checks } = await doctorJson('-c', config('good.yaml'), ...hostArgs());
    assert.equal(run.code, 0, JSON.stringify(failed(checks)));
  });

  const bad: Array<[string, () => [string, string?], string[], RegExp]> = [
    ['a self-signed certificate', () => [config('self.yaml', selfSigned())], ['tls-trusted'], /certbot/],
    [
      'a key readable by every user (0644)',
      () => [config('k.yaml', { key: join(ca, 'leaf-0644.key') })],
      ['key-permissions'],
      /chmod 640 .*leaf-0644\.key/,
    ],
    [
      'the control API on 0.0.0.0 without a token',
      () => [config('c.yaml', { control: '0.0.0.0' })],
      ['config-valid', 'control-api-loopback'],
      /control_api\.address: 127\.0\.0\.1/,
    ],
    [
      'the metrics endpoint down',
      () => [config('m.yaml', { metrics: closedPort })],
      ['metrics-endpoint'],
      /systemctl status spooky-control/,
    ],
    [
      'rmem_max low',
      () => [config('good.yaml'), fakeProc(join(tmp, 'proc-low'), { 'sys/net/core/rmem_max': '212992\n' })],
      ['rmem'],
      /sysctl -w net\.core\.rmem_max=67108864.*99-spooky\.conf/,
    ],
  ];
  function selfSigned() {
    return { cert: join(tmp, 'self', 'cert.pem'), key: join(tmp, 'self', 'key.pem') };
  }
  for (const [name, setup, ids, fix] of bad) {
    test(`fails on ${name}`, async () => {
      const [file, procRoot] = setup();
      const { run, checks } = await doctorJson('--config', file, ...hostArgs(procRoot));
      assert.equal(run.code, 1);
      assert.deepEqual(failed(checks), ids, JSON.stringify(checks, null, 2));
      const last = byId(checks, ids[ids.length - 1]);
      assert.match(last.fix, fix);
      const human = await doctor('--config', file, ...hostArgs(procRoot));
      assert.equal(human.code, 1);
      assert.ok(human.stdout.includes(`FAIL  ${last.title} — ${last.detail}\n      fix: ${last.fix}\n`), human.stdout);
    });
  }

  test('fails on a Node.js below 24, with the command that provisions one', async () => {
    const { run, checks } = await doctorJson(
      '--config',
      config('good.yaml'),
      ...hostArgs(),
      '--node-version',
      '20.20.2',
    );
    assert.equal(run.code, 1);
    assert.deepEqual(failed(checks), ['node']);
    const node = byId(checks, 'node');
    assert.match(node.detail, /^Node\.js v20\.20\.2 \(.+\) is below 24/);
    assert.match(node.fix, /Node\.js 24 LTS or newer.*\. scripts\/use-node\.sh/);
    assert.equal(checkNode(doctorEnv({ nodeVersion: '24.0.0' })).status, 'pass');
    assert.equal(checkNode(doctorEnv({ nodeVersion: '26.10.0' })).status, 'pass');
    assert.equal(checkNode(doctorEnv({ nodeVersion: '22.12.0' })).status, 'fail');
  });

  test('the QUIC engine check: warns on the advisories of the bundled quiche, passes on a fixed one', () => {
    const bundled = checkQuicStack(doctorEnv());
    assert.equal(bundled.status, 'warn');
    assert.match(bundled.fix, /docs\/security\.md/);
    const fixed = { binding: '@matrixai/quic', bindingVersion: '9.9.9', quiche: '0.24.0', advisories: [] };
    assert.equal(checkQuicStack(doctorEnv({ quicStack: fixed })).status, 'pass');
    assert.equal(checkQuicStack(doctorEnv({ quicStack: { ...fixed, quiche: null } })).status, 'warn');
  });

  test('the allocator check: passes with libjemalloc.so.2 present, warns with the package to install', () => {
    const found = checkAllocator(doctorEnv({ fileExists: (p) => p === '/usr/lib64/libjemalloc.so.2' }));
    assert.equal(found.status, 'pass');
    assert.match(found.detail, /^\/usr\/lib64\/libjemalloc\.so\.2: the data plane runs on it/);
    const missing = checkAllocator(doctorEnv({ fileExists: () => false }));
    assert.equal(missing.status, 'warn');
    assert.match(missing.fix, /apt-get install libjemalloc2/);
  });

  test('the control API check reads the raw YAML when validation fails', async () => {
    const { checks } = await doctorJson('--config', config('c.yaml', { control: '0.0.0.0' }), ...hostArgs());
    assert.match(byId(checks, 'config-valid').fix, /^spooky validate /);
    assert.match(byId(checks, 'control-api-loopback').detail, /0\.0\.0\.0:9902 without a token/);
    assert.equal(byId(checks, 'health-endpoints').status, 'pass');
  });

  test('expiry: warn within 14 days, fail once expired', () => {
    const cfg = readDoctorConfig(config('good.yaml'), doctorEnv());
    // The check reports the first certificate of the chain to expire (the CA may be a second ahead).
    const validTo = Math.min(
      ...['leaf.pem', 'ca.pem'].map((f) => Date.parse(new X509Certificate(readFileSync(join(ca, f))).validTo)),
    );
    const soon = checkTlsExpiry(cfg, doctorEnv({ now: new Date(validTo - 5 * 86_400_000) }));
    assert.equal(soon.status, 'warn');
    assert.match(soon.detail, /in 5 days/);
    assert.equal(checkTlsExpiry(cfg, doctorEnv({ now: new Date(validTo + 1000) })).status, 'fail');
  });

  test('key owner other than root:spooky warns with chown', () => {
    const other = writeFiles(join(tmp, 'etc-other'), { passwd: `root:x:${uid + 1}:0::/:/bin/sh\n`, group: '' });
    const r = checkKeyPermissions(readDoctorConfig(config('good.yaml'), doctorEnv()), doctorEnv({ etcRoot: other }));
    assert.equal(r.status, 'warn');
    assert.match(r.fix, /groupadd --system spooky && chown root:spooky .*leaf\.key/);
  });

  test('health: a non-2xx answer fails naming backend and URL; no health_check warns', async () => {
    const file = writeFiles(tmp, {
      'h.yaml': readFileSync(config('good.yaml'), 'utf8')
        .replace('path: /health\n      - id: web-2', 'path: /missing\n      - id: web-2')
        .replace(/(id: web-2\n.*\n)\s+health_check:\n\s+path: \/health\n/, '$1'),
    });
    const r = await checkHealthEndpoints(readDoctorConfig(join(file, 'h.yaml'), doctorEnv()), doctorEnv());
    assert.equal(r.status, 'fail');
    assert.match(
      r.detail,
      new RegExp(`web-1 http://127.0.0.1:${http1Port}/missing answered 404; web-2: no health check`),
    );
  });

  test('host checks: nofile, kernel, platform, rollback', () => {
    const env = (over: Record<string, string>, name: string) =>
      doctorEnv({ procRoot: fakeProc(join(tmp, name), over), etcRoot: etc, prevBinary: join(tmp, 'none') });
    assert.equal(checkNofile(env({ 'self/limits': limits('65536') }, 'p1')).status, 'warn');
    assert.equal(checkNofile(env({ 'self/limits': limits('1024') }, 'p2')).status, 'fail');
    assert.match(checkNofile(env({ 'self/limits': limits('1024') }, 'p2')).fix, /LimitNOFILE|limits\.d\/spooky\.conf/);
    assert.equal(checkNofile(env({ 'self/limits': limits('unlimited') }, 'p3')).status, 'pass');
    assert.equal(checkKernel(env({ 'sys/kernel/osrelease': '4.19.0-26-amd64' }, 'p4')).status, 'fail');
    const arm = checkPlatform(env({ 'sys/kernel/arch': 'aarch64' }, 'p5'));
    assert.equal(arm.status, 'warn');
    assert.match(arm.detail, /@matrixai\/quic ships no linux-arm64 build/);
    const cfg = readDoctorConfig(config('good.yaml'), doctorEnv());
    const rollback = checkRollback({ ...cfg, stateDir: join(tmp, 'empty') }, env({}, 'p6'));
    assert.equal(rollback.status, 'warn');
  });
});
