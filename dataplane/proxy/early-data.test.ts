import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { earlyDataOutcome } from './early-data.js';

describe('earlyDataOutcome', () => {
  const on = { quic_0rtt: true, early_data_methods: ['GET', 'HEAD'] };

  it('has nothing to decide for requests after the handshake', () => {
    assert.equal(earlyDataOutcome(false, 'POST', on), null);
    assert.equal(earlyDataOutcome(false, 'GET', { ...on, quic_0rtt: false }), null);
  });

  it('accepts listed methods and answers 425 to the rest', () => {
    assert.equal(earlyDataOutcome(true, 'GET', on), 'accepted');
    assert.equal(earlyDataOutcome(true, 'HEAD', on), 'accepted');
    for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'get']) {
      assert.equal(earlyDataOutcome(true, m, on), 'rejected_425', m);
    }
    assert.equal(earlyDataOutcome(true, 'OPTIONS', { ...on, early_data_methods: ['OPTIONS'] }), 'accepted');
    assert.equal(earlyDataOutcome(true, 'GET', { ...on, early_data_methods: [] }), 'rejected_425');
  });

  it('refuses all early data once quic_0rtt is off', () => {
    assert.equal(earlyDataOutcome(true, 'GET', { ...on, quic_0rtt: false }), 'rejected_425');
  });
});
