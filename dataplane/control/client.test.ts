import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay } from './client.js';

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the cap, with jitter in the upper half', () => {
    const low = (n: number) => backoffDelay(n, 200, 5000, () => 0);
    const high = (n: number) => backoffDelay(n, 200, 5000, () => 1);
    assert.deepEqual([0, 1, 2, 3, 4, 5, 10].map(low), [100, 200, 400, 800, 1600, 2500, 2500]);
    assert.deepEqual([0, 1, 2, 3, 4, 5, 10].map(high), [200, 400, 800, 1600, 3200, 5000, 5000]);
    // Huge attempt counts neither overflow nor exceed the cap.
    assert.equal(
      backoffDelay(10_000, 200, 5000, () => 1),
      5000,
    );
  });
});
