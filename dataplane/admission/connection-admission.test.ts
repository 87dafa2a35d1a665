import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type AdmissionLease,
  type AdmissionLimits,
  type AdmissionVerdict,
  ConnectionAdmission,
} from './connection-admission.js';

const LIMITS: AdmissionLimits = {
  maxActive: 100,
  newPerSec: 10,
  newBurst: 10,
  perSourceMaxActive: 5,
  perSourceNewPerSec: 2,
  perSourceNewBurst: 4,
};

const attempt = (host: string, addressValidated = false) => ({ peer: { host }, addressValidated });

function lease(v: AdmissionVerdict): AdmissionLease {
  assert.ok(v.ok, `admitted (refused: ${v.ok ? '' : v.reason})`);
  return v.lease;
}

function reason(v: AdmissionVerdict): string {
  return v.ok ? 'admitted' : v.reason;
}

/** Admits `n` attempts at `now`, returning how many got in and the reasons of the rest. */
function burst(a: ConnectionAdmission, n: number, host: string, validated: boolean, now: number) {
  const leases: AdmissionLease[] = [];
  const refused: string[] = [];
  for (let i = 0; i < n; i++) {
    const v = a.admit(attempt(host, validated), now);
    if (v.ok) leases.push(v.lease);
    else refused.push(v.reason);
  }
  return { leases, refused };
}

describe('ConnectionAdmission', () => {
  it('admits a source up to its burst, then refuses it on rate while others still get in', () => {
    const a = new ConnectionAdmission({ ...LIMITS, perSourceMaxActive: 100 }, 0);
    const flood = burst(a, 10, '192.0.2.66', false, 0);
    assert.equal(flood.leases.length, 4);
    assert.deepEqual(new Set(flood.refused), new Set(['source_connection_rate']));
    assert.equal(reason(a.admit(attempt('192.0.2.1'), 0)), 'admitted');
    // The refused attempts took nothing from the global bucket: 10 - 4 - 1 tokens are left.
    assert.equal(burst(a, 5, '192.0.2.2', false, 0).leases.length, 4);
    assert.equal(burst(a, 5, '192.0.2.3', false, 0).leases.length, 1);
  });

  it('refills a source at its rate', () => {
    const a = new ConnectionAdmission(LIMITS, 0);
    for (const l of burst(a, 4, '192.0.2.66', true, 0).leases) l.release();
    assert.equal(reason(a.admit(attempt('192.0.2.66', true), 0)), 'source_connection_rate');
    assert.equal(reason(a.admit(attempt('192.0.2.66', true), 499)), 'source_connection_rate');
    assert.equal(reason(a.admit(attempt('192.0.2.66', true), 500)), 'admitted'); // 2/s: one token per 500 ms
    assert.equal(reason(a.admit(attempt('192.0.2.66', true), 500)), 'source_connection_rate');
  });

  it('caps the open connections of one source; a release makes room', () => {
    const a = new ConnectionAdmission({ ...LIMITS, perSourceNewBurst: 100, perSourceNewPerSec: 100 }, 0);
    const held = burst(a, 8, '192.0.2.66', true, 0);
    assert.equal(held.leases.length, 5);
    assert.deepEqual(new Set(held.refused), new Set(['source_connection_cap']));
    assert.equal(reason(a.admit(attempt('192.0.2.1', true), 0)), 'admitted', 'another source is not affected');
    held.leases[0].release();
    held.leases[0].release(); // idempotent: frees one slot, not two
    assert.equal(reason(a.admit(attempt('192.0.2.66', true), 0)), 'admitted');
    assert.equal(reason(a.admit(attempt('192.0.2.66', true), 0)), 'source_connection_cap');
  });

  it('counts IPv6 sources by /64', () => {
    const a = new ConnectionAdmission(LIMITS, 0);
    for (let i = 1; i <= 4; i++) lease(a.admit(attempt(`2001:db8:1:2::${i}`, true), 0));
    assert.equal(reason(a.admit(attempt('2001:db8:1:2:ffff::9', true), 0)), 'source_connection_rate');
    assert.equal(reason(a.admit(attempt('2001:db8:1:3::1', true), 0)), 'admitted');
  });

  it('lets validated attempts in when unvalidated ones have emptied the global bucket', () => {
    const a = new ConnectionAdmission({ ...LIMITS, perSourceNewBurst: 100, perSourceMaxActive: 100 }, 0);
    // A spoofed flood from many addresses empties the global bucket.
    for (let i = 0; i < 20; i++) a.admit(attempt(`198.51.100.${i}`), 0);
    assert.equal(reason(a.admit(attempt('192.0.2.1'), 0)), 'connection_rate');
    assert.equal(reason(a.admit(attempt('192.0.2.1', true), 0)), 'admitted');
    // ...and do not draw from it.
    for (let i = 0; i < 5; i++) lease(a.admit(attempt('192.0.2.1', true), 0));
    assert.equal(reason(a.admit(attempt('192.0.2.9'), 1000)), 'admitted', 'refilled by 10 tokens in 1 s');
  });

  it("keeps a source's validated share apart from its unvalidated one", () => {
    const a = new ConnectionAdmission(LIMITS, 0);
    // Spoofed Initials with the victim's address use up its unvalidated share...
    burst(a, 10, '192.0.2.7', false, 0);
    assert.equal(reason(a.admit(attempt('192.0.2.7', false), 0)), 'source_connection_rate');
    // ...never the share of its validated (TCP, Retry) connections.
    assert.equal(reason(a.admit(attempt('192.0.2.7', true), 0)), 'admitted');
  });

  it('caps open connections globally, for validated and unvalidated alike', () => {
    const a = new ConnectionAdmission({ ...LIMITS, maxActive: 3 }, 0);
    const leases = [
      lease(a.admit(attempt('192.0.2.1', true), 0)),
      lease(a.admit(attempt('192.0.2.2'), 0)),
      lease(a.admit(attempt('192.0.2.3', true), 0)),
    ];
    assert.equal(a.active, 3);
    assert.equal(reason(a.admit(attempt('192.0.2.4', true), 0)), 'connection_cap');
    assert.equal(reason(a.admit(attempt('192.0.2.4'), 0)), 'connection_cap');
    leases[1].release();
    assert.equal(a.active, 2);
    assert.equal(reason(a.admit(attempt('192.0.2.4'), 0)), 'admitted');
  });

  it('forgets idle sources once their bucket is full again, and keeps busy ones', () => {
    const a = new ConnectionAdmission(LIMITS, 0);
    const kept = lease(a.admit(attempt('192.0.2.1', true), 0));
    for (const l of burst(a, 4, '192.0.2.2', true, 0).leases) l.release();
    assert.equal(a.trackedSources(0), 2);
    a.admit(attempt('192.0.2.3', true), 1000); // sweeps: 192.0.2.2 has 2 of 4 tokens back
    assert.equal(a.trackedSources(1000), 3);
    a.admit(attempt('192.0.2.4', true), 2000); // 192.0.2.2 is full again: forgotten
    assert.equal(a.trackedSources(2000), 3, '192.0.2.1 (open), .3 (open), .4 (open)');
    kept.release();
    a.admit(attempt('192.0.2.5', true), 3000);
    assert.equal(a.trackedSources(3000), 3, '.1 forgotten, .5 added');
  });

  it('forgets idle sources when asked for the count, with no new connection coming', () => {
    const a = new ConnectionAdmission(LIMITS, 0);
    for (const l of burst(a, 4, '192.0.2.2', true, 0).leases) l.release();
    assert.equal(a.trackedSources(0), 1);
    assert.equal(a.trackedSources(60_000), 0, 'the gauge returns to 0 after the load');
  });

  it('a refused attempt leaves no state behind', () => {
    const a = new ConnectionAdmission({ ...LIMITS, newBurst: 1, newPerSec: 1 }, 0);
    lease(a.admit(attempt('192.0.2.1'), 0));
    for (let i = 0; i < 1000; i++)
      assert.equal(reason(a.admit(attempt(`10.0.${i >> 8}.${i & 255}`), 0)), 'connection_rate');
    assert.equal(a.trackedSources(0), 1);
    assert.equal(a.active, 1);
  });

  it('applies new limits live, keeping open connections counted', () => {
    const a = new ConnectionAdmission(LIMITS, 0);
    const held = burst(a, 4, '192.0.2.1', true, 0).leases;
    a.configure({ ...LIMITS, perSourceMaxActive: 4, perSourceNewBurst: 10 }, 0);
    assert.equal(reason(a.admit(attempt('192.0.2.1', true), 0)), 'source_connection_cap');
    held[0].release();
    assert.equal(
      reason(a.admit(attempt('192.0.2.1', true), 0)),
      'admitted',
      'a fresh (full) bucket after the rate change',
    );
    a.configure({ ...LIMITS, maxActive: 4 }, 0);
    assert.equal(reason(a.admit(attempt('192.0.2.2', true), 0)), 'connection_cap');
  });
});
