import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HashRing, hash32, ringPoints } from './consistent-hash.js';

interface Item {
  readonly id: string;
  readonly weight: number;
}

const keys = Array.from({ length: 10_000 }, (_, i) => `key-${i}`);
const five: readonly Item[] = ['b0', 'b1', 'b2', 'b3', 'b4'].map((id) => ({ id, weight: 100 }));

function owners(ring: HashRing<Item>, eligible?: (item: Item) => boolean): string[] {
  return keys.map((k) => ring.lookup(k, eligible)?.id ?? '-');
}

describe('hash32', () => {
  // Every data plane must place keys identically, so the function is pinned: FNV-1a over UTF-8, fmix32.
  it('is stable across releases', () => {
    assert.equal(hash32(''), 0xab3e7c0b);
    assert.equal(hash32('a#0'), 0x87484091);
    assert.equal(hash32('abc'), 0x1cc93dbc);
  });

  it('hashes the UTF-8 bytes, surrogate pairs included', () => {
    assert.equal(hash32('héllo'), 0xfa3f8bad);
    assert.equal(hash32('x€y'), 0x2f86fe28);
    assert.equal(hash32('😀'), 0x3303a80a);
    assert.notEqual(hash32('\ud800'), hash32('\udc00'));
  });

  it('spreads similar inputs over the whole 32-bit range', () => {
    const buckets = new Array<number>(16).fill(0);
    for (let i = 0; i < 10_000; i++) {
      const h = hash32(`node#${i}`);
      assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 32);
      buckets[h >>> 28]++;
    }
    for (const n of buckets) assert.ok(Math.abs(n - 625) < 125, `bucket of ${n}`);
  });
});

describe('ringPoints', () => {
  it('is max(1, round(weight)), and 0 for unusable weights', () => {
    assert.deepEqual(
      [100, 1, 0.4, 2.5, 1000].map((w) => ringPoints(w)),
      [100, 1, 1, 3, 1000],
    );
    assert.deepEqual(
      [0, -5, Number.NaN, Number.POSITIVE_INFINITY].map((w) => ringPoints(w)),
      [0, 0, 0, 0],
    );
  });
});

describe('HashRing', () => {
  it('has one point per unit of weight', () => {
    const ring = new HashRing<Item>([
      { id: 'a', weight: 100 },
      { id: 'b', weight: 300 },
      { id: 'c', weight: 0 },
    ]);
    assert.equal(ring.size, 400);
    assert.equal(ring.items.length, 3);
  });

  it('maps a key to the same backend every time and whatever the list order', () => {
    const ring = new HashRing(five);
    const reversed = new HashRing([...five].reverse());
    assert.deepEqual(owners(ring), owners(reversed));
    assert.deepEqual(owners(ring), owners(new HashRing(five)));
  });

  it('spreads keys over every backend', () => {
    const counts = new Map<string, number>();
    for (const id of owners(new HashRing(five))) counts.set(id, (counts.get(id) ?? 0) + 1);
    assert.deepEqual([...counts.keys()].sort(), ['b0', 'b1', 'b2', 'b3', 'b4']);
    for (const n of counts.values()) assert.ok(n > 1_200 && n < 2_800, `share of ${n}`);
  });

  it('honours weights 1:3 on average over many rings', () => {
    // One ring of 400 points gives a backend's share a spread of about ±2.2%; over 40 rings of
    // different ids the mean share must sit within 1% of the weight share.
    let total = 0;
    for (let r = 0; r < 40; r++) {
      const ring = new HashRing<Item>([
        { id: `light-${r}`, weight: 100 },
        { id: `heavy-${r}`, weight: 300 },
      ]);
      total += owners(ring).filter((id) => id === `light-${r}`).length / keys.length;
    }
    assert.ok(Math.abs(total / 40 - 0.25) < 0.01, `mean share ${total / 40}`);
  });

  it('removing one of 5 equal backends moves only its keys, at most 25% of them', () => {
    const before = owners(new HashRing(five));
    const after = owners(new HashRing(five.filter((b) => b.id !== 'b3')));
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (before[i] === after[i]) continue;
      moved++;
      assert.equal(before[i], 'b3', `${keys[i]} moved off ${before[i]}`);
    }
    assert.ok(moved > 0 && moved <= 2_500, `${moved} keys moved`);
    assert.equal(moved, before.filter((id) => id === 'b3').length);
  });

  it('an ineligible backend sends its keys where removing it would', () => {
    const ring = new HashRing(five);
    const before = owners(ring);
    const skipping = owners(ring, (b) => b.id !== 'b3');
    assert.deepEqual(skipping, owners(new HashRing(five.filter((b) => b.id !== 'b3'))));
    const moved = skipping.filter((id, i) => id !== before[i]);
    assert.ok(moved.length <= 2_500);
    for (let i = 0; i < keys.length; i++) if (skipping[i] !== before[i]) assert.equal(before[i], 'b3');
  });

  it('adding a backend only moves keys onto it', () => {
    const before = owners(new HashRing(five));
    const after = owners(new HashRing([...five, { id: 'b5', weight: 100 }]));
    for (let i = 0; i < keys.length; i++) if (before[i] !== after[i]) assert.equal(after[i], 'b5');
  });

  it('returns undefined when nothing is eligible or the ring is empty, asking each backend once', () => {
    const ring = new HashRing(five);
    const asked: string[] = [];
    assert.equal(
      ring.lookup('k', (b) => {
        asked.push(b.id);
        return false;
      }),
      undefined,
    );
    assert.deepEqual([...asked].sort(), ['b0', 'b1', 'b2', 'b3', 'b4']);
    assert.equal(new HashRing<Item>([]).lookup('k'), undefined);
    assert.equal(new HashRing<Item>([{ id: 'z', weight: 0 }]).lookup('k'), undefined);
  });
});
