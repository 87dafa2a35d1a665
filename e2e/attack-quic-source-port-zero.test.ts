/**
 * Linux delivers UDP datagrams whose source port is 0. No ordinary socket sends from port 0, so
 * such a datagram is spoofed, and no answer can go back: Node's `dgram.send` throws
 * synchronously for port 0. Before, one spoofed client Initial from port 0 ended the data plane
 * (the answer's send threw out of the flush). Now every datagram from port 0 is dropped on
 * arrival and counted (`spooky_quic_packets_dropped_total{reason="source_port_zero"}`), and a
 * send the socket refuses is one datagram not sent, never the process.
 *
 * Attack: a raw socket (python3, root) sends from 127.0.0.1:0 a real client Initial (with
 * quic_retry: never, so the server would accept the connection and answer), a version-
 * negotiation trigger, and a short-header datagram with a live connection's id.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { InitialProbe } from './support/initial-probe.js';
import { Observed } from './support/observe.js';
import { onlyPool } from './support/pair.js';

/** Sends each hex payload as one IPv4/UDP datagram 127.0.0.1:0 → 127.0.0.1:port (UDP checksum 0: none). */
const RAW_SENDER = `
import socket, struct, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
lo = socket.inet_aton('127.0.0.1')
for h in sys.argv[2:]:
    data = bytes.fromhex(h)
    udp = struct.pack('!HHHH', 0, port, 8 + len(data), 0) + data
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, lo, lo)
    s.sendto(ip + udp, ('127.0.0.1', 0))
`;

function sendFromPortZero(port: number, datagrams: Buffer[]): void {
  const r = spawnSync('python3', ['-c', RAW_SENDER, String(port), ...datagrams.map((d) => d.toString('hex'))], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  assert.equal(r.status, 0, `raw sender: ${r.stderr}`);
}

describe('datagrams from UDP source port 0', { timeout: 60_000 }, () => {
  let a: DemoBackend;
  let obs: Observed;

  before(async () => {
    a = await startDemoBackend('a');
    obs = await Observed.start(onlyPool(a.origin), { extra: 'performance:\n  quic_retry: never\n' });
  });

  after(async () => {
    await obs?.stop();
    await a?.close();
  });

  it('are dropped and counted; the data plane lives on and serves', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('a raw socket needs root');
    const client = await H3ClientSession.connect('127.0.0.1', obs.port, { insecure: true, serverName: 'localhost' });
    try {
      assert.equal((await client.fetch({ path: '/before', authority: 'only.example' })).status, 200);
      const probe = await InitialProbe.open(obs.port);
      const initial = probe.firstInitial();
      probe.close();
      // A long header of an unknown version, full size: a server answers with version negotiation.
      const unknownVersion = Buffer.concat([
        Buffer.from([0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 8]),
        randomBytes(8),
        Buffer.from([8]),
        randomBytes(8),
        randomBytes(1200),
      ]);
      const liveId = Buffer.from(client.quic.conn.destinationId());
      const shortHeader = Buffer.concat([Buffer.from([0x40]), liveId, randomBytes(60)]);
      sendFromPortZero(obs.port, [initial, unknownVersion, shortHeader]);

      const dropped = await obs.waitFor('spooky_quic_packets_dropped_total', (v) => (v ?? 0) >= 3, 10_000, {
        reason: 'source_port_zero',
      });
      t.diagnostic(`spooky_quic_packets_dropped_total{reason="source_port_zero"} ${dropped}`);
      assert.ok(obs.alive(), 'the data plane is still running');
      assert.equal((await client.fetch({ path: '/after', authority: 'only.example' })).status, 200);
    } finally {
      await client.close();
    }
  });
});
