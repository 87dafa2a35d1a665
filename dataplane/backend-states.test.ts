import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BackendStates } from './backend-states.js';

const down = (backendId: string) => ({ backendId, healthy: false, drained: false });
const up = (backendId: string) => ({ backendId, healthy: true, drained: false });

describe('BackendStates', () => {
  it('ignores a stale partial update', () => {
    const s = new BackendStates();
    assert.equal(s.update(5, [down('a')]), true);
    assert.equal(s.update(4, [up('a')]), false);
    assert.equal(s.eligible('a'), false);
  });

  it('a full table from a restarted control plane (epoch 1 again) replaces everything held', () => {
    const s = new BackendStates();
    s.update(40, [down('a'), down('b')]);
    assert.equal(s.update(1, [up('a')], true), true);
    assert.equal(s.eligible('a'), true);
    assert.equal(s.eligible('b'), true, 'a backend the control plane no longer lists keeps no state');
    assert.equal(s.epoch, 1);
    assert.equal(s.update(2, [down('a')]), true, 'partial updates follow the new epoch');
    assert.equal(s.eligible('a'), false);
  });

  it('a state object taken before updates follows them (a host reads it without a lookup)', () => {
    const s = new BackendStates();
    const a = s.stateOf('a');
    assert.deepEqual({ ...a }, { healthy: true, drained: false });
    s.update(1, [{ backendId: 'a', healthy: true, drained: true }]);
    assert.equal(a.drained, true);
    s.update(2, [down('a')], true);
    assert.deepEqual({ ...a }, { healthy: false, drained: false });
    s.update(1, [], true);
    assert.deepEqual({ ...a }, { healthy: true, drained: false }, 'a full table without it puts it back in service');
  });
});
