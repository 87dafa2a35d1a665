import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { describe, it } from 'node:test';
import { decodeHandoff, encodeHandoffHeader, HandoffChannel } from './handoff.js';

describe('hand-over messages', () => {
  it('carry the client address (IPv4 and IPv6) in front of the datagram', () => {
    for (const from of [
      { host: '192.0.2.7', port: 443 },
      { host: '2001:db8::1', port: 65535 },
    ]) {
      const datagram = Buffer.from([0x40, 1, 2, 3]);
      const m = decodeHandoff(Buffer.concat([encodeHandoffHeader(from), datagram]));
      assert.deepEqual(m?.from, from);
      assert.deepEqual(m?.datagram, datagram);
    }
  });

  it('malformed messages decode to null', () => {
    for (const b of [
      Buffer.alloc(0),
      Buffer.from([0]),
      Buffer.from([9, 0x31]),
      encodeHandoffHeader({ host: 'a', port: 1 }),
    ]) {
      assert.equal(decodeHandoff(b), null);
    }
  });
});

describe('HandoffChannel over loopback', () => {
  it('delivers to the owner, counts both ends, and refuses senders that are not workers', async () => {
    const got: Array<{ host: string; port: number; bytes: string }> = [];
    const a = await HandoffChannel.open(() => {});
    const b = await HandoffChannel.open((d, from) => got.push({ ...from, bytes: d.toString('hex') }));
    const stranger = dgram.createSocket('udp4');
    try {
      assert.equal(a.counters.dropped, 0);
      a.send(1, Buffer.from([1, 2]), { host: '198.51.100.1', port: 1000 });
      assert.equal(a.counters.dropped, 1, 'no peers known yet: dropped, not sent');
      a.setPeers([a.port, b.port]);
      b.setPeers([a.port, b.port]);
      a.send(1, Buffer.from([0x40, 0xaa]), { host: '198.51.100.1', port: 1000 });
      const forged = Buffer.concat([encodeHandoffHeader({ host: '203.0.113.9', port: 9 }), Buffer.from([0x40])]);
      await new Promise<void>((r) => stranger.send(forged, b.port, '127.0.0.1', () => r()));
      for (let i = 0; i < 200 && got.length + b.counters.dropped < 2; i++) await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(got, [{ host: '198.51.100.1', port: 1000, bytes: '40aa' }]);
      assert.equal(a.counters.out, 1);
      assert.equal(b.counters.in, 1);
      assert.equal(b.counters.dropped, 1, "the stranger's datagram");
    } finally {
      stranger.close();
      await a.close();
      await b.close();
    }
  });
});
