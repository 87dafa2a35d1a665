import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenBucket } from './token-bucket.js';

function drain(b: TokenBucket, nowMs: number): number {
  let n = 0;
  while (b.tryTake(nowMs)) n++;
  return n;
}

describe('TokenBucket', () => {
  it('starts full: a burst, then refuses', () => {
    const b = new TokenBucket(10, 5, 0);
    assert.equal(b.tokens(0), 5);
    assert.equal(drain(b, 0), 5);
    assert.equal(b.tryTake(0), false);
  });

  it('refills at the rate', () => {
    const b = new TokenBucket(10, 5, 0);
    drain(b, 0);
    assert.equal(b.tryTake(99), false);
    assert.equal(b.tryTake(100), true);
    assert.equal(b.tryTake(100), false);
    assert.equal(drain(b, 400), 3);
  });

  it('never fills above the burst', () => {
    const b = new TokenBucket(1000, 5, 0);
    assert.equal(b.tokens(1_000_000), 5);
    drain(b, 1_000_000);
    assert.equal(b.tokens(3_000_000), 5);
    assert.equal(drain(b, 3_000_000), 5);
  });

  it('refills fractionally and exactly', () => {
    const b = new TokenBucket(3, 10, 0);
    drain(b, 0);
    assert.equal(b.tokens(100), 0.3);
    assert.equal(b.tokens(333), 0.999);
    assert.equal(b.tryTake(333), false);
    assert.equal(b.tryTake(334), true);
    assert.equal(b.tokens(334), 0.002);
    // Many small steps add up to the same as one big one.
    const c = new TokenBucket(7, 100, 0);
    drain(c, 0);
    for (let t = 1; t <= 1000; t++) c.tokens(t);
    assert.equal(c.tokens(1000), 7);
  });

  it('takes n at once, or none', () => {
    const b = new TokenBucket(10, 5, 0);
    assert.equal(b.tryTake(0, 3), true);
    assert.equal(b.tryTake(0, 3), false);
    assert.equal(b.tokens(0), 2);
    assert.equal(b.tryTake(0, 0), true);
    assert.equal(b.tryTake(0, 6), false);
  });

  it('a clock going backwards adds no tokens', () => {
    const b = new TokenBucket(10, 5, 1000);
    drain(b, 1000);
    assert.equal(b.tokens(500), 0);
    assert.equal(b.tryTake(500), false);
    assert.equal(b.tokens(1000), 0);
    assert.equal(b.tokens(1100), 1);
  });

  it('a zero rate never refills', () => {
    const b = new TokenBucket(0, 2, 0);
    assert.equal(drain(b, 0), 2);
    assert.equal(b.tokens(1e9), 0);
  });
});
