import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { diagnoseControlTls } from './tls-probe.js';

// Real sockets on loopback; the TLS verdicts (a refused certificate, an untrusted control plane)
// are in integration/xds-server.test.ts against a real spooky-control listener.
const target = (port: number) => ({
  address: '127.0.0.1',
  port,
  caPem: '',
  certPem: '',
  keyPem: '',
  serverName: undefined,
});
const noCheck = () => undefined;

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('diagnoseControlTls', () => {
  it('says when nothing listens', async () => {
    const d = diagnoseControlTls(target(await closedPort()), noCheck);
    assert.match(await d.result, /^nothing listens there: .*ECONNREFUSED/);
  });

  it('says when the peer hangs up before TLS', async () => {
    const s = net.createServer((c) => c.destroy());
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    try {
      const d = diagnoseControlTls(target((s.address() as net.AddressInfo).port), noCheck);
      assert.match(await d.result, /closed before TLS|the connection failed/);
    } finally {
      s.close();
    }
  });

  it('cancel stops it: no verdict, nothing left open', async () => {
    const s = net.createServer(() => {}); // accepts, never answers
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    try {
      const d = diagnoseControlTls(target((s.address() as net.AddressInfo).port), noCheck);
      d.cancel();
      const settled = await Promise.race([
        d.result.then(() => true),
        new Promise((r) => setTimeout(() => r(false), 200)),
      ]);
      assert.equal(settled, false);
    } finally {
      s.close();
    }
  });
});
