/**
 * The control plane and the data plane agree, across applies and restarts (issue #13 items 5
 * and 8): a backend's health state is the same on both sides after its health_check changes,
 * and a version number never names two different configs, even when spooky-control is killed
 * during an apply.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import {
  type RunningControl,
  type RunningDataplane,
  sleep,
  startControl,
  startDaemon,
  until,
} from './support/harness.js';
import { config, newSetup, type Setup, spooky } from './support/pair.js';

async function get(port: number): Promise<{ status: number; backend?: string }> {
  const cl = await H3ClientSession.connect('127.0.0.1', port, { insecure: true, serverName: 'localhost' });
  try {
    const r = await cl.fetch({ path: '/x', authority: 'localhost' });
    return r.status === 200 ? { status: 200, backend: JSON.parse(r.body.toString()).backend } : { status: r.status };
  } finally {
    await cl.close();
  }
}

describe('control plane and data plane agree', () => {
  const backends: DemoBackend[] = [];
  const daemons: RunningDataplane[] = [];
  after(async () => {
    for (const d of daemons) {
      d.proc.kill('SIGCONT');
      await d.stop();
    }
    await Promise.all(backends.map((b) => b.close()));
  });

  async function pair(s: Setup): Promise<{ cp: RunningControl; dp: RunningDataplane }> {
    const cp = await startControl(s.file);
    daemons.push(cp);
    const dp = await startDaemon('dataplane/main.js', s.file);
    daemons.push(dp);
    return { cp, dp };
  }

  it('a fixed health_check brings an unhealthy backend back on both sides, never only on one', async () => {
    const backend = await startDemoBackend('h');
    backends.push(backend);
    const s = newSetup();
    const pool = (expected: number) =>
      `  web:\n    backends:\n      - id: h\n        address: "${backend.origin}"\n        health_check: { interval: 200, failure_threshold: 1, success_threshold: 1, cooldown_ms: 0, expected_status: ${expected} }\n`;
    writeFileSync(s.file, config(s, pool(418)));
    const { cp, dp } = await pair(s);
    const state = async () =>
      JSON.parse((await spooky(s, cp, 'backends', '--json')).stdout).backends[0].state as string;
    assert.equal(await until(5000, state, (v) => v === 'unhealthy'), 'unhealthy');
    assert.equal(
      (
        await until(
          5000,
          () => get(dp.port),
          (r) => r.status === 503,
        )
      ).status,
      503,
    );
    // The only pool has no healthy backend: not ready (operations.md), with the reason.
    const notReady = await fetch(`${cp.apiUrl}/ready`);
    assert.equal(notReady.status, 503);
    assert.deepEqual((await notReady.json()).reasons, ['pool web has no healthy backend in service (h unhealthy)']);

    const fixed = join(s.dir, 'fixed.yaml');
    writeFileSync(fixed, config(s, pool(200)));
    const applied = await spooky(s, cp, 'apply', fixed);
    assert.equal(applied.code, 0, applied.stderr);
    assert.equal(await until(5000, state, (v) => v === 'healthy'), 'healthy');
    // The control plane says healthy: the data plane must serve it (before the fix it kept
    // answering 503 no_healthy_backend until it restarted).
    const r = await until(
      3000,
      () => get(dp.port),
      (x) => x.status === 200,
    );
    assert.deepEqual(r, { status: 200, backend: 'h' });
    assert.equal((await fetch(`${cp.apiUrl}/ready`)).status, 200);
  });

  it('a restarted spooky-control replaces the health states a data plane holds, whatever their epoch', async () => {
    let backend = await startDemoBackend('r');
    const port = backend.port;
    const s = newSetup();
    writeFileSync(
      s.file,
      config(
        s,
        `  web:\n    backends:\n      - id: r\n        address: "${backend.origin}"\n        health_check: { interval: 200, failure_threshold: 1, success_threshold: 1, cooldown_ms: 0 }\n`,
      ),
    );
    let { cp, dp } = await pair(s);
    assert.equal(
      (
        await until(
          5000,
          () => get(dp.port),
          (r) => r.status === 200,
        )
      ).status,
      200,
    );
    await backend.close(); // down: unhealthy on both sides
    assert.equal(
      (
        await until(
          5000,
          () => get(dp.port),
          (r) => r.status === 503,
        )
      ).status,
      503,
    );
    cp.proc.kill('SIGKILL');
    await cp.exited;
    backend = await startDemoBackend('r', { port });
    backends.push(backend);
    cp = await startControl(s.file);
    daemons.push(cp);
    const state = async () =>
      JSON.parse((await spooky(s, cp, 'backends', '--json')).stdout).backends[0].state as string;
    assert.equal(await until(5000, state, (v) => v === 'healthy'), 'healthy');
    // The new control plane numbers its states from 1 again: the data plane must still take them.
    const r = await until(
      5000,
      () => get(dp.port),
      (x) => x.status === 200,
    );
    assert.deepEqual(r, { status: 200, backend: 'r' });
  });

  it('kill -9 of spooky-control during an apply: after its restart no version is reused', async () => {
    for (const name of ['a', 'b', 'c']) backends.push(await startDemoBackend(name));
    const origin = (name: string) => backends.find((b) => b.name === name)?.origin;
    const s = newSetup();
    const only = (name: string) => `  web:\n    backends: [{ id: ${name}, address: "${origin(name)}" }]\n`;
    writeFileSync(s.file, config(s, only('a')));
    let { cp, dp } = await pair(s);
    assert.equal(
      (
        await until(
          5000,
          () => get(dp.port),
          (r) => r.backend === 'a',
        )
      ).backend,
      'a',
    );

    // The data plane is frozen, so the apply waits for its ACK; the snapshot sits in its socket.
    const toB = join(s.dir, 'b.yaml');
    writeFileSync(toB, config(s, only('b')));
    dp.proc.kill('SIGSTOP');
    const token = readFileSync(join(s.dir, 'state', 'control.token'), 'utf8').trim();
    const post = () =>
      fetch(`${cp.apiUrl}/v1/config`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: readFileSync(toB, 'utf8'),
      });
    const pending = post().catch(() => null);
    // 409 busy: the first apply is past its synchronous part (validate, save, write to the socket).
    assert.equal(
      await until(
        5000,
        async () => (await post()).status,
        (st) => st === 409,
      ),
      409,
    );
    await sleep(300);
    cp.proc.kill('SIGKILL');
    await cp.exited;
    await pending;
    dp.proc.kill('SIGCONT');
    // It applied version 2 (b), which spooky-control never saved.
    assert.equal(
      (
        await until(
          5000,
          () => get(dp.port),
          (r) => r.backend === 'b',
        )
      ).backend,
      'b',
    );

    cp = await startControl(s.file);
    daemons.push(cp);
    const toC = join(s.dir, 'c.yaml');
    writeFileSync(toC, config(s, only('c')));
    // Wait for the data plane to be back.
    await until(
      10_000,
      async () => JSON.parse((await spooky(s, cp, 'dataplanes', '--json')).stdout).dataplanes.length,
      (n) => n === 1,
    );
    const r = await spooky(s, cp, 'apply', toC, '--json');
    assert.equal(r.code, 0, r.stderr);
    const version = JSON.parse(r.stdout).version as number;
    assert.ok(version > 2, `the next apply must not reuse version 2 (it named b's config), got ${version}`);
    assert.equal(
      (
        await until(
          5000,
          () => get(dp.port),
          (x) => x.backend === 'c',
        )
      ).backend,
      'c',
    );
    const dps = JSON.parse((await spooky(s, cp, 'dataplanes', '--json')).stdout);
    assert.equal(dps.dataplanes[0].served_version, version);
    assert.equal(dps.current_version, version);
  });
});
