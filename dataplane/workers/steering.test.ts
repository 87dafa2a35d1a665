import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { otherOwner, STEERED_ID_LEN, workerConnectionId } from './steering.js';

describe('worker connection ids', () => {
  it('byte 0 names the worker; the other 19 bytes differ from id to id', () => {
    const a = workerConnectionId(5);
    const b = workerConnectionId(5);
    assert.equal(a.length, STEERED_ID_LEN);
    assert.equal(a[0], 5);
    assert.notDeepEqual(a.subarray(1), b.subarray(1));
  });

  it('otherOwner: another worker in range, else null', () => {
    const w = { self: 1, count: 4 };
    assert.equal(otherOwner(workerConnectionId(3), w), 3);
    assert.equal(otherOwner(workerConnectionId(1), w), null);
    assert.equal(otherOwner(workerConnectionId(4), w), null, 'no worker 4 of 4');
    assert.equal(otherOwner(new Uint8Array(8), w), null, 'not an id Spooky issues');
  });
});
