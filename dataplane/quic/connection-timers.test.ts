/**
 * ConnectionTimers on Node's real timers: owners fire once, in deadline order, never before their
 * own deadline, including after the earliest deadline moved later (the one Node timer then fires
 * early and must find nothing due). Waits are bounded; nothing here asserts a speed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectionTimers } from './connection-timers.js';
import { DeadlineHeap } from './deadline-heap.js';

interface Fired {
  owner: string;
  at: number;
}

function harness() {
  const fired: Fired[] = [];
  const timers = new ConnectionTimers<string>((owner) => fired.push({ owner, at: performance.now() }));
  return { fired, timers };
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond() && performance.now() < end) await sleep(5);
}

describe('ConnectionTimers', () => {
  it('fires each owner once, in deadline order, not before its deadline', async () => {
    const { fired, timers } = harness();
    const now = performance.now();
    const deadlines = { a: now + 60, b: now + 20, c: now + 40 };
    for (const [owner, at] of Object.entries(deadlines)) timers.set(DeadlineHeap.entry(owner), at);
    await until(() => fired.length === 3);
    await sleep(30);
    assert.deepEqual(
      fired.map((f) => f.owner),
      ['b', 'c', 'a'],
    );
    for (const f of fired) assert.ok(f.at >= deadlines[f.owner as keyof typeof deadlines], `${f.owner} fired early`);
    assert.equal(timers.size, 0);
  });

  it('a deadline moved later fires at the new time only', async () => {
    const { fired, timers } = harness();
    const e = DeadlineHeap.entry('a');
    const now = performance.now();
    timers.set(e, now + 10);
    timers.set(e, now + 50);
    await until(() => fired.length > 0);
    await sleep(30);
    assert.equal(fired.length, 1);
    assert.ok((fired[0] as Fired).at >= now + 50, 'fired at the old deadline');
  });

  it('a deadline moved earlier fires at the new time', async () => {
    const { fired, timers } = harness();
    const late = DeadlineHeap.entry('late');
    const e = DeadlineHeap.entry('a');
    const now = performance.now();
    timers.set(late, now + 5000);
    timers.set(e, now + 3000);
    timers.set(e, now + 20);
    await until(() => fired.length > 0);
    assert.deepEqual(
      fired.map((f) => f.owner),
      ['a'],
    );
    timers.clear();
  });

  it('a cleared deadline never fires, and clear() stops everything', async () => {
    const { fired, timers } = harness();
    const a = DeadlineHeap.entry('a');
    const b = DeadlineHeap.entry('b');
    const now = performance.now();
    timers.set(a, now + 10);
    timers.set(b, now + 15);
    timers.set(a, null);
    timers.clear();
    assert.equal(timers.size, 0);
    await sleep(60);
    assert.deepEqual(fired, []);
  });

  it('an owner that sets a due deadline while firing waits for the next run (no loop)', async () => {
    const clock = 0;
    let fires = 0;
    let turns = 0;
    const entry = DeadlineHeap.entry('a');
    const timers: ConnectionTimers<string> = new ConnectionTimers<string>(
      () => {
        fires++;
        // Due again at once (quiche's timeout() can be 0): must not be fired in this same run.
        timers.set(entry, clock);
      },
      () => clock,
    );
    timers.set(entry, 0);
    const spin = setInterval(() => turns++, 1);
    await until(() => fires >= 3);
    clearInterval(spin);
    timers.clear();
    assert.ok(fires >= 3, 'kept firing, one run per timer');
    assert.ok(turns > 0, 'the event loop kept turning between runs');
  });
});
