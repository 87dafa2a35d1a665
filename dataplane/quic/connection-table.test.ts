import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { classifyDatagram, connectionKey } from './classify.js';
import { ConnectionTable } from './connection-table.js';
import { quiche } from './quiche.js';

class Conn {
  readonly ids: string[] = [];
  constructor(readonly name: string) {}
}

const id = (len = quiche.MAX_CONN_ID_LEN): Uint8Array => randomFillSync(new Uint8Array(len));

/** A 1-RTT (short header) packet to `dcid`: how a client reaches an established connection. */
function shortPacket(dcid: Uint8Array): Buffer {
  const b = Buffer.alloc(60, 0x11);
  b[0] = 0x40;
  b.set(dcid, 1);
  return b;
}

/** A full-size Initial to `dcid` (8 bytes): the client's first flight, or a retransmission of it. */
function initial(dcid: Uint8Array): Buffer {
  const b = Buffer.alloc(1200, 0x5a);
  b[0] = 0xc0;
  b.writeUInt32BE(1, 1);
  b[5] = dcid.length;
  b.set(dcid, 6);
  b[6 + dcid.length] = 8;
  b[15 + dcid.length] = 0; // token length
  b[16 + dcid.length] = 0x44; // length (varint, 2 bytes)
  b[17 + dcid.length] = 0x00;
  return b;
}

describe('ConnectionTable', () => {
  it('unregister drops one retired id of a connection and keeps its others', () => {
    const table = new ConnectionTable<Conn>();
    const a = new Conn('a');
    const [first, spare] = [id(), id()];
    table.register(a, first, spare);
    table.unregister(a, first);
    assert.equal(table.has(connectionKey(first)), false);
    assert.equal(table.get(connectionKey(spare)), a);
    assert.deepEqual(a.ids, [connectionKey(spare)]);
    assert.ok(table.contains(a));
  });

  it('finds a connection under every id it was registered with, and nothing under others', () => {
    const table = new ConnectionTable<Conn>();
    const a = new Conn('a');
    const scid = id();
    const odcid = id(8);
    table.register(a, scid, odcid);
    assert.equal(table.get(connectionKey(scid)), a);
    assert.equal(table.get(connectionKey(odcid)), a);
    assert.deepEqual(a.ids, [connectionKey(scid), connectionKey(odcid)]);
    assert.equal(table.has(connectionKey(id())), false);
    assert.equal(table.get(connectionKey(id())), undefined);
    assert.equal(table.size, 1);
    assert.equal(table.contains(a), true);
  });

  it('retiring a connection forgets all its ids; retiring twice is harmless', () => {
    const table = new ConnectionTable<Conn>();
    const a = new Conn('a');
    const ids = [id(), id(8)];
    table.register(a, ...ids);
    table.retire(a);
    for (const i of ids) assert.equal(table.has(connectionKey(i)), false);
    assert.equal(table.contains(a), false);
    assert.equal(table.size, 0);
    table.retire(a);
    assert.equal(table.size, 0);
  });

  it('an id a newer connection took over stays with it when the older one retires', () => {
    // Two clients may send Initials with the same original destination id: the newer wins it.
    const table = new ConnectionTable<Conn>();
    const shared = id(8);
    const a = new Conn('a');
    const b = new Conn('b');
    const scidA = id();
    table.register(a, scidA, shared);
    table.register(b, id(), shared);
    assert.equal(table.get(connectionKey(shared)), b);
    table.retire(a);
    assert.equal(table.get(connectionKey(shared)), b);
    assert.equal(table.has(connectionKey(scidA)), false);
  });

  it('lists open connections oldest first', () => {
    const table = new ConnectionTable<Conn>();
    const conns = ['a', 'b', 'c'].map((n) => new Conn(n));
    for (const c of conns) table.register(c, id());
    table.retire(conns[1]);
    assert.deepEqual(
      [...table.values()].map((c) => c.name),
      ['a', 'c'],
    );
  });

  it('with the classifier: datagrams to either id are routed, and dropped once the connection retired', () => {
    const table = new ConnectionTable<Conn>();
    const known = (key: string) => table.has(key);
    const a = new Conn('a');
    const scid = id();
    const odcid = id(8);
    // Before registration the client's Initial is a new connection attempt.
    assert.equal(classifyDatagram(initial(odcid), true, known).kind, 'new');
    table.register(a, scid, odcid);
    const retransmitted = classifyDatagram(initial(odcid), true, known);
    assert.equal(retransmitted.kind, 'known');
    assert.equal(table.get((retransmitted as { key: string }).key), a);
    const oneRtt = classifyDatagram(shortPacket(scid), true, known);
    assert.equal(oneRtt.kind, 'known');
    assert.equal(table.get((oneRtt as { key: string }).key), a);
    assert.deepEqual(classifyDatagram(shortPacket(id()), true, known), { kind: 'drop', reason: 'unknown_connection' });
    table.retire(a);
    assert.deepEqual(classifyDatagram(shortPacket(scid), true, known), { kind: 'drop', reason: 'unknown_connection' });
    assert.equal(classifyDatagram(initial(odcid), true, known).kind, 'new');
  });
});
