/**
 * security.privileges for real: started as root on a port below 1024, the data plane binds,
 * drops to an unprivileged user and group (checked in /proc), and cannot go back; started as
 * that user on a low port without the capability, it fails with one clear line. Needs root
 * (CI runs as root); skipped otherwise.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { generateSelfSigned } from '../cli/certs.js';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { startDemoBackend } from '../lib/demo-backend.js';
import { DIST, run, startDataplane, tempDir } from './support/harness.js';

const USER = 'spooky-e2e';
const isRoot = process.getuid?.() === 0;

/** Whether `port` is free for both UDP and TCP on 127.0.0.1 right now. */
async function free(port: number): Promise<boolean> {
  const udp = await new Promise<boolean>((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
  if (!udp) return false;
  return new Promise<boolean>((resolve) => {
    const t = createServer();
    t.once('error', () => resolve(false));
    t.listen(port, '127.0.0.1', () => t.close(() => resolve(true)));
  });
}

/** A privileged port nobody uses now (the OS cannot pick one below 1024 for us). */
async function lowPort(): Promise<number> {
  for (let p = 700 + Math.floor(Math.random() * 200); p < 1024; p++) if (await free(p)) return p;
  throw new Error('no free port below 1024');
}

function ensureUser(): { uid: number; gid: number } {
  try {
    execFileSync('id', ['-u', USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['--system', '--no-create-home', '--user-group', '--shell', '/usr/sbin/nologin', USER]);
  }
  const uid = Number(execFileSync('id', ['-u', USER]).toString().trim());
  const gid = Number(execFileSync('id', ['-g', USER]).toString().trim());
  return { uid, gid };
}

function config(dir: string, port: number, backend: string, privileges: boolean, user = USER): string {
  const cert = generateSelfSigned(join(dir, 'certs'));
  return `listen:
  address: 127.0.0.1
  port: ${port}
  tls: { cert: ${cert.certFile}, key: ${cert.keyFile} }
upstream:
  web:
    backends: [{ id: w, address: "${backend}" }]
log: { level: info, format: json }
security:
  privileges: { enabled: ${privileges}, user: ${user}, group: ${user} }
observability: { control_api: { port: 0 }, metrics: { enabled: false } }
control: { socket: ${join(dir, 'run', 'control.sock')}, state_dir: ${join(dir, 'state')} }
`;
}

/** `spooky run --config file`, its JSON log lines collected from both daemons. */
function spookyRun(file: string): {
  proc: ChildProcess;
  lines: () => Array<Record<string, unknown>>;
  out: () => string;
} {
  const proc = spawn(process.execPath, [join(DIST, 'cli/main.js'), 'run', '--config', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d) => {
    out += d;
  });
  proc.stderr?.on('data', (d) => {
    out += d;
  });
  const lines = () =>
    out.split('\n').flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  return { proc, lines, out: () => out };
}

async function waitFor<T>(limitMs: number, get: () => T | undefined | Promise<T | undefined>): Promise<T | undefined> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await get();
    if (v !== undefined || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('privileges', { skip: isRoot ? false : 'needs root (CI runs as root)' }, () => {
  it('binds a port below 1024 as root, then runs as the configured user and group', async () => {
    const { uid, gid } = ensureUser();
    const backend = await startDemoBackend('priv');
    const dir = tempDir('spooky-priv-');
    const port = await lowPort();
    const dp = await startDataplane(config(dir, port, backend.origin, true));
    try {
      assert.equal(dp.port, port);
      // The drop follows the `listening` line by a moment.
      for (let i = 0; i < 50 && !dp.logs.some((o) => o.msg === 'privileges dropped'); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const dropped = dp.logs.find((o) => o.msg === 'privileges dropped');
      assert.ok(dropped, 'logs that it dropped privileges');
      const status = readFileSync(`/proc/${dp.proc.pid}/status`, 'utf8');
      const field = (name: string) =>
        status
          .match(new RegExp(`^${name}:[ \\t]*(.*)$`, 'm'))?.[1]
          .trim()
          .split(/\s+/)
          .filter((v) => v !== '') ?? [];
      // Real, effective, saved and filesystem ids: none is root any more.
      assert.deepEqual(field('Uid'), [uid, uid, uid, uid].map(String));
      assert.deepEqual(field('Gid'), [gid, gid, gid, gid].map(String));
      assert.deepEqual(field('Groups'), [], 'supplementary groups cleared');
      assert.equal(field('CapEff')[0], '0000000000000000', 'no capabilities left');
      // Still serving after the drop.
      const client = await H3ClientSession.connect('127.0.0.1', port, { insecure: true, serverName: 'localhost' });
      const res = await client.fetch({ path: '/', authority: 'localhost' });
      await client.close();
      assert.equal(res.status, 200);
    } finally {
      await dp.stop();
      await backend.close();
    }
  });

  it('spooky run as root: the dropped data plane reaches the control plane and ACKs an apply', async () => {
    ensureUser();
    const backend = await startDemoBackend('priv');
    const other = await startDemoBackend('priv2');
    const dir = tempDir('spooky-priv-');
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'run'), { mode: 0o700 }); // root only: the service user cannot reach the socket yet
    const port = await lowPort();
    const file = join(dir, 'spooky.yaml');
    writeFileSync(file, config(dir, port, backend.origin, true));
    const run1 = spookyRun(file);
    try {
      const api = await waitFor(
        15_000,
        () => run1.lines().find((o) => o.component === 'control' && o.msg === 'listening')?.api,
      );
      assert.ok(api, run1.out());
      const dropped = await waitFor(15_000, () => run1.lines().find((o) => o.msg === 'privileges dropped'));
      assert.ok(dropped, run1.out());
      // The socket belongs to the service account; its directory lets the group through.
      const sock = statSync(join(dir, 'run', 'control.sock'));
      const uid = Number(execFileSync('id', ['-u', USER]).toString());
      assert.equal(sock.uid, uid);
      assert.equal(statSync(join(dir, 'run')).mode & 0o010, 0o010);
      const cli = (...args: string[]) =>
        run(process.execPath, [
          join(DIST, 'cli/main.js'),
          ...args,
          '--control',
          `http://${String(api)}`,
          '--config',
          file,
        ]);
      // performance.workers is auto: one worker per core, each a data plane that dropped privileges.
      const workers = availableParallelism();
      const connected = await waitFor(15_000, async () => {
        const d = JSON.parse((await cli('dataplanes', '--json')).stdout);
        return d.dataplanes.length === workers ? d : undefined;
      });
      assert.ok(connected, `the data plane never connected: ${run1.out()}`);
      const next = join(dir, 'next.yaml');
      writeFileSync(next, readFileSync(file, 'utf8').replace(backend.origin, other.origin));
      const applied = await cli('apply', next);
      assert.equal(applied.code, 0, applied.stderr);
      assert.match(applied.stderr, new RegExp(`${workers} of ${workers} data planes? ACKed`));
      assert.equal((await fetch(`http://${String(api)}/ready`)).status, 200);
      const client = await H3ClientSession.connect('127.0.0.1', port, { insecure: true, serverName: 'localhost' });
      const res = await client.fetch({ path: '/', authority: 'localhost' });
      await client.close();
      assert.equal(JSON.parse(res.body.toString()).backend, 'priv2');
      assert.doesNotMatch(run1.out(), /control plane unreachable|cannot cache the snapshot/);
    } finally {
      run1.proc.kill('SIGTERM');
      const t = setTimeout(() => run1.proc.kill('SIGKILL'), 10_000);
      await new Promise((r) => run1.proc.once('exit', r));
      clearTimeout(t);
      await backend.close();
      await other.close();
    }
  });

  it('a missing socket directory or service user is named before anything is bound', async () => {
    ensureUser();
    const dir = tempDir('spooky-priv-');
    const port = await lowPort();
    const file = join(dir, 'spooky.yaml');
    writeFileSync(file, config(dir, port, 'http://127.0.0.1:1', true));
    // No `run` directory: spooky-control says so, in one line, without grpc-js's own.
    const control = await run(process.execPath, [join(DIST, 'controlplane/main.js'), '--config', file]);
    assert.equal(control.code, 1);
    assert.equal(
      control.stderr.trim(),
      `spooky-control: cannot listen on control.socket ${join(dir, 'run', 'control.sock')}: its directory ${join(dir, 'run')} does not exist; create it (systemd: RuntimeDirectory=spooky; deploy/install.sh does) or set control.socket to a path in an existing directory`,
    );
    assert.doesNotMatch(control.stdout, /listening/);
    // A user that does not exist: both daemons refuse before binding (no `listening` line).
    writeFileSync(file, config(dir, port, 'http://127.0.0.1:1', true, 'spooky-nobody-here'));
    for (const main of ['dataplane/main.js', 'controlplane/main.js']) {
      const r = await run(process.execPath, [join(DIST, main), '--config', file]);
      assert.equal(r.code, 1, r.stderr);
      assert.doesNotMatch(r.stdout, /listening/);
      assert.match(
        r.stderr,
        /security\.privileges: user spooky-nobody-here does not exist; create it \(useradd --system spooky-nobody-here\)/,
      );
    }
  });

  it('started unprivileged on a low port without the capability: one clear line, exit 1', async () => {
    ensureUser();
    const dir = tempDir('spooky-priv-');
    chmodSync(dir, 0o755);
    const port = await lowPort();
    const file = join(dir, 'spooky.yaml');
    writeFileSync(file, config(dir, port, 'http://127.0.0.1:1', false));
    // The user must read the config and certificate.
    execFileSync('chmod', ['-R', 'a+rX', dir]);
    const r = await run('setpriv', [
      `--reuid=${USER}`,
      `--regid=${USER}`,
      '--clear-groups',
      '--inh-caps=-all',
      '--bounding-set=-all',
      process.execPath,
      join(DIST, 'dataplane/main.js'),
      '--config',
      file,
    ]);
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.equal(
      lines[0],
      `spooky-dataplane: cannot start: permission denied binding 127.0.0.1:${port} (ports below 1024 need root or CAP_NET_BIND_SERVICE)`,
    );
  });
});
