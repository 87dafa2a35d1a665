/**
 * security.privileges for real: started as root on a port below 1024, the data plane binds,
 * drops to an unprivileged user and group (checked in /proc), and cannot go back; started as
 * that user on a low port without the capability, it fails with one clear line. Needs root
 * (CI runs as root); skipped otherwise.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
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

function config(dir: string, port: number, backend: string, privileges: boolean): string {
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
  privileges: { enabled: ${privileges}, user: ${USER}, group: ${USER} }
control: { socket: ${join(dir, 'none.sock')}, state_dir: ${join(dir, 'state')} }
`;
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
