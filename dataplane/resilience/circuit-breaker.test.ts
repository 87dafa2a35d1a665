import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type BreakerPolicy, CircuitBreaker } from './circuit-breaker.js';

const policy: BreakerPolicy = { enabled: true, consecutiveFailures: 3, openMs: 1000, halfOpenProbes: 2 };

function fail(b: CircuitBreaker, n: number, nowMs: number): void {
  for (let i = 0; i < n; i++) {
    assert.equal(b.tryAcquire(nowMs), true);
    b.onFailure(nowMs);
  }
}

function opened(p: Partial<BreakerPolicy> = {}): CircuitBreaker {
  const b = new CircuitBreaker({ ...policy, ...p });
  fail(b, p.consecutiveFailures ?? policy.consecutiveFailures, 0);
  assert.equal(b.state(0), 'open');
  return b;
}

describe('CircuitBreaker', () => {
  it('opens after N consecutive failures', () => {
    const b = new CircuitBreaker(policy);
    fail(b, 2, 0);
    assert.equal(b.state(0), 'closed');
    assert.equal(b.transitions, 0);
    fail(b, 1, 5);
    assert.equal(b.state(5), 'open');
    assert.equal(b.transitions, 1);
  });

  it('a success in between resets the count', () => {
    const b = new CircuitBreaker(policy);
    fail(b, 2, 0);
    b.onSuccess(1);
    fail(b, 2, 2);
    assert.equal(b.state(2), 'closed');
    fail(b, 1, 3);
    assert.equal(b.state(3), 'open');
  });

  it('refuses while open, without taking anything', () => {
    const b = opened();
    assert.equal(b.allows(999), false);
    assert.equal(b.tryAcquire(999), false);
    assert.equal(b.state(999), 'open');
  });

  it('late results while open do not extend or close it', () => {
    const b = opened();
    b.onFailure(900);
    b.onSuccess(950);
    assert.equal(b.state(999), 'open');
    assert.equal(b.state(1000), 'half-open');
  });

  it('turns half-open after openMs and lets exactly halfOpenProbes through', () => {
    const b = opened();
    assert.equal(b.state(1000), 'half-open');
    assert.equal(b.transitions, 2);
    assert.equal(b.allows(1000), true);
    assert.equal(b.tryAcquire(1000), true);
    assert.equal(b.tryAcquire(1001), true);
    assert.equal(b.allows(1002), false);
    assert.equal(b.tryAcquire(1002), false);
    assert.equal(b.state(5000), 'half-open');
  });

  it('closes once the probes succeed', () => {
    const b = opened();
    assert.equal(b.tryAcquire(1000), true);
    assert.equal(b.tryAcquire(1000), true);
    b.onSuccess(1010);
    assert.equal(b.state(1010), 'half-open');
    b.onSuccess(1020);
    assert.equal(b.state(1020), 'closed');
    assert.equal(b.transitions, 3);
    assert.equal(b.tryAcquire(1020), true);
    assert.equal(b.tryAcquire(1020), true);
    assert.equal(b.tryAcquire(1020), true);
  });

  it('a single success closes with one probe (the default)', () => {
    const b = opened({ halfOpenProbes: 1 });
    assert.equal(b.tryAcquire(1000), true);
    assert.equal(b.tryAcquire(1000), false);
    b.onSuccess(1001);
    assert.equal(b.state(1001), 'closed');
  });

  it('a failed probe re-opens for another openMs, with a fresh count after closing', () => {
    const b = opened();
    assert.equal(b.tryAcquire(1000), true);
    assert.equal(b.tryAcquire(1000), true);
    b.onSuccess(1100);
    b.onFailure(1200);
    assert.equal(b.state(1200), 'open');
    assert.equal(b.transitions, 3);
    b.onSuccess(1300); // the other probe, late: ignored
    assert.equal(b.state(2199), 'open');
    assert.equal(b.tryAcquire(2199), false);
    assert.equal(b.state(2200), 'half-open');
    assert.equal(b.tryAcquire(2200), true);
    assert.equal(b.tryAcquire(2200), true);
    b.onSuccess(2201);
    b.onSuccess(2202);
    assert.equal(b.state(2202), 'closed');
    fail(b, 2, 2300);
    assert.equal(b.state(2300), 'closed');
  });

  it('cancel frees a probe slot without a verdict', () => {
    const b = opened();
    assert.equal(b.tryAcquire(1000), true);
    assert.equal(b.tryAcquire(1000), true);
    assert.equal(b.tryAcquire(1000), false);
    b.onCancel();
    assert.equal(b.state(1000), 'half-open');
    assert.equal(b.tryAcquire(1000), true);
    b.onCancel();
    b.onCancel();
    b.onCancel(); // more cancels than probes: ignored
    assert.equal(b.tryAcquire(1000), true);
    assert.equal(b.tryAcquire(1000), true);
    assert.equal(b.tryAcquire(1000), false);
  });

  it('results with no probe in flight do not decide half-open', () => {
    const b = opened();
    assert.equal(b.state(1000), 'half-open');
    b.onSuccess(1000);
    b.onSuccess(1000);
    b.onFailure(1000);
    assert.equal(b.state(1000), 'half-open');
  });

  it('a clock going backwards does not leave open early', () => {
    const b = new CircuitBreaker(policy);
    fail(b, 3, 5000);
    assert.equal(b.state(4000), 'open');
    assert.equal(b.state(5999), 'open');
    assert.equal(b.state(6000), 'half-open');
  });

  it('a disabled breaker never opens', () => {
    const b = new CircuitBreaker({ ...policy, enabled: false });
    fail(b, 100, 0);
    assert.equal(b.state(0), 'closed');
    assert.equal(b.allows(0), true);
    assert.equal(b.tryAcquire(0), true);
    b.onCancel();
    assert.equal(b.transitions, 0);
  });
});
