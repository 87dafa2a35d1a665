/**
 * Logs do what the config says (issue #13, item 10), against the real processes: a JSON access
 * line names its component once (parsed strictly, so a repeated key fails), the data plane's
 * host warnings obey `log.level`, an applied `log.level` reaches the access log, and a `log.file`
 * in a missing directory is refused by `spooky validate` and by both daemons with a clear message.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { DAEMON_NODE_FLAGS } from '../lib/daemon-flags.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { DIST, type RunningControl, run, startControl, startDataplane, tempDir } from './support/harness.js';
import { config, newSetup, onlyPool, type Setup, spooky } from './support/pair.js';
import { parseStrictJson } from './support/strict-json.js';

const CLI = join(DIST, 'cli', 'main.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 100 ms, at most `tries` times; true once it holds. */
async function eventually(check: () => boolean | Promise<boolean>, tries = 100): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true;
    await sleep(100);
  }
  return check();
}

/** JSON log lines of `out`, each parsed strictly (a duplicate key throws, naming it). */
function strictLines(out: string): Array<Record<string, unknown>> {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => parseStrictJson(l) as Record<string, unknown>);
}

async function get(port: number, path: string): Promise<number> {
  const client = await H3ClientSession.connect('127.0.0.1', port, { insecure: true, serverName: 'localhost' });
  try {
    return (await client.fetch({ path, authority: 'only.example' })).status;
  } finally {
    await client.close();
  }
}

/**
 * spooky-dataplane on `file` with an open-file limit of 4096 (below 65536: a host warning). Soft
 * and hard: Node.js raises its soft limit to the hard one at start.
 */
function dataplaneWithLowNofile(file: string) {
  const main = join(DIST, 'dataplane', 'main.js');
  const proc: ChildProcess = spawn(
    'bash',
    // One process (--workers 1): the test follows it by pid.
    [
      '-c',
      'ulimit -n 4096 && exec "$0" "$@"',
      process.execPath,
      ...DAEMON_NODE_FLAGS,
      main,
      '--config',
      file,
      '--workers',
      '1',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout?.on('data', (d) => (out += d));
  proc.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    /** bash execs node: the data plane's own pid. */
    pid: proc.pid,
    out: () => out,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

describe('logs', () => {
  let backend: DemoBackend;
  let s: Setup;
  let cp: RunningControl;
  const cleanups: Array<() => Promise<unknown>> = [];

  before(async () => {
    backend = await startDemoBackend('a');
    s = newSetup();
    writeFileSync(s.file, config(s, onlyPool(backend.origin), { accessLog: true }));
    cp = await startControl(s.file);
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await cp?.stop();
    await backend?.close();
  });

  it('names the component of a JSON access line once, and follows an applied log.level', async () => {
    const dp = await startDataplane(config(s, onlyPool(backend.origin), { accessLog: true }), {
      file: join(s.dir, 'dataplane.yaml'),
    });
    cleanups.push(() => dp.stop());
    let out = '';
    dp.proc.stdout?.on('data', (d) => (out += d));
    assert.equal(await get(dp.port, '/first'), 200);
    const isAccess = (o: Record<string, unknown>, path: string) => o.path === path && o.status === 200;
    assert.ok(await eventually(() => strictLines(out).some((o) => isAccess(o, '/first'))), out);
    const line = strictLines(out).find((o) => isAccess(o, '/first'));
    assert.equal(line?.component, 'access');

    // log.level warn, applied live: the access logger (info lines) goes quiet with the rest.
    const quiet = join(s.dir, 'quiet.yaml');
    writeFileSync(
      quiet,
      config(s, onlyPool(backend.origin), { accessLog: true }).replace('level: info', 'level: warn'),
    );
    const applied = await spooky(s, cp, 'apply', quiet);
    assert.equal(applied.code, 0, applied.stderr);
    // apply returns once every data plane ACKed: the new level is in force.
    assert.equal(await get(dp.port, '/second'), 200);
    await sleep(500);
    assert.ok(!strictLines(out).some((o) => o.path === '/second'), `an access line at log.level warn:\n${out}`);
    const back = await spooky(s, cp, 'apply', s.file);
    assert.equal(back.code, 0, back.stderr);
  });

  it('writes host warnings only when log.level lets them through', async () => {
    // log.level info: the open-file warning is there (this host and limit do produce it).
    const loud = dataplaneWithLowNofile(s.file);
    cleanups.push(() => loud.stop());
    assert.ok(await eventually(() => loud.out().includes('"msg":"listening"')), loud.out());
    assert.ok(
      strictLines(loud.out()).some((o) => o.check === 'nofile' && o.level === 40),
      `no open-file warning at level info:\n${loud.out()}`,
    );
    await loud.stop();

    // log.level error, the same host and limit: nothing below error, from the first line on.
    const file = join(s.dir, 'errors-only.yaml');
    // Its own state_dir: a cached snapshot (the control plane's, log.level info) would win.
    const text = config(s, onlyPool(backend.origin))
      .replace('level: info', 'level: error')
      .replace(`state_dir: ${join(s.dir, 'state')}`, `state_dir: ${tempDir('spooky-state-')}`);
    assert.ok(text.includes('spooky-state-'));
    writeFileSync(file, text);
    const dp = dataplaneWithLowNofile(file);
    cleanups.push(() => dp.stop());
    // Connected to the control plane: start-up (and its warnings) is over.
    const connected = async () => {
      const r = await spooky(s, cp, 'dataplanes', '--json');
      if (r.code !== 0) return false;
      return (JSON.parse(r.stdout) as { dataplanes: Array<{ pid: number }> }).dataplanes.some((d) => d.pid === dp.pid);
    };
    assert.ok(await eventually(connected, 50), 'the data plane did not connect');
    // Until the control plane's snapshot (log.level info) is applied, only errors may appear.
    const lines = strictLines(dp.out());
    const applied = lines.findIndex((o) => o.msg === 'snapshot applied');
    const startup = applied < 0 ? lines : lines.slice(0, applied);
    assert.deepEqual(
      startup.filter((o) => Number(o.level) < 50),
      [],
      'lines below log.level error',
    );
    await dp.stop();
  });

  it('refuses a log.file in a missing directory in validate and in both daemons, without a stack', async () => {
    const dir = tempDir('spooky-logfile-');
    const missing = join(dir, 'no-such-dir');
    const file = join(dir, 'spooky.yaml');
    writeFileSync(
      file,
      config(s, onlyPool(backend.origin)).replace(
        'log: { level: info, format: json, access_log: false }',
        `log: { level: info, format: json, access_log: false, file: { path: ${join(missing, 'spooky.log')} } }`,
      ),
    );
    const validate = await run(process.execPath, [CLI, 'validate', file]);
    assert.notEqual(validate.code, 0, `validate accepted it:\n${validate.stdout}${validate.stderr}`);
    assert.match(
      validate.stdout + validate.stderr,
      new RegExp(`log\\.file\\.path.*directory ${missing} does not exist`, 's'),
    );
    for (const main of ['controlplane/main.js', 'dataplane/main.js']) {
      const r = await run(process.execPath, [...DAEMON_NODE_FLAGS, join(DIST, main), '--config', file], 20_000);
      assert.equal(r.code, 1, `${main}: exit ${r.code}\n${r.stdout}${r.stderr}`);
      assert.match(r.stderr, new RegExp(`directory ${missing} does not exist`), main);
      assert.doesNotMatch(r.stderr, /^\s+at /m, `${main} printed a stack:\n${r.stderr}`);
    }
  });
});
