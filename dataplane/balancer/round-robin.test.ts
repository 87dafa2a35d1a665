import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SmoothWeightedRoundRobin } from './round-robin.js';

interface Item {
  readonly id: string;
  readonly weight: number;
}

function sequence(rr: SmoothWeightedRoundRobin<Item>, n: number, eligible?: (item: Item) => boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(rr.pick(eligible)?.id ?? '-');
  return out;
}

describe('SmoothWeightedRoundRobin', () => {
  it('alternates between equal weights', () => {
    const rr = new SmoothWeightedRoundRobin<Item>([
      { id: 'a', weight: 100 },
      { id: 'b', weight: 100 },
    ]);
    assert.deepEqual(sequence(rr, 6), ['a', 'b', 'a', 'b', 'a', 'b']);
  });

  it('cycles through three equal backends in order', () => {
    const rr = new SmoothWeightedRoundRobin<Item>([
      { id: 'a', weight: 1 },
      { id: 'b', weight: 1 },
      { id: 'c', weight: 1 },
    ]);
    assert.deepEqual(sequence(rr, 6), ['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('gives exactly 25% / 75% for weights 1:3 over every multiple of 4', () => {
    const rr = new SmoothWeightedRoundRobin<Item>([
      { id: 'a', weight: 1 },
      { id: 'b', weight: 3 },
    ]);
    for (const rounds of [1, 2, 25]) {
      const picks = sequence(rr, rounds * 4);
      assert.equal(picks.filter((id) => id === 'a').length, rounds);
      assert.equal(picks.filter((id) => id === 'b').length, rounds * 3);
    }
  });

  it('interleaves heavy items like nginx (5:1:1)', () => {
    const rr = new SmoothWeightedRoundRobin<Item>([
      { id: 'a', weight: 5 },
      { id: 'b', weight: 1 },
      { id: 'c', weight: 1 },
    ]);
    assert.deepEqual(sequence(rr, 7), ['a', 'a', 'b', 'a', 'c', 'a', 'a']);
    assert.deepEqual(sequence(rr, 7), ['a', 'a', 'b', 'a', 'c', 'a', 'a']);
  });

  it('only picks eligible items and spreads over those', () => {
    const rr = new SmoothWeightedRoundRobin<Item>([
      { id: 'a', weight: 1 },
      { id: 'b', weight: 1 },
      { id: 'c', weight: 1 },
    ]);
    const notB = (item: Item) => item.id !== 'b';
    assert.deepEqual(sequence(rr, 4, notB), ['a', 'c', 'a', 'c']);
    assert.equal(
      rr.pick(() => false),
      undefined,
    );
    const fresh = new SmoothWeightedRoundRobin<Item>([
      { id: 'a', weight: 1 },
      { id: 'b', weight: 1 },
      { id: 'c', weight: 1 },
    ]);
    const picks = sequence(fresh, 300);
    for (const id of ['a', 'b', 'c']) assert.equal(picks.filter((p) => p === id).length, 100, id);
  });

  it('returns undefined for an empty set and skips non-positive weights', () => {
    assert.equal(new SmoothWeightedRoundRobin<Item>([]).pick(), undefined);
    const rr = new SmoothWeightedRoundRobin<Item>([
      { id: 'zero', weight: 0 },
      { id: 'nan', weight: Number.NaN },
      { id: 'ok', weight: 2 },
    ]);
    assert.deepEqual(sequence(rr, 3), ['ok', 'ok', 'ok']);
  });
});
