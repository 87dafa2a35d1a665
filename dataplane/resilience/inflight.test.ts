import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { acquireSlot, InflightCount, type InflightSlot, releaseSlot } from './inflight.js';

/** A global count shared by pools, one count per pool and per backend. */
function counts() {
  const global = new InflightCount();
  const pools = new Map<string, InflightCount>();
  const backends = new Map<string, InflightCount>();
  const get = (m: Map<string, InflightCount>, k: string) => {
    let c = m.get(k);
    if (!c) m.set(k, (c = new InflightCount()));
    return c;
  };
  const slot = (pool: string, backend: string): InflightSlot => ({
    global,
    upstream: get(pools, pool),
    backend: get(backends, backend),
  });
  return { global, slot, backend: (id: string) => get(backends, id).value, pool: (id: string) => get(pools, id).value };
}

describe('in-flight slots', () => {
  it('refuses at the per-backend limit, and another backend still has room', () => {
    const c = counts();
    const limits = { global: 100, perUpstream: 100, perBackend: 2 };
    assert.equal(acquireSlot(limits, c.slot('p', 'a')), null);
    assert.equal(acquireSlot(limits, c.slot('p', 'a')), null);
    assert.equal(acquireSlot(limits, c.slot('p', 'a')), 'backend_inflight');
    assert.equal(acquireSlot(limits, c.slot('p', 'b')), null);
    assert.equal(c.backend('a'), 2);
    assert.equal(c.global.value, 3);
  });

  it('refuses at the per-upstream limit before the backend one', () => {
    const c = counts();
    const limits = { global: 100, perUpstream: 2, perBackend: 1 };
    assert.equal(acquireSlot(limits, c.slot('p', 'a')), null);
    assert.equal(acquireSlot(limits, c.slot('p', 'b')), null);
    assert.equal(acquireSlot(limits, c.slot('p', 'a')), 'upstream_inflight');
    assert.equal(acquireSlot(limits, c.slot('p', 'c')), 'upstream_inflight');
    assert.equal(acquireSlot(limits, c.slot('q', 'c')), null);
  });

  it('refuses at the global limit first', () => {
    const c = counts();
    const limits = { global: 2, perUpstream: 1, perBackend: 1 };
    assert.equal(acquireSlot(limits, c.slot('p', 'a')), null);
    assert.equal(acquireSlot(limits, c.slot('q', 'b')), null);
    assert.equal(acquireSlot(limits, c.slot('p', 'a')), 'global_inflight');
    assert.equal(acquireSlot(limits, c.slot('r', 'c')), 'global_inflight');
    assert.equal(c.global.value, 2);
  });

  it('a refusal takes nothing and a release frees all three counts', () => {
    const c = counts();
    const limits = { global: 10, perUpstream: 10, perBackend: 1 };
    assert.equal(acquireSlot(limits, c.slot('p', 'a')), null);
    assert.equal(acquireSlot(limits, c.slot('p', 'a')), 'backend_inflight');
    assert.deepEqual([c.global.value, c.pool('p'), c.backend('a')], [1, 1, 1]);
    releaseSlot(c.slot('p', 'a'));
    assert.deepEqual([c.global.value, c.pool('p'), c.backend('a')], [0, 0, 0]);
    assert.equal(acquireSlot(limits, c.slot('p', 'a')), null);
  });

  it('a lowered limit keeps the counts and sheds new requests until they fall below it', () => {
    const c = counts();
    for (let i = 0; i < 3; i++)
      assert.equal(acquireSlot({ global: 10, perUpstream: 10, perBackend: 10 }, c.slot('p', 'a')), null);
    const lower = { global: 10, perUpstream: 10, perBackend: 2 };
    assert.equal(acquireSlot(lower, c.slot('p', 'a')), 'backend_inflight');
    releaseSlot(c.slot('p', 'a'));
    assert.equal(acquireSlot(lower, c.slot('p', 'a')), 'backend_inflight');
    releaseSlot(c.slot('p', 'a'));
    assert.equal(acquireSlot(lower, c.slot('p', 'a')), null);
  });

  it('counts never go negative', () => {
    const c = counts();
    releaseSlot(c.slot('p', 'a'));
    assert.deepEqual([c.global.value, c.pool('p'), c.backend('a')], [0, 0, 0]);
    assert.equal(acquireSlot({ global: 1, perUpstream: 1, perBackend: 1 }, c.slot('p', 'a')), null);
    assert.equal(c.global.value, 1);
  });
});
