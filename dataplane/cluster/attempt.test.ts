import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CircuitBreaker } from '../resilience/circuit-breaker.js';
import { UpstreamError, type UpstreamErrorKind } from '../upstream/errors.js';
import { accountAttempt, type BreakerTarget, checkResponse, circuitBreaker, MAX_INTERIM_RESPONSES } from './attempt.js';
import { compose } from './dispatch.js';
import { FakeDispatcher, RecordingHandler, request } from './fake-dispatcher.js';

/** A real breaker behind the stage, on a clock the test moves. */
function breakerStage(consecutiveFailures = 2) {
  const clock = { now: 0 };
  const breaker = new CircuitBreaker({ enabled: true, consecutiveFailures, openMs: 1000, halfOpenProbes: 1 });
  const latencies: Array<number | null> = [];
  const counts = { cancels: 0 };
  const target: BreakerTarget = {
    record: (ok, ms) => {
      latencies.push(ms);
      if (ok) breaker.onSuccess(clock.now);
      else breaker.onFailure(clock.now);
    },
    onCancel: () => {
      counts.cancels++;
      breaker.onCancel();
    },
  };
  const backend = new FakeDispatcher();
  const dispatch = compose(
    backend.fn,
    circuitBreaker(target, () => clock.now),
  );
  /** One attempt as the cluster makes it: take a slot first. */
  const send = () => {
    assert.equal(breaker.tryAcquire(clock.now), true, 'the breaker lets the attempt through');
    const h = new RecordingHandler();
    const ex = dispatch(request(), h);
    return { ex, h, fake: backend.last };
  };
  return { clock, breaker, send, latencies, counts };
}

describe('circuit breaker stage', () => {
  it('failures that speak of the backend open it', () => {
    for (const kind of ['connect', 'refused', 'headers_timeout', 'reset', 'protocol'] as UpstreamErrorKind[]) {
      const s = breakerStage();
      for (let i = 0; i < 2; i++) s.send().fake.handler.onError(new UpstreamError(kind, kind));
      assert.equal(s.breaker.state(s.clock.now), 'open', kind);
    }
  });

  it('failures a client can cause do not, and free the half-open probe', () => {
    for (const kind of ['idle_timeout', 'request_rejected', 'bad_response', 'aborted'] as UpstreamErrorKind[]) {
      const s = breakerStage();
      for (let i = 0; i < 5; i++) s.send().fake.handler.onError(new UpstreamError(kind, kind));
      assert.equal(s.breaker.state(s.clock.now), 'closed', kind);
    }
    const s = breakerStage();
    for (let i = 0; i < 2; i++) s.send().fake.handler.onError(new UpstreamError('connect', 'x'));
    s.clock.now = 1000;
    s.send().fake.handler.onError(new UpstreamError('request_rejected', 'x'));
    assert.equal(s.breaker.tryAcquire(s.clock.now), true, 'the probe slot came back');
  });

  it('a response closes it and reports the latency from dispatch to headers', () => {
    const s = breakerStage();
    s.send().fake.handler.onError(new UpstreamError('connect', 'x'));
    const { fake, h } = s.send();
    s.clock.now = 25;
    fake.handler.onResponseStart(204, [], true);
    fake.handler.onComplete(null);
    assert.deepEqual(s.latencies, [null, 25]);
    assert.deepEqual(h.events, ['response 204 end', 'complete']);
    s.send().fake.handler.onError(new UpstreamError('connect', 'x'));
    assert.equal(s.breaker.state(s.clock.now), 'closed', 'the success reset the count');
  });

  it('an abort before the end frees the probe; an abort after the end does nothing', () => {
    const s = breakerStage(1);
    s.send().fake.handler.onError(new UpstreamError('connect', 'x'));
    s.clock.now = 1000;
    const probe = s.send();
    assert.equal(s.breaker.tryAcquire(s.clock.now), false, 'one probe at a time');
    probe.ex.abort();
    assert.equal(probe.fake.aborted, true);
    assert.equal(s.breaker.tryAcquire(s.clock.now), true, 'the aborted probe gave its slot back');

    const t = breakerStage(1);
    const done = t.send();
    done.fake.handler.onResponseStart(200, [], false);
    done.fake.handler.onComplete(null);
    done.ex.abort();
    assert.equal(t.counts.cancels, 0);
  });
});

describe('response check stage', () => {
  function stage() {
    const backend = new FakeDispatcher();
    const h = new RecordingHandler();
    const ex = compose(backend.fn, checkResponse('b1'))(request(), h);
    return { fake: backend.last, h, ex };
  }

  it('fails a status outside its class with bad_response and aborts the backend exchange', () => {
    for (const [interim, status] of [
      [false, 600],
      [false, 199],
      [true, 200],
      [true, 99],
    ] as const) {
      const s = stage();
      if (interim) s.fake.handler.onInformational(status, []);
      else s.fake.handler.onResponseStart(status, [], false);
      assert.deepEqual(s.h.events, ['error bad_response'], `${status}`);
      assert.equal(s.fake.aborted, true);
      s.fake.handler.onComplete(null);
      assert.deepEqual(s.h.events, ['error bad_response'], 'nothing after the error');
    }
  });

  it(`relays ${MAX_INTERIM_RESPONSES} interim responses and fails the next`, () => {
    const s = stage();
    for (let i = 0; i <= MAX_INTERIM_RESPONSES; i++) s.fake.handler.onInformational(103, []);
    assert.equal(s.h.events.filter((e) => e === 'info 103').length, MAX_INTERIM_RESPONSES);
    assert.equal(s.h.events.at(-1), 'error bad_response');
  });
});

describe('attempt accounting stage', () => {
  it('releases once, with the outcome, however the attempt ends', () => {
    for (const end of ['complete', 'error', 'abort', 'complete+abort'] as const) {
      const outcomes: string[] = [];
      const responded: number[] = [];
      let released = false;
      const lease = {
        responded: (ms: number) => responded.push(ms),
        release: (o: string) => {
          if (released) return;
          released = true;
          outcomes.push(o);
        },
      };
      const backend = new FakeDispatcher();
      const ex = compose(
        backend.fn,
        accountAttempt(lease, () => 7),
      )(request(), new RecordingHandler());
      const h = backend.last.handler;
      if (end === 'complete' || end === 'complete+abort') {
        h.onResponseStart(200, [], false);
        h.onComplete(null);
      }
      if (end === 'error') h.onError(new UpstreamError('reset', 'x'));
      if (end === 'abort' || end === 'complete+abort') ex.abort();
      const want = { complete: 'ok', 'complete+abort': 'ok', error: 'reset', abort: 'aborted' }[end];
      assert.deepEqual(outcomes, [want], end);
    }
  });
});
