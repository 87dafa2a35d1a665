import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  ALLOCATOR_DONE_ENV,
  type AllocatorHost,
  allocatorInUse,
  allocatorWarning,
  JEMALLOC_CONF,
  JEMALLOC_PATHS,
  planAllocator,
  secureExecution,
} from './allocator.js';

const DEBIAN = JEMALLOC_PATHS[0] as string;
const host = (o: Partial<AllocatorHost> = {}): AllocatorHost => ({
  exists: (p) => p === DEBIAN,
  onJemalloc: false,
  secureExec: false,
  ...o,
});
const none = host({ exists: () => false });

describe('planAllocator', () => {
  it('replaces the process with jemalloc preloaded and configured, once', () => {
    const plan = planAllocator({ PATH: '/usr/bin' }, host());
    assert.equal(plan.action, 'exec');
    if (plan.action !== 'exec') return;
    assert.equal(plan.env.LD_PRELOAD, DEBIAN);
    assert.equal(plan.env.MALLOC_CONF, JEMALLOC_CONF);
    assert.equal(plan.env.PATH, '/usr/bin', 'the rest of the environment is kept');
    assert.equal(plan.env[ALLOCATOR_DONE_ENV], DEBIAN);
    // The replaced process (and its workers) never replace themselves again.
    assert.deepEqual(planAllocator(plan.env, host({ onJemalloc: true })), { action: 'run' });
    const notLoaded = planAllocator(plan.env, host());
    assert.equal(notLoaded.action, 'run');
  });

  it("keeps the operator's MALLOC_CONF and LD_PRELOAD", () => {
    const plan = planAllocator({ MALLOC_CONF: 'narenas:1' }, host());
    assert.equal(plan.action === 'exec' && plan.env.MALLOC_CONF, 'narenas:1');
    const preload = planAllocator({ LD_PRELOAD: '/usr/lib/libtcmalloc.so' }, host());
    assert.equal(preload.action, 'run');
    assert.match(preload.action === 'run' ? String(preload.reason) : '', /LD_PRELOAD is set/);
  });

  it('runs on glibc without the library, in secure execution, or when told to', () => {
    assert.match(JSON.stringify(planAllocator({}, none)), /"run".*apt-get install libjemalloc2/);
    assert.match(JSON.stringify(planAllocator({}, host({ secureExec: true }))), /"run".*secure-execution/);
    assert.deepEqual(planAllocator({ SPOOKY_ALLOCATOR: 'system' }, host()), { action: 'run' });
    assert.deepEqual(planAllocator({}, host({ onJemalloc: true })), { action: 'run' }, '/etc/ld.so.preload, say');
    const preloaded = planAllocator({ SPOOKY_ALLOCATOR: 'system' }, host({ onJemalloc: true }));
    assert.match(preloaded.action === 'run' ? String(preloaded.reason) : '', /loaded before the data plane starts/);
  });

  it('refuses an unknown choice, and jemalloc when it cannot have it', () => {
    assert.deepEqual(planAllocator({ SPOOKY_ALLOCATOR: 'Jemalloc' }, host()), {
      action: 'fail',
      message: 'SPOOKY_ALLOCATOR=Jemalloc: expected auto, jemalloc or system',
    });
    for (const [env, h, why] of [
      [{ SPOOKY_ALLOCATOR: 'jemalloc' }, none, /not installed/],
      [{ SPOOKY_ALLOCATOR: 'jemalloc' }, host({ secureExec: true }), /secure-execution/],
      [{ SPOOKY_ALLOCATOR: 'jemalloc', [ALLOCATOR_DONE_ENV]: DEBIAN }, host(), /did not load/],
    ] as const) {
      const plan = planAllocator(env, h);
      assert.equal(plan.action, 'fail');
      assert.match(plan.action === 'fail' ? plan.message : '', why);
    }
    assert.equal(planAllocator({ SPOOKY_ALLOCATOR: 'jemalloc' }, host()).action, 'exec');
  });

  it('warns when auto ended on glibc, or system cannot be had', () => {
    assert.match(String(allocatorWarning({}, none)), /glibc's malloc, not jemalloc: libjemalloc.so.2 is not installed/);
    assert.equal(allocatorWarning({}, host({ onJemalloc: true })), null);
    assert.equal(allocatorWarning({ SPOOKY_ALLOCATOR: 'system' }, none), null);
    assert.equal(allocatorWarning({}, none, 'darwin'), null, 'not on a system without LD_PRELOAD');
    assert.match(
      String(allocatorWarning({ SPOOKY_ALLOCATOR: 'system' }, host({ onJemalloc: true }))),
      /^running on jemalloc although SPOOKY_ALLOCATOR=system/,
    );
  });
});

describe('allocatorInUse', () => {
  it('reads the memory map', () => {
    const line = (path: string) => `7f0000000000-7f0000001000 r-xp 00000000 08:01 123 ${path}`;
    assert.equal(allocatorInUse([line('/usr/bin/node'), line(DEBIAN)].join('\n')), 'jemalloc');
    assert.equal(
      allocatorInUse([line('/usr/bin/node'), line('/usr/lib/x86_64-linux-gnu/libc.so.6')].join('\n')),
      'glibc',
    );
    assert.equal(allocatorInUse(line('/home/me/libjemalloc.so.2.bak')), 'glibc');
  });
});

describe('secureExecution', () => {
  const auxv = (...pairs: Array<[number, number]>) => {
    const b = Buffer.alloc(16 * (pairs.length + 1));
    pairs.forEach(([t, v], i) => {
      b.writeBigUInt64LE(BigInt(t), 16 * i);
      b.writeBigUInt64LE(BigInt(v), 16 * i + 8);
    });
    return b;
  };

  it('finds AT_SECURE (23) in the auxiliary vector', () => {
    assert.equal(secureExecution(auxv([6, 4096], [23, 1])), true);
    assert.equal(secureExecution(auxv([6, 4096], [23, 0])), false);
    assert.equal(secureExecution(auxv([6, 4096])), false);
    assert.equal(secureExecution(Buffer.alloc(7)), false, 'a short read is not secure');
    assert.equal(secureExecution(readFileSync('/proc/self/auxv')), false, 'this test process, from the kernel');
  });
});
