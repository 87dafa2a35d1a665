import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RetryBudget } from '../resilience/retry-budget.js';
import { UpstreamError, type UpstreamErrorKind } from '../upstream/errors.js';
import { compose, NoBackendError } from './dispatch.js';
import { FakeDispatcher, RecordingHandler, request } from './fake-dispatcher.js';
import { type RetryCondition, type RetryPolicy, retry } from './retry.js';

const ALL: RetryCondition[] = ['connect-failure', 'refused-stream', 'reset-before-response'];

function setup(policy: Partial<RetryPolicy> = {}, budget = new RetryBudget(100, 10)) {
  const backend = new FakeDispatcher();
  const reasons: string[] = [];
  const dispatch = compose(
    backend.fn,
    retry({ policy: { attempts: 1, on: ALL, ...policy }, budget, onRetry: (r) => reasons.push(r) }),
  );
  return { backend, dispatch, reasons, budget };
}

const fail = (kind: UpstreamErrorKind) => new UpstreamError(kind, kind);

describe('retry stage', () => {
  it('retries a GET after a connect failure and relays the second attempt only', () => {
    const { backend, dispatch, reasons, budget } = setup();
    const h = new RecordingHandler();
    dispatch(request('GET'), h);
    backend.last.handler.onError(fail('connect'));
    assert.equal(backend.exchanges.length, 2);
    assert.deepEqual(reasons, ['connect-failure']);
    assert.equal(budget.retriesActive, 1, 'the retry holds budget while it runs');
    backend.last.handler.onResponseStart(200, [], false);
    backend.last.handler.onComplete(null);
    assert.deepEqual(h.events, ['response 200', 'complete']);
    assert.equal(budget.retriesActive, 0);
    assert.equal(budget.active, 0);
  });

  it('retries each configured condition, and nothing else', () => {
    const cases: Array<[UpstreamErrorKind, boolean]> = [
      ['connect', true],
      ['refused', true],
      ['reset', true],
      ['headers_timeout', false],
      ['idle_timeout', false],
      ['protocol', false],
      ['request_rejected', false],
      ['bad_response', false],
    ];
    for (const [kind, retried] of cases) {
      const { backend, dispatch } = setup();
      const h = new RecordingHandler();
      dispatch(request('GET'), h);
      backend.last.handler.onError(fail(kind));
      assert.equal(backend.exchanges.length, retried ? 2 : 1, kind);
      assert.deepEqual(h.events, retried ? [] : [`error ${kind}`], kind);
    }
  });

  it('retries only on the conditions `on` names', () => {
    const { backend, dispatch } = setup({ on: ['refused-stream'] });
    const h = new RecordingHandler();
    dispatch(request('GET'), h);
    backend.last.handler.onError(fail('connect'));
    assert.equal(backend.exchanges.length, 1);
    assert.deepEqual(h.events, ['error connect']);
  });

  it('never retries a method that is not idempotent', () => {
    for (const method of ['POST', 'PATCH']) {
      const { backend, dispatch } = setup();
      dispatch(request(method), new RecordingHandler());
      backend.last.handler.onError(fail('connect'));
      assert.equal(backend.exchanges.length, 1, method);
    }
    for (const method of ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']) {
      const { backend, dispatch } = setup();
      dispatch(request(method), new RecordingHandler());
      backend.last.handler.onError(fail('connect'));
      assert.equal(backend.exchanges.length, 2, method);
    }
  });

  it('never retries once request body bytes went to the failed backend', () => {
    const { backend, dispatch } = setup({ attempts: 3 });
    const h = new RecordingHandler();
    const ex = dispatch(request('PUT', true), h);
    ex.write(new Uint8Array(0));
    backend.last.handler.onError(fail('connect'));
    assert.equal(backend.exchanges.length, 2, 'an empty chunk sends nothing');
    ex.write(new Uint8Array(3));
    backend.last.handler.onError(fail('connect'));
    assert.equal(backend.exchanges.length, 2);
    assert.deepEqual(h.events, ['error connect']);
  });

  it('never retries after a response head reached the client', () => {
    const { backend, dispatch } = setup();
    const h = new RecordingHandler();
    dispatch(request('GET'), h);
    backend.last.handler.onInformational(103, []);
    backend.last.handler.onResponseStart(200, [], false);
    backend.last.handler.onData(new Uint8Array(5));
    backend.last.handler.onError(fail('reset'));
    assert.equal(backend.exchanges.length, 1);
    assert.deepEqual(h.events, ['info 103', 'response 200', 'data 5', 'error reset']);
  });

  it('stops after `attempts` extra attempts', () => {
    const { backend, dispatch, budget } = setup({ attempts: 2 });
    const h = new RecordingHandler();
    dispatch(request('GET'), h);
    for (let i = 0; i < 3; i++) backend.last.handler.onError(fail('refused'));
    assert.equal(backend.exchanges.length, 3);
    assert.deepEqual(h.events, ['error refused']);
    assert.equal(budget.retriesActive, 0);
    assert.equal(budget.active, 0);
  });

  it('does not retry when the retry budget is spent, and frees it when a retry ends', () => {
    const budget = new RetryBudget(0, 1); // one retry in flight at a time
    const a = setup({}, budget);
    const b = setup({}, budget);
    a.dispatch(request('GET'), new RecordingHandler());
    const hb = new RecordingHandler();
    b.dispatch(request('GET'), hb);
    a.backend.last.handler.onError(fail('connect'));
    assert.equal(a.backend.exchanges.length, 2, 'first retry fits the budget');
    b.backend.last.handler.onError(fail('connect'));
    assert.equal(b.backend.exchanges.length, 1, 'second one does not');
    assert.deepEqual(hb.events, ['error connect']);
    a.backend.last.handler.onComplete(null);
    assert.equal(budget.retriesActive, 0);
    const c = setup({}, budget);
    c.dispatch(request('GET'), new RecordingHandler());
    c.backend.last.handler.onError(fail('connect'));
    assert.equal(c.backend.exchanges.length, 2, 'budget is free again');
  });

  it('reports the failure that caused the retry when no other backend can take it', () => {
    let calls = 0;
    const backend = new FakeDispatcher();
    const dispatch = compose(
      (req, handler) => {
        if (calls++ === 0) return backend.dispatch(req, handler);
        handler.onError(new NoBackendError('no_healthy_backend'));
        return backend.dispatch(req, handler); // ignored: the error came first
      },
      retry({ policy: { attempts: 3, on: ALL }, budget: new RetryBudget(100, 10) }),
    );
    const h = new RecordingHandler();
    dispatch(request('GET'), h);
    const cause = fail('connect');
    backend.last.handler.onError(cause);
    assert.equal(calls, 2);
    assert.equal(h.errors.length, 1);
    assert.equal(h.errors[0], cause, 'the 502 of the failed attempt, not a 503 shed');
  });

  it('a first attempt without a backend is reported as such (the caller sheds)', () => {
    const budget = new RetryBudget(100, 10);
    const dispatch = compose(
      (_req, handler) => {
        handler.onError(new NoBackendError('circuit_open'));
        return new FakeDispatcher().dispatch(request(), handler);
      },
      retry({ policy: { attempts: 3, on: ALL }, budget }),
    );
    const h = new RecordingHandler();
    dispatch(request('GET'), h);
    assert.equal(h.errors.length, 1);
    assert.ok(h.errors[0] instanceof NoBackendError);
    assert.equal(budget.active, 0);
  });

  it('a caller waiting for body room on a failed attempt is told to ask the retry attempt', () => {
    const { backend, dispatch } = setup();
    const ex = dispatch(request('PUT', true), new RecordingHandler());
    let drains = 0;
    ex.onRequestDrain = () => drains++;
    backend.last.room = 0;
    assert.equal(ex.bodyRoom(), 0, 'nothing written: the caller waits');
    backend.last.handler.onError(fail('connect'));
    assert.equal(backend.exchanges.length, 2);
    assert.equal(drains, 1);
    assert.equal(ex.bodyRoom(), Number.POSITIVE_INFINITY, 'the new attempt answers');
  });

  it('replays the end of the request body on the retry attempt', () => {
    const { backend, dispatch } = setup();
    const ex = dispatch(request('PUT', true), new RecordingHandler());
    ex.end([['x-trailer', '1']]);
    backend.last.handler.onError(fail('connect'));
    assert.equal(backend.exchanges.length, 2);
    assert.equal(backend.last.ended, true);
    assert.deepEqual(backend.last.trailers, [['x-trailer', '1']]);
  });

  it('an abort stops the current attempt and ends the request in the budget', () => {
    const { backend, dispatch, budget } = setup();
    const ex = dispatch(request('GET'), new RecordingHandler());
    backend.last.handler.onError(fail('connect'));
    ex.abort();
    assert.equal(backend.last.aborted, true);
    assert.equal(budget.retriesActive, 0);
    assert.equal(budget.active, 0);
  });
});
