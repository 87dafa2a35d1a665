import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TICKET_KEY_BYTES, TICKET_KEY_ROTATION_MS, TicketKeyRotation } from './ticket-keys.js';

describe('TicketKeyRotation', () => {
  it('makes 48-byte random keys, a different one per process', () => {
    const a = new TicketKeyRotation(0);
    const b = new TicketKeyRotation(0);
    assert.equal(a.current.length, TICKET_KEY_BYTES);
    assert.ok(!Buffer.from(a.current).equals(Buffer.from(b.current)));
  });

  it('keeps the key until the period has passed, then rotates once per period', () => {
    let n = 0;
    const r = new TicketKeyRotation(1000, 100, () => new Uint8Array(TICKET_KEY_BYTES).fill(++n));
    const first = r.current;
    assert.equal(r.rotateIfDue(1000), null);
    assert.equal(r.rotateIfDue(1099), null);
    assert.equal(r.current, first);
    const second = r.rotateIfDue(1100);
    assert.ok(second);
    assert.equal(second[0], 2);
    assert.equal(r.current, second);
    assert.equal(r.rotateIfDue(1150), null, 'the period restarts at the rotation');
    assert.equal(r.rotateIfDue(1200)?.[0], 3);
  });

  it('rotates every 12 hours by default', () => {
    const r = new TicketKeyRotation(0);
    assert.equal(TICKET_KEY_ROTATION_MS, 12 * 3600 * 1000);
    assert.equal(r.rotateIfDue(TICKET_KEY_ROTATION_MS - 1), null);
    assert.ok(r.rotateIfDue(TICKET_KEY_ROTATION_MS));
  });
});
