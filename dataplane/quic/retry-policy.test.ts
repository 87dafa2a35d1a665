import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HandshakeRate, RetryPolicy } from './retry-policy.js';

describe('Retry policy', () => {
  it('always and never do not depend on the rate', () => {
    const p = new RetryPolicy();
    for (let i = 0; i < 100; i++) {
      assert.equal(p.shouldRetry({ mode: 'always', newConnectionsPerSec: 1 }, 1000 + i), true);
      assert.equal(p.shouldRetry({ mode: 'never', newConnectionsPerSec: 1 }, 1000 + i), false);
    }
  });

  it('auto asks for Retry only while new handshakes exceed the rate', () => {
    const p = new RetryPolicy();
    const s = { mode: 'auto' as const, newConnectionsPerSec: 10 };
    const answers: boolean[] = [];
    // 20 handshakes within 200 ms: the first 10 pass, the rest get Retry.
    for (let i = 0; i < 20; i++) answers.push(p.shouldRetry(s, 10_000 + i * 10));
    assert.deepEqual(answers, [...Array(10).fill(false), ...Array(10).fill(true)]);
    // Three seconds of quiet later the rate is back to zero.
    assert.equal(p.shouldRetry(s, 13_500), false);
  });

  it('auto lets a steady rate below the limit through', () => {
    const p = new RetryPolicy();
    const s = { mode: 'auto' as const, newConnectionsPerSec: 10 };
    for (let i = 0; i < 100; i++) assert.equal(p.shouldRetry(s, 20_000 + i * 200), false, `handshake ${i}`);
  });
});

describe('HandshakeRate', () => {
  it('carries the previous second over, fading as the current one fills', () => {
    const r = new HandshakeRate();
    for (let i = 0; i < 10; i++) r.note(5000 + i);
    // Half-way into the next second, half of the previous count still weighs.
    const rate = r.note(6500);
    assert.ok(rate > 5 && rate < 7, `rate ${rate}`);
  });
});
