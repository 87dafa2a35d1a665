import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RetryBudget } from './retry-budget.js';

function start(b: RetryBudget, requests: number): void {
  for (let i = 0; i < requests; i++) b.requestStarted();
}

function retries(b: RetryBudget): number {
  let n = 0;
  while (b.tryStartRetry()) n++;
  return n;
}

describe('RetryBudget', () => {
  it('allows 20% of 100 active requests → 20 retries', () => {
    const b = new RetryBudget(20);
    start(b, 100);
    assert.equal(b.active, 100);
    assert.equal(retries(b), 20);
    assert.equal(b.retriesActive, 20);
    assert.equal(b.tryStartRetry(), false);
  });

  it('keeps a floor of 3 when few requests are active', () => {
    const b = new RetryBudget(20);
    assert.equal(retries(b), 3);
    const c = new RetryBudget(20);
    start(c, 7); // 20% of 7 = 1.4
    assert.equal(retries(c), 3);
  });

  it('honours a custom floor, and a 0% budget leaves only the floor', () => {
    const b = new RetryBudget(0, 1);
    start(b, 1000);
    assert.equal(retries(b), 1);
    const c = new RetryBudget(50, 0);
    assert.equal(c.tryStartRetry(), false);
    start(c, 4);
    assert.equal(retries(c), 2);
  });

  it('frees budget when retries end', () => {
    const b = new RetryBudget(20);
    start(b, 100);
    assert.equal(retries(b), 20);
    b.retryEnded();
    b.retryEnded();
    assert.equal(b.retriesActive, 18);
    assert.equal(retries(b), 2);
  });

  it('shrinks with the active requests', () => {
    const b = new RetryBudget(20);
    start(b, 50);
    assert.equal(retries(b), 10);
    for (let i = 0; i < 40; i++) b.requestEnded();
    for (let i = 0; i < 8; i++) b.retryEnded();
    assert.equal(b.retriesActive, 2);
    assert.equal(retries(b), 1); // limit is the floor, 3
  });

  it('never counts below zero', () => {
    const b = new RetryBudget(20);
    b.requestEnded();
    b.retryEnded();
    assert.equal(b.active, 0);
    assert.equal(b.retriesActive, 0);
    b.requestStarted();
    assert.equal(b.active, 1);
  });
});
