import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Brownout, type BrownoutPolicy } from './brownout.js';

const policy: BrownoutPolicy = {
  enabled: true,
  triggerPercent: 80,
  recoverPercent: 50,
  shedPercent: 100,
  coreRoutes: ['core'],
};

describe('Brownout', () => {
  it('activates at trigger_percent and recovers at recover_percent (hysteresis)', () => {
    const b = new Brownout(policy);
    assert.equal(b.observe(7, 10, 0), false);
    assert.equal(b.activeSince, null);
    assert.equal(b.observe(8, 10, 5), true);
    assert.equal(b.activeSince, 5);
    assert.equal(b.observe(6, 10, 10), true, 'between recover and trigger: stays active');
    assert.equal(b.observe(7, 10, 15), true);
    assert.equal(b.activeSince, 5);
    assert.equal(b.observe(5, 10, 20), false);
    assert.equal(b.activeSince, null);
    assert.equal(b.observe(7, 10, 25), false, 'between: stays inactive');
    assert.equal(b.observe(10, 10, 30), true);
    assert.equal(b.activeSince, 30);
    assert.equal(b.activations, 2);
  });

  it('sheds non-core routes only while active', () => {
    const b = new Brownout(policy);
    assert.equal(b.shouldShed('other'), false);
    b.observe(9, 10, 0);
    assert.equal(b.shouldShed('other'), true);
    assert.equal(b.shouldShed('core'), false);
    assert.equal(b.shouldShed('other'), true);
    assert.equal(b.shed, 2);
    b.observe(0, 10, 1);
    assert.equal(b.shouldShed('other'), false);
  });

  it('shed_percent spreads the refusals evenly', () => {
    const b = new Brownout({ ...policy, shedPercent: 25 });
    b.observe(10, 10, 0);
    const shed = Array.from({ length: 8 }, () => b.shouldShed('x'));
    assert.deepEqual(shed, [false, false, false, true, false, false, false, true]);
  });

  it('with no core routes every route is shed', () => {
    const b = new Brownout({ ...policy, coreRoutes: [] });
    b.observe(10, 10, 0);
    assert.equal(b.shouldShed('core'), true);
  });

  it('a zero capacity counts as full', () => {
    const b = new Brownout(policy);
    assert.equal(b.observe(0, 0, 0), true);
  });

  it('disabled: never active; turning it off ends an active brownout', () => {
    const off = new Brownout({ ...policy, enabled: false });
    assert.equal(off.observe(10, 10, 0), false);
    assert.equal(off.shouldShed('x'), false);
    const b = new Brownout(policy);
    b.observe(10, 10, 0);
    b.configure({ ...policy });
    assert.equal(b.active, true, 'the same settings keep it active');
    b.configure({ ...policy, coreRoutes: ['core', 'other'] });
    assert.equal(b.shouldShed('other'), false, 'new core routes apply at once');
    b.configure({ ...policy, enabled: false });
    assert.equal(b.active, false);
    assert.equal(b.activeSince, null);
  });

  it('new thresholds are judged at the next observation', () => {
    const b = new Brownout(policy);
    b.observe(8, 10, 0);
    b.configure({ ...policy, triggerPercent: 95, recoverPercent: 90 });
    assert.equal(b.active, true);
    assert.equal(b.observe(8, 10, 1), false);
  });
});
