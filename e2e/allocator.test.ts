/**
 * The data plane's C allocator (lib/allocator.ts): it replaces itself once with a process on
 * jemalloc (same pid, so systemd and the tests keep tracking it), its workers inherit that, it
 * serves requests there, and SPOOKY_ALLOCATOR is obeyed or refused with a clear error.
 * CI installs libjemalloc2 (scripts/install-test-deps.sh), so a missing library fails here
 * rather than skipping.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { allocatorInUse, JEMALLOC_PATHS } from '../lib/allocator.js';
import { startDemoBackend } from '../lib/demo-backend.js';
import {
  DIST,
  dataplaneConfig,
  type RunningDataplane,
  run,
  startDataplane,
  tempDir,
  until,
} from './support/harness.js';

const mapsOf = (pid: number) => allocatorInUse(readFileSync(`/proc/${pid}/maps`, 'utf8'));

function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map(Number);
  } catch {
    return [];
  }
}

/** The environment without any allocator choice of the machine running the tests. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['SPOOKY_ALLOCATOR', 'SPOOKY_ALLOCATOR_CHOSEN', 'LD_PRELOAD', 'MALLOC_CONF']) delete env[k];
  return { ...env, ...extra };
}

describe('data plane allocator', () => {
  it('runs itself and its workers on jemalloc, with the pid it was started as, and proxies', async () => {
    const backend = await startDemoBackend('jemalloc');
    let dp: RunningDataplane | undefined;
    try {
      dp = await startDataplane(
        dataplaneConfig(`  web:\n    backends:\n      - { id: w, address: "${backend.origin}" }\n`),
        { env: cleanEnv(), args: ['--workers', '2'] },
      );
      const pid = dp.proc.pid as number;
      assert.equal(mapsOf(pid), 'jemalloc', 'the started pid itself was replaced, not a child spawned');
      const workers = childrenOf(pid);
      assert.equal(workers.length, 2);
      for (const w of workers) assert.equal(mapsOf(w), 'jemalloc', `worker ${w}`);
      const environ = readFileSync(`/proc/${workers[0]}/environ`, 'latin1').split('\0');
      assert.ok(environ.includes('MALLOC_CONF=narenas:2,dirty_decay_ms:1000'), 'Spooky sets jemalloc up');
      const logs = dp.logs;
      const listening = await until(
        10_000,
        async () => logs.find((o) => o.msg === 'workers listening'),
        (o) => o !== undefined,
      );
      assert.equal(listening?.allocator, 'jemalloc');
      assert.ok(logs.filter((o) => o.msg === 'listening').every((o) => o.allocator === 'jemalloc'));
      assert.ok(!dp.logs.some((o) => o.check === 'allocator'), 'no allocator warning');
      const c = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
      try {
        for (let i = 0; i < 20; i++) {
          const body = Buffer.alloc(200_000, i);
          const r = await c.fetch({ method: 'POST', path: '/echo', authority: 'localhost', body });
          assert.equal(r.status, 200);
          assert.ok(Buffer.from(r.body).equals(body), `echo ${i}`);
        }
      } finally {
        await c.close();
      }
    } finally {
      await dp?.stop();
      await backend.close();
    }
  });

  it('stays on glibc with SPOOKY_ALLOCATOR=system, and says which it runs on', async () => {
    const dp = await startDataplane(
      dataplaneConfig(`  web:\n    backends:\n      - { id: w, address: "http://127.0.0.1:1" }\n`),
      { env: cleanEnv({ SPOOKY_ALLOCATOR: 'system' }), args: ['--workers', '1'] },
    );
    try {
      assert.equal(mapsOf(dp.proc.pid as number), 'glibc');
      assert.equal(dp.logs.find((o) => o.msg === 'listening')?.allocator, 'glibc');
      assert.ok(!dp.logs.some((o) => o.check === 'allocator'), 'a chosen glibc is not warned about');
    } finally {
      await dp.stop();
    }
  });

  it("leaves an operator's LD_PRELOAD alone with a warning, and refuses what it cannot do", async () => {
    const libc = '/lib/x86_64-linux-gnu/libc.so.6';
    const config = dataplaneConfig(`  web:\n    backends:\n      - { id: w, address: "http://127.0.0.1:1" }\n`);
    const dp = await startDataplane(config, { env: cleanEnv({ LD_PRELOAD: libc }), args: ['--workers', '1'] });
    try {
      assert.equal(mapsOf(dp.proc.pid as number), 'glibc');
      const warning = dp.logs.find((o) => o.check === 'allocator');
      assert.match(String(warning?.msg), /glibc's malloc, not jemalloc: LD_PRELOAD is set/);
    } finally {
      await dp.stop();
    }
    const file = join(tempDir(), 'spooky.yaml');
    writeFileSync(file, config);
    const main = join(DIST, 'dataplane/main.js');
    const bogus = await run(
      process.execPath,
      [main, '--config', file],
      15000,
      cleanEnv({ SPOOKY_ALLOCATOR: 'tcmalloc' }),
    );
    assert.equal(bogus.code, 2);
    assert.match(bogus.stderr, /SPOOKY_ALLOCATOR=tcmalloc: expected auto, jemalloc or system/);
    const forced = await run(
      process.execPath,
      [main, '--config', file],
      15000,
      cleanEnv({ SPOOKY_ALLOCATOR: 'jemalloc', LD_PRELOAD: libc }),
    );
    assert.equal(forced.code, 2);
    assert.match(forced.stderr, /SPOOKY_ALLOCATOR=jemalloc, but LD_PRELOAD is set/);
    assert.doesNotMatch(forced.stdout, /listening/);
  });

  it('finds the library this machine has', () => {
    assert.ok(
      JEMALLOC_PATHS.some((p) => {
        try {
          return readFileSync(p).length > 0;
        } catch {
          return false;
        }
      }),
      'libjemalloc2 is installed (scripts/install-test-deps.sh)',
    );
  });
});
