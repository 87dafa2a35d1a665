import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdaptiveLimit, type AdaptivePolicy } from './adaptive-limit.js';

const policy: AdaptivePolicy = {
  enabled: true,
  minLimit: 2,
  maxLimit: 20,
  increaseStep: 3,
  decreasePercent: 50,
  highLatencyMs: 100,
};

describe('AdaptiveLimit', () => {
  it('starts at max_limit and sheds at the limit', () => {
    const a = new AdaptiveLimit(policy);
    assert.equal(a.limit, 20);
    assert.equal(a.tryAdmit(19), true);
    assert.equal(a.tryAdmit(20), false);
    assert.equal(a.shed, 1);
  });

  it('min = max = 1 admits one request at a time', () => {
    const a = new AdaptiveLimit({ ...policy, minLimit: 1, maxLimit: 1 });
    assert.equal(a.tryAdmit(0), true);
    for (let i = 1; i < 8; i++) assert.equal(a.tryAdmit(1), false);
    assert.equal(a.shed, 7);
  });

  it('cuts multiplicatively on slow samples, at most once per high_latency_ms', () => {
    let now = 1000;
    const a = new AdaptiveLimit(policy);
    a.onSample(150, now);
    assert.equal(a.limit, 10);
    a.onSample(500, now + 50); // same episode: no second cut
    a.onSample(null, now + 99);
    assert.equal(a.limit, 10);
    now += 100;
    a.onSample(null, now); // a failure counts as slow
    assert.equal(a.limit, 5);
    now += 100;
    a.onSample(100, now); // at the threshold is slow
    assert.equal(a.limit, 3);
    now += 100;
    a.onSample(100, now);
    assert.equal(a.limit, 2, 'floor at min_limit');
    now += 100;
    a.onSample(100, now);
    assert.equal(a.limit, 2);
    assert.equal(a.decreases, 4);
  });

  it('a small limit still shrinks by at least one', () => {
    const a = new AdaptiveLimit({ ...policy, minLimit: 1, maxLimit: 3, decreasePercent: 10 });
    a.onSample(1000, 0);
    assert.equal(a.limit, 2);
  });

  it('grows additively on fast samples up to max_limit', () => {
    const a = new AdaptiveLimit(policy);
    a.onSample(1000, 0);
    assert.equal(a.limit, 10);
    a.onSample(10, 1);
    assert.equal(a.limit, 13);
    a.onSample(99, 2);
    assert.equal(a.limit, 16);
    for (let i = 0; i < 5; i++) a.onSample(1, 3 + i);
    assert.equal(a.limit, 20);
  });

  it('disabled: admits everything and learns nothing', () => {
    const a = new AdaptiveLimit({ ...policy, enabled: false });
    assert.equal(a.tryAdmit(1_000_000), true);
    a.onSample(1000, 0);
    assert.equal(a.limit, 20);
    assert.equal(a.shed, 0);
  });

  it('an unchanged policy keeps the learned limit; changed bounds clamp it', () => {
    const a = new AdaptiveLimit(policy);
    a.onSample(1000, 0);
    assert.equal(a.limit, 10);
    a.configure({ ...policy });
    assert.equal(a.limit, 10, 'a re-applied snapshot does not reset to max');
    a.configure({ ...policy, increaseStep: 1 });
    assert.equal(a.limit, 10, 'other settings keep it too');
    a.configure({ ...policy, maxLimit: 8 });
    assert.equal(a.limit, 8);
    a.configure({ ...policy, minLimit: 12, maxLimit: 30 });
    assert.equal(a.limit, 12);
  });

  it('a new high_latency_ms applies to the next sample', () => {
    const a = new AdaptiveLimit(policy);
    a.configure({ ...policy, highLatencyMs: 1000 });
    a.onSample(500, 0);
    assert.equal(a.limit, 20);
  });

  it('turning it on starts from max_limit', () => {
    const a = new AdaptiveLimit(policy);
    a.onSample(1000, 0);
    a.configure({ ...policy, enabled: false });
    a.configure({ ...policy, enabled: true });
    assert.equal(a.limit, 20);
    a.onSample(1000, 1); // the cooldown restarts too
    assert.equal(a.limit, 10);
  });
});
