/**
 * Issue #12, item 1: poisoning a pool's circuit breaker with requests the backend finds
 * malformed. Before the fix a request whose Host or :authority held a space passed validation,
 * the HTTP/2 backend reset it with PROTOCOL_ERROR, Spooky counted a backend failure, and five such
 * requests answered every client on every protocol with `503 circuit_open`. Here the attack runs
 * against the real data plane on HTTP/3 and on the TCP listener's HTTP/2 and HTTP/1.1, and a
 * bystander on all three protocols must keep getting 200 after each wave: the malformed requests
 * get 400, and a backend's PROTOCOL_ERROR reset of a request that passed validation gets 502
 * without counting against the backend.
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { dataplaneConfig, type RunningDataplane, startDataplane } from './support/harness.js';
import { describeH2, finalStatus, h1Exchange, h2Connect, h2Request } from './support/tcp-clients.js';

/** More than resilience.circuit_breaker.consecutive_failures (5, the default). */
const WAVE = 8;

/** A strict HTTP/2 backend: resets /rejected with PROTOCOL_ERROR, answers anything else 200. */
async function startStrictBackend() {
  const seen: string[] = [];
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    seen.push(`${headers[':authority']} ${headers[':path']}`);
    if (headers[':path'] === '/rejected') {
      stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end('ok\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('circuit-breaker poisoning with malformed requests (issue #12 item 1)', { timeout: 120_000 }, () => {
  let backend: Awaited<ReturnType<typeof startStrictBackend>>;
  let dp: RunningDataplane;
  let h3: H3ClientSession;
  let h2: http2.ClientHttp2Session;

  before(async () => {
    backend = await startStrictBackend();
    // A host-less route: whatever authority the attacker sends reaches this pool.
    dp = await startDataplane(
      dataplaneConfig(`  web:
    route: { path_prefix: / }
    backends: [{ id: strict, address: "${backend.origin}" }]
`),
    );
    h3 = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
    h2 = h2Connect(dp.port);
  });

  after(async () => {
    await h3?.close().catch(() => {});
    h2?.destroy();
    await dp?.stop();
    await backend?.close();
  });

  /** A well-behaved client on each protocol, after the wave: 200 everywhere (not 503 circuit_open). */
  async function assertBystanderServed(): Promise<void> {
    const viaH3 = await h3.fetch({ path: '/ok', authority: 'www.example' });
    assert.equal(viaH3.status, 200, `HTTP/3 bystander: ${viaH3.status} ${viaH3.body.toString().trim()}`);
    const viaH2 = await h2Request(h2, { ':path': '/ok', ':authority': 'www.example' });
    assert.equal(describeH2(viaH2), '200', 'HTTP/2 bystander');
    const viaH1 = await h1Exchange(dp.port, 'GET /ok HTTP/1.1\r\nHost: www.example\r\nConnection: close\r\n\r\n');
    assert.equal(finalStatus(viaH1.raw), 200, `HTTP/1.1 bystander: ${viaH1.raw.slice(0, 200)}`);
  }

  it('HTTP/3: :authority or host with a space, userinfo, a bad port, or an unknown :scheme gets 400', async () => {
    const attacks = [
      { authority: 'a b/c' },
      { authority: 'user@www.example' },
      { authority: 'www.example:99999' },
      { authority: 'www.example', scheme: 'ftp' },
    ];
    for (const attack of attacks) {
      for (let i = 0; i < WAVE; i++) {
        const res = await h3.fetch({ path: `/attack/${i}`, ...attack });
        assert.equal(res.status, 400, `${JSON.stringify(attack)}: ${res.status} ${res.body.toString().trim()}`);
      }
    }
    // host instead of :authority: the client library always sends :authority, so both must agree.
    for (let i = 0; i < WAVE; i++) {
      const res = await h3.fetch({ path: `/attack/host/${i}`, authority: 'a b', headers: [['host', 'a b']] });
      assert.equal(res.status, 400);
    }
    await assertBystanderServed();
  });

  it('TCP HTTP/2: :authority or host with a space is refused (400 or a stream reset), never forwarded', async () => {
    const attacker = h2Connect(dp.port);
    try {
      for (let i = 0; i < WAVE; i++) {
        for (const headers of [
          { ':path': `/attack/${i}`, ':authority': 'a b/c' },
          { ':path': `/attack/${i}`, host: 'a b' },
        ]) {
          const o = await h2Request(attacker, headers);
          assert.ok(
            (o.kind === 'response' && o.status === 400) || o.kind === 'reset',
            `${JSON.stringify(headers)}: ${describeH2(o)}`,
          );
        }
      }
    } finally {
      attacker.destroy();
    }
    await assertBystanderServed();
  });

  it('TCP HTTP/1.1: Host with a space or userinfo gets 400', async () => {
    for (let i = 0; i < WAVE; i++) {
      for (const host of ['a b', 'user@www.example', 'www.example:']) {
        const r = await h1Exchange(dp.port, `GET /attack/${i} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
        assert.equal(r.status, 400, `Host: ${host}: ${r.raw.slice(0, 200)}`);
      }
    }
    await assertBystanderServed();
  });

  it('nothing malformed reached the backend', () => {
    const bad = backend.seen.filter((s) => s.includes('/attack/'));
    assert.deepEqual(bad, []);
  });

  it('a backend resetting well-formed requests with PROTOCOL_ERROR: 502, and the breaker stays closed', async () => {
    for (let i = 0; i < WAVE; i++) {
      const res = await h3.fetch({ path: '/rejected', authority: 'www.example' });
      assert.equal(res.status, 502, `HTTP/3: ${res.status} ${res.body.toString().trim()}`);
      const viaH2 = await h2Request(h2, { ':path': '/rejected', ':authority': 'www.example' });
      assert.equal(describeH2(viaH2), '502', 'HTTP/2');
    }
    await assertBystanderServed();
  });
});
