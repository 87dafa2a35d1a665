import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AmplificationLimit } from './amplification.js';

const d = (n: number, tag = '') => ({ byteLength: n, tag });

describe('AmplificationLimit', () => {
  it('sends nothing before anything was received', () => {
    const a = new AmplificationLimit<ReturnType<typeof d>>();
    assert.deepEqual(a.offer(d(100)), []);
    assert.equal(a.heldCount, 1);
  });

  it('lets up to three times the received bytes leave, and holds the rest in order', () => {
    const a = new AmplificationLimit<ReturnType<typeof d>>();
    a.onReceived(1200);
    const sent = [d(1200, 'a'), d(1200, 'b'), d(1200, 'c'), d(1200, 'd'), d(100, 'e')].flatMap((x) => a.offer(x));
    assert.deepEqual(
      sent.map((x) => x.tag),
      ['a', 'b', 'c'],
    );
    assert.equal(a.bytesSent, 3600);
    assert.equal(a.heldCount, 2);
    // 'e' would fit after 'd' is sent, but never overtakes it.
    a.onReceived(400);
    assert.deepEqual(
      a.offer(null).map((x) => x.tag),
      ['d'],
    );
    a.onReceived(40);
    assert.deepEqual(
      a.offer(null).map((x) => x.tag),
      ['e'],
    );
    assert.ok(a.bytesSent <= 3 * 1640);
  });

  it('keeps at most eight datagrams, discarding the oldest', () => {
    const a = new AmplificationLimit<ReturnType<typeof d>>();
    for (let i = 0; i < 10; i++) a.offer(d(1200, String(i)));
    assert.equal(a.discardedCount, 2);
    a.onReceived(100_000);
    assert.deepEqual(
      a.offer(null).map((x) => x.tag),
      ['2', '3', '4', '5', '6', '7', '8', '9'],
    );
  });

  it('release hands out everything held once the address is validated', () => {
    const a = new AmplificationLimit<ReturnType<typeof d>>();
    a.offer(d(500, 'x'));
    a.offer(d(500, 'y'));
    assert.deepEqual(
      a.release().map((x) => x.tag),
      ['x', 'y'],
    );
    assert.equal(a.hasHeld, false);
  });
});
