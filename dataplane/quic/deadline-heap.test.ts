import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type DeadlineEntry, DeadlineHeap } from './deadline-heap.js';

/** A small deterministic generator, so a failure reproduces. */
function lcg(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

describe('DeadlineHeap', () => {
  it('pops entries in deadline order, only once due', () => {
    const h = new DeadlineHeap<string>();
    const a = DeadlineHeap.entry('a');
    const b = DeadlineHeap.entry('b');
    const c = DeadlineHeap.entry('c');
    h.set(a, 30);
    h.set(b, 10);
    h.set(c, 20);
    assert.equal(h.popDue(9), undefined);
    assert.equal(h.popDue(25)?.owner, 'b');
    assert.equal(h.popDue(25)?.owner, 'c');
    assert.equal(h.popDue(25), undefined);
    assert.equal(h.popDue(30)?.owner, 'a');
    assert.equal(h.size, 0);
    assert.equal(a.index, -1);
  });

  it('moves an entry earlier and later, and removes one from the middle', () => {
    const h = new DeadlineHeap<number>();
    const es = [50, 40, 30, 20, 10].map((d, i) => {
      const e = DeadlineHeap.entry(i);
      h.set(e, d);
      return e;
    });
    h.set(es[0] as DeadlineEntry<number>, 5); // earlier: now the first
    h.set(es[4] as DeadlineEntry<number>, 100); // later: now the last
    h.remove(es[2] as DeadlineEntry<number>);
    h.remove(es[2] as DeadlineEntry<number>); // twice: nothing
    const order: number[] = [];
    for (let e = h.popDue(1000); e; e = h.popDue(1000)) order.push(e.owner);
    assert.deepEqual(order, [0, 3, 1, 4]);
  });

  it('clear() takes every entry out, and a cleared entry can be queued again', () => {
    const h = new DeadlineHeap<string>();
    const a = DeadlineHeap.entry('a');
    const b = DeadlineHeap.entry('b');
    h.set(a, 10);
    h.set(b, 20);
    h.clear();
    assert.equal(h.size, 0);
    assert.deepEqual([a.index, b.index], [-1, -1]);
    h.set(b, 5);
    assert.equal(h.popDue(5)?.owner, 'b');
    assert.equal(h.popDue(100), undefined);
  });

  it('agrees with a sorted list over random sets, moves and removals', () => {
    const rnd = lcg(7);
    const h = new DeadlineHeap<number>();
    const entries = Array.from({ length: 200 }, (_, i) => DeadlineHeap.entry(i));
    const reference = new Map<number, number>();
    for (let step = 0; step < 5000; step++) {
      const e = entries[Math.floor(rnd() * entries.length)] as DeadlineEntry<number>;
      if (rnd() < 0.2) {
        h.remove(e);
        reference.delete(e.owner);
      } else {
        const d = Math.floor(rnd() * 1000);
        h.set(e, d);
        reference.set(e.owner, d);
      }
      assert.equal(h.size, reference.size);
      if (step % 500 === 0) {
        const min = Math.min(...reference.values());
        assert.equal(h.peek()?.deadline, reference.size ? min : undefined);
      }
    }
    const popped: number[] = [];
    for (let e = h.popDue(Number.POSITIVE_INFINITY); e; e = h.popDue(Number.POSITIVE_INFINITY)) {
      assert.equal(e.deadline, reference.get(e.owner));
      popped.push(e.deadline);
    }
    assert.equal(popped.length, reference.size);
    assert.deepEqual(
      popped,
      [...popped].sort((x, y) => x - y),
    );
  });
});
