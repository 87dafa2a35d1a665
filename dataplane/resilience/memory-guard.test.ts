import assert from 'node:assert/strict';
import { test } from 'node:test';
import { autoMemoryLimit, MemoryGuard } from './memory-guard.js';

const MiB = 2 ** 20;

test('refuses at the limit, sheds well above it, accepts again only below 90%', () => {
  const g = new MemoryGuard(1000 * MiB);
  assert.equal(g.update(500 * MiB), 'ok');
  assert.equal(g.update(1000 * MiB), 'refusing');
  assert.ok(g.refusing);
  assert.equal(g.update(1200 * MiB), 'shedding');
  assert.equal(g.update(1050 * MiB), 'refusing', 'back under the shedding line');
  assert.equal(g.update(950 * MiB), 'refusing', 'between 90% and the limit: still refusing (hysteresis)');
  assert.equal(g.update(899 * MiB), 'ok');
  assert.equal(g.update(950 * MiB), 'ok', 'from ok, the limit itself is the line');
});

test('the automatic limit: 75% of the cgroup limit, else of the machine', () => {
  assert.equal(autoMemoryLimit(null, 16_000 * MiB), 12_000 * MiB);
  assert.equal(autoMemoryLimit(2000 * MiB, 16_000 * MiB), 1500 * MiB);
  assert.equal(autoMemoryLimit(Number.MAX_SAFE_INTEGER, 16_000 * MiB), 12_000 * MiB, '"max" is no limit');
});
