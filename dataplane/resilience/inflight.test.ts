import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InflightLimits } from './inflight.js';

describe('InflightLimits', () => {
  it('refuses at the per-backend limit, and another backend still has room', () => {
    const l = new InflightLimits({ global: 100, perUpstream: 100, perBackend: 2 });
    assert.equal(l.tryAcquire('p', 'a'), null);
    assert.equal(l.tryAcquire('p', 'a'), null);
    assert.equal(l.backendHasRoom('a'), false);
    assert.equal(l.tryAcquire('p', 'a'), 'backend_inflight');
    assert.equal(l.backendHasRoom('b'), true);
    assert.equal(l.tryAcquire('p', 'b'), null);
    assert.equal(l.inFlight('a'), 2);
    assert.equal(l.total, 3);
  });

  it('refuses at the per-upstream limit before the backend one', () => {
    const l = new InflightLimits({ global: 100, perUpstream: 2, perBackend: 1 });
    assert.equal(l.tryAcquire('p', 'a'), null);
    assert.equal(l.tryAcquire('p', 'b'), null);
    assert.equal(l.upstreamHasRoom('p'), false);
    assert.equal(l.tryAcquire('p', 'a'), 'upstream_inflight');
    assert.equal(l.tryAcquire('p', 'c'), 'upstream_inflight');
    assert.equal(l.tryAcquire('q', 'c'), null);
  });

  it('refuses at the global limit first', () => {
    const l = new InflightLimits({ global: 2, perUpstream: 1, perBackend: 1 });
    assert.equal(l.tryAcquire('p', 'a'), null);
    assert.equal(l.tryAcquire('q', 'b'), null);
    assert.equal(l.globalHasRoom(), false);
    assert.equal(l.tryAcquire('p', 'a'), 'global_inflight');
    assert.equal(l.tryAcquire('r', 'c'), 'global_inflight');
    assert.equal(l.total, 2);
  });

  it('a refusal reserves nothing and release frees the slot', () => {
    const l = new InflightLimits({ global: 1, perUpstream: 1, perBackend: 1 });
    assert.equal(l.tryAcquire('p', 'a'), null);
    assert.equal(l.tryAcquire('p', 'a'), 'global_inflight');
    l.release('p', 'a');
    assert.equal(l.total, 0);
    assert.equal(l.inFlight('a'), 0);
    assert.deepEqual(l.backendsInFlight(), []);
    assert.equal(l.tryAcquire('p', 'a'), null);
  });

  it('setLimits keeps the counts', () => {
    const l = new InflightLimits({ global: 10, perUpstream: 10, perBackend: 10 });
    for (let i = 0; i < 3; i++) assert.equal(l.tryAcquire('p', 'a'), null);
    l.setLimits({ global: 10, perUpstream: 10, perBackend: 2 });
    assert.equal(l.inFlight('a'), 3);
    assert.equal(l.tryAcquire('p', 'a'), 'backend_inflight');
    l.release('p', 'a');
    assert.equal(l.tryAcquire('p', 'a'), 'backend_inflight');
    l.release('p', 'a');
    assert.equal(l.tryAcquire('p', 'a'), null);
    l.setLimits({ global: 2, perUpstream: 10, perBackend: 10 });
    assert.equal(l.total, 2);
    assert.equal(l.tryAcquire('q', 'b'), 'global_inflight');
  });

  it('ignores a release without an acquire; counts never go negative', () => {
    const l = new InflightLimits({ global: 10, perUpstream: 10, perBackend: 10 });
    l.release('p', 'a');
    assert.equal(l.total, 0);
    assert.equal(l.inFlight('a'), 0);
    assert.equal(l.tryAcquire('p', 'a'), null);
    l.release('p', 'b'); // wrong backend: ignored
    l.release('q', 'a'); // wrong pool: ignored
    assert.equal(l.total, 1);
    l.release('p', 'a');
    l.release('p', 'a');
    assert.equal(l.total, 0);
    assert.deepEqual(l.backendsInFlight(), []);
    // Pool p holds nothing: at a per-upstream limit of 1 it still takes one.
    l.setLimits({ global: 10, perUpstream: 1, perBackend: 10 });
    assert.equal(l.tryAcquire('p', 'a'), null);
  });

  it('counts a backend shared by two pools once per backend', () => {
    const l = new InflightLimits({ global: 10, perUpstream: 10, perBackend: 2 });
    assert.equal(l.tryAcquire('p', 'a'), null);
    assert.equal(l.tryAcquire('q', 'a'), null);
    assert.equal(l.tryAcquire('q', 'a'), 'backend_inflight');
    l.release('p', 'a');
    assert.equal(l.inFlight('a'), 1);
    // Pool p holds nothing, pool q one: at a per-upstream limit of 1, p takes one and q none.
    l.setLimits({ global: 10, perUpstream: 1, perBackend: 10 });
    assert.equal(l.tryAcquire('q', 'b'), 'upstream_inflight');
    assert.equal(l.tryAcquire('p', 'b'), null);
  });

  it('lists the backends with requests in flight, summed over pools', () => {
    const l = new InflightLimits({ global: 10, perUpstream: 10, perBackend: 10 });
    assert.deepEqual(l.backendsInFlight(), []);
    l.tryAcquire('p', 'a');
    l.tryAcquire('q', 'a');
    l.tryAcquire('p', 'b');
    assert.deepEqual(
      new Map(l.backendsInFlight()),
      new Map([
        ['a', 2],
        ['b', 1],
      ]),
    );
    l.release('p', 'b');
    assert.deepEqual(l.backendsInFlight(), [['a', 2]]);
  });

  it('ignores a release for a pair never acquired, even when pool and backend are busy', () => {
    const l = new InflightLimits({ global: 10, perUpstream: 10, perBackend: 10 });
    assert.equal(l.tryAcquire('p', 'a'), null);
    assert.equal(l.tryAcquire('q', 'b'), null);
    l.release('p', 'b');
    l.release('q', 'a');
    assert.equal(l.total, 2);
    assert.equal(l.inFlight('a'), 1);
    assert.equal(l.inFlight('b'), 1);
    // One each in p and q: at a per-upstream limit of 1 neither takes another.
    l.setLimits({ global: 10, perUpstream: 1, perBackend: 10 });
    assert.equal(l.tryAcquire('p', 'c'), 'upstream_inflight');
    assert.equal(l.tryAcquire('q', 'c'), 'upstream_inflight');
  });
});
