import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CANCELLED_STREAMS_BURST, CANCELLED_STREAMS_PER_SEC } from '../resilience/cancelled-streams.js';
import { MAX_STREAMS_AWAITING_HEADERS, StreamGuard } from './stream-guard.js';

test('resets: a burst is allowed, a flood is not, and the budget refills over time', () => {
  const g = new StreamGuard(10_000);
  let t = 1000;
  for (let i = 0; i < CANCELLED_STREAMS_BURST; i++) assert.equal(g.onPrematureReset(t), true, `reset ${i}`);
  assert.equal(g.onPrematureReset(t), false, 'the reset after the burst');
  t += 1000;
  for (let i = 0; i < CANCELLED_STREAMS_PER_SEC; i++) assert.equal(g.onPrematureReset(t), true, `refilled ${i}`);
  assert.equal(g.onPrematureReset(t), false);
  // A steady rate under the limit never runs out.
  const steady = new StreamGuard(10_000);
  for (let i = 0; i < 10 * CANCELLED_STREAMS_BURST; i++)
    assert.ok(steady.onPrematureReset(i * (1000 / (CANCELLED_STREAMS_PER_SEC / 2))));
});

test('header deadlines: expire in order, only once, and free their slot', () => {
  const g = new StreamGuard(5000);
  assert.equal(g.nextDeadline(), null);
  assert.ok(g.startAwaitingHeaders(0, 100));
  assert.ok(g.startAwaitingHeaders(4, 200));
  assert.ok(g.startAwaitingHeaders(0, 300), 'already tracked: keeps its first deadline');
  assert.equal(g.nextDeadline(), 5100);
  assert.deepEqual(g.takeExpired(5099), []);
  assert.deepEqual(g.takeExpired(5100), [0]);
  g.stopAwaitingHeaders(4);
  assert.deepEqual(g.takeExpired(99_999), []);
  assert.equal(g.awaitingHeaders, 0);
});

test('at most MAX_STREAMS_AWAITING_HEADERS streams wait for their headers at once', () => {
  const g = new StreamGuard(5000);
  for (let i = 0; i < MAX_STREAMS_AWAITING_HEADERS; i++) assert.ok(g.startAwaitingHeaders(i * 4, 0));
  assert.equal(g.startAwaitingHeaders(9999 * 4, 0), false);
  g.stopAwaitingHeaders(0);
  assert.ok(g.startAwaitingHeaders(9999 * 4, 0));
});
