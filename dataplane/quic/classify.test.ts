import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { otherOwner } from '../workers/steering.js';
import { classifyDatagram, connectionKey } from './classify.js';
import { quiche } from './quiche.js';

function longHeader(firstByte: number, version: number, size: number, dcidLen = 8): Buffer {
  const b = Buffer.alloc(size, 0x5a);
  b[0] = firstByte;
  b.writeUInt32BE(version, 1);
  b[5] = dcidLen;
  b[6 + dcidLen] = 8;
  if (firstByte === 0xc0) {
    b[7 + dcidLen + 8] = 0; // token length
    b[8 + dcidLen + 8] = 0x44; // length (varint, 2 bytes)
    b[9 + dcidLen + 8] = 0x00;
  }
  return b;
}
const none = () => false;

describe('classifyDatagram: nothing a datagram holds can throw', () => {
  it('drops garbage and truncated headers', () => {
    for (const b of [Buffer.alloc(0), Buffer.from([0xc0]), Buffer.from([0xc0, 0, 0, 0, 1]), Buffer.alloc(3, 0xff)]) {
      assert.deepEqual(classifyDatagram(b, true, none), { kind: 'drop', reason: 'garbage' });
    }
  });
  it('asks for version negotiation on an unknown version in a full-size datagram only', () => {
    assert.equal(classifyDatagram(longHeader(0xc0, 0x1a2a3a4a, 1200), true, none).kind, 'negotiate');
    assert.deepEqual(classifyDatagram(longHeader(0xc0, 0x1a2a3a4a, 100), true, none), {
      kind: 'drop',
      reason: 'unsupported_version_small',
    });
  });
  it('drops 0-RTT and Handshake packets for unknown connections', () => {
    assert.deepEqual(classifyDatagram(longHeader(0xd0, 1, 1200), true, none), {
      kind: 'drop',
      reason: 'unknown_connection',
    });
    assert.deepEqual(classifyDatagram(longHeader(0xe0, 1, 1200), true, none), {
      kind: 'drop',
      reason: 'unknown_connection',
    });
  });
  it('drops short Initials and too-short destination ids, accepts a proper Initial', () => {
    assert.deepEqual(classifyDatagram(longHeader(0xc0, 1, 600), true, none), { kind: 'drop', reason: 'short_initial' });
    assert.deepEqual(classifyDatagram(longHeader(0xc0, 1, 1200, 4), true, none), {
      kind: 'drop',
      reason: 'short_dcid',
    });
    assert.equal(classifyDatagram(longHeader(0xc0, 1, 1200), true, none).kind, 'new');
  });
  it('routes known connection ids and never accepts as a client', () => {
    const pkt = longHeader(0xc0, 1, 1200);
    const key = connectionKey(pkt.subarray(6, 14));
    assert.deepEqual(
      classifyDatagram(pkt, true, (k) => k === key),
      { kind: 'known', key },
    );
    assert.deepEqual(classifyDatagram(pkt, false, none), { kind: 'drop', reason: 'unknown_connection' });
  });
  it('routes 0-RTT packets sent to the id of an accepted Initial to that connection', () => {
    // The endpoint registers the client's original destination id when it accepts the Initial,
    // so 0-RTT datagrams that follow it (or come after a Retry, to the Retry's id) are delivered.
    const zeroRtt = longHeader(0xd0, 1, 1200);
    const key = connectionKey(zeroRtt.subarray(6, 14));
    assert.deepEqual(
      classifyDatagram(zeroRtt, true, (k) => k === key),
      { kind: 'known', key },
    );
  });
  it("reads a short header's 20-byte destination id as quiche's parse does, Buffer or Uint8Array", () => {
    const b = Buffer.alloc(60);
    for (let i = 0; i < b.length; i++) b[i] = (i * 37 + 11) & 0xff;
    b[0] = 0x41;
    const parsed = quiche.Header.fromSlice(b, quiche.MAX_CONN_ID_LEN);
    const key = connectionKey(parsed.dcid);
    assert.equal(parsed.dcid.length, 20);
    const seen: string[] = [];
    const knows = (k: string) => {
      seen.push(k);
      return k === key;
    };
    assert.deepEqual(classifyDatagram(b, true, knows), { kind: 'known', key });
    const view = new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length), 0, b.length);
    assert.deepEqual(classifyDatagram(view, true, knows), { kind: 'known', key });
    assert.deepEqual(seen, [key, key], 'answered by the id alone, one lookup each');
    // Too short to hold an id: the full parse decides (garbage), never a read past the end.
    assert.deepEqual(
      classifyDatagram(b.subarray(0, 20), true, () => true),
      { kind: 'drop', reason: 'garbage' },
    );
  });
  it('drops short-header packets for unknown ids', () => {
    const b = Buffer.alloc(60, 0x11);
    b[0] = 0x40;
    assert.deepEqual(classifyDatagram(b, true, none), { kind: 'drop', reason: 'unknown_connection' });
  });
});

describe('classifyDatagram with workers: steering by the connection id', () => {
  const worker1of3 = (dcid: Uint8Array) => otherOwner(dcid, { self: 1, count: 3 });
  const short = (owner: number, len = 60) => {
    const b = Buffer.alloc(len, 0x11);
    b[0] = 0x40;
    b[1] = owner; // the destination id starts right after the first byte
    return b;
  };

  it("hands over a short-header packet for another worker's id, keeps its own and unknown owners", () => {
    assert.deepEqual(classifyDatagram(short(2), true, none, worker1of3), { kind: 'steer', worker: 2 });
    assert.deepEqual(classifyDatagram(short(0), true, none, worker1of3), { kind: 'steer', worker: 0 });
    assert.deepEqual(classifyDatagram(short(1), true, none, worker1of3), {
      kind: 'drop',
      reason: 'unknown_connection',
    });
    assert.deepEqual(classifyDatagram(short(7), true, none, worker1of3), {
      kind: 'drop',
      reason: 'unknown_connection',
    });
  });

  it('hands over Handshake packets (they carry our id) but never an Initial (the client chose its id)', () => {
    const handshake = longHeader(0xe0, 1, 1200, 20);
    handshake[6] = 2;
    assert.deepEqual(classifyDatagram(handshake, true, none, worker1of3), { kind: 'steer', worker: 2 });
    const initial = longHeader(0xc0, 1, 1200, 20);
    initial[6] = 2;
    assert.equal(classifyDatagram(initial, true, none, worker1of3).kind, 'new');
  });

  it('a known id is delivered here whatever its first byte says', () => {
    const pkt = short(2);
    const key = connectionKey(pkt.subarray(1, 21));
    assert.deepEqual(
      classifyDatagram(pkt, true, (k) => k === key, worker1of3),
      { kind: 'known', key },
    );
  });
});
