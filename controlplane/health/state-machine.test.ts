import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type HealthPolicy, HealthStateMachine } from './state-machine.js';

const POLICY: HealthPolicy = { failureThreshold: 3, successThreshold: 2, cooldownMs: 5000 };

/** A fake clock: every call moves time forward by the given step. */
function clock(start = 1000) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
      return t;
    },
  };
}

/** Drives a machine to unhealthy at the clock's current time. */
function failTo(sm: HealthStateMachine, now: number, n = POLICY.failureThreshold): void {
  for (let i = 0; i < n; i++) sm.record(false, 'status 503', now);
}

describe('HealthStateMachine', () => {
  it('starts healthy with since 0, or as told', () => {
    const sm = new HealthStateMachine(POLICY);
    assert.equal(sm.state, 'healthy');
    assert.equal(sm.since, 0);
    assert.equal(sm.mayProbe(0), true);
    const down = new HealthStateMachine(POLICY, 'unhealthy', 500);
    assert.equal(down.state, 'unhealthy');
    assert.equal(down.since, 500);
    // An initially unhealthy machine cools down from its start time.
    assert.equal(down.mayProbe(5499), false);
    assert.equal(down.mayProbe(5500), true);
  });

  it('turns unhealthy after failureThreshold consecutive failures, with the last reason', () => {
    const c = clock();
    const sm = new HealthStateMachine(POLICY);
    assert.equal(sm.record(false, 'timeout', c.advance(100)), null);
    assert.equal(sm.record(false, 'timeout', c.advance(100)), null);
    assert.equal(sm.state, 'healthy');
    assert.equal(sm.failures, 2);
    const t = sm.record(false, 'connect ECONNREFUSED', c.advance(100));
    assert.deepEqual(t, { from: 'healthy', to: 'unhealthy', reason: '3 consecutive failures: connect ECONNREFUSED' });
    assert.equal(sm.state, 'unhealthy');
    assert.equal(sm.since, c.now());
  });

  it('a success resets the failure count', () => {
    const c = clock();
    const sm = new HealthStateMachine(POLICY);
    sm.record(false, 'timeout', c.advance(100));
    sm.record(false, 'timeout', c.advance(100));
    assert.equal(sm.record(true, 'status 200', c.advance(100)), null);
    assert.equal(sm.failures, 0);
    sm.record(false, 'timeout', c.advance(100));
    sm.record(false, 'timeout', c.advance(100));
    assert.equal(sm.state, 'healthy');
    assert.notEqual(sm.record(false, 'timeout', c.advance(100)), null);
    assert.equal(sm.state, 'unhealthy');
  });

  it('a threshold of 1 fails on the first failure and says so in the singular', () => {
    const sm = new HealthStateMachine({ failureThreshold: 1, successThreshold: 1, cooldownMs: 0 });
    assert.deepEqual(sm.record(false, 'status 503', 10), {
      from: 'healthy',
      to: 'unhealthy',
      reason: '1 consecutive failure: status 503',
    });
    assert.equal(sm.mayProbe(10), true, 'no cooldown');
    assert.deepEqual(sm.record(true, 'status 200', 20), {
      from: 'unhealthy',
      to: 'healthy',
      reason: '1 consecutive success',
    });
  });

  it('successes while healthy never transition', () => {
    const sm = new HealthStateMachine(POLICY);
    for (let i = 0; i < 10; i++) assert.equal(sm.record(true, 'status 200', i), null);
    assert.equal(sm.state, 'healthy');
  });

  it('blocks probes during the cooldown after becoming unhealthy', () => {
    const c = clock();
    const sm = new HealthStateMachine(POLICY);
    failTo(sm, c.now());
    const downAt = c.now();
    assert.equal(sm.mayProbe(downAt), false);
    assert.equal(sm.mayProbe(downAt + 4999), false);
    assert.equal(sm.mayProbe(downAt + 5000), true);
    assert.equal(sm.mayProbe(downAt + 60_000), true);
  });

  it('recovers after successThreshold consecutive successes once the cooldown is over', () => {
    const c = clock();
    const sm = new HealthStateMachine(POLICY);
    failTo(sm, c.now());
    c.advance(5000);
    assert.equal(sm.mayProbe(c.now()), true);
    assert.equal(sm.record(true, 'status 200', c.now()), null);
    assert.equal(sm.state, 'unhealthy');
    assert.equal(sm.successes, 1);
    const t = sm.record(true, 'status 200', c.advance(1000));
    assert.deepEqual(t, { from: 'unhealthy', to: 'healthy', reason: '2 consecutive successes' });
    assert.equal(sm.state, 'healthy');
    assert.equal(sm.since, c.now());
    assert.equal(sm.mayProbe(c.now()), true);
    // Back to healthy: the failure count starts over.
    sm.record(false, 'timeout', c.advance(1000));
    sm.record(false, 'timeout', c.advance(1000));
    assert.equal(sm.state, 'healthy');
  });

  it('a failure during recovery resets the success count and restarts the cooldown', () => {
    const c = clock();
    const sm = new HealthStateMachine(POLICY);
    failTo(sm, c.now());
    c.advance(5000);
    assert.equal(sm.record(true, 'status 200', c.now()), null);
    const failedAt = c.advance(1000);
    assert.equal(sm.record(false, 'status 503', failedAt), null);
    assert.equal(sm.state, 'unhealthy');
    assert.equal(sm.successes, 0);
    assert.equal(sm.mayProbe(failedAt + 4999), false, 'cooldown restarted');
    assert.equal(sm.mayProbe(failedAt + 5000), true);
    // One success is not enough again: the count started over.
    c.advance(5000);
    assert.equal(sm.record(true, 'status 200', c.now()), null);
    assert.notEqual(sm.record(true, 'status 200', c.advance(1000)), null);
    assert.equal(sm.state, 'healthy');
  });

  it('since only moves on transitions', () => {
    const sm = new HealthStateMachine(POLICY, 'healthy', 42);
    sm.record(true, 'status 200', 100);
    sm.record(false, 'timeout', 200);
    assert.equal(sm.since, 42);
    sm.record(false, 'timeout', 300);
    sm.record(false, 'timeout', 400);
    assert.equal(sm.since, 400);
    sm.record(false, 'timeout', 500);
    assert.equal(sm.since, 400, 'a failure while unhealthy is no transition');
  });
});
