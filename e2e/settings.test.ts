/**
 * Issue 13 item 4: settings no other test exercised, each set to a value whose effect the real
 * spooky-dataplane shows from outside (model/config/settings-coverage.ts names these
 * cases). Every data plane here is started, used and stopped within its own case.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { generateSelfSigned } from '../cli/certs.js';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import {
  dataplaneConfig,
  devCert,
  type RunningDataplane,
  startDataplane,
  tcpListens,
  tempDir,
} from './support/harness.js';
import { RawQuicClient } from './support/raw-client.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const connect = (port: number, handshakeTimeoutMs = 5000) =>
  H3ClientSession.connect('127.0.0.1', port, { insecure: true, serverName: 'localhost', handshakeTimeoutMs });

/** Whether a fresh QUIC connection gets through the handshake and one 200. */
async function connects(port: number, handshakeTimeoutMs: number): Promise<boolean> {
  let c: H3ClientSession | undefined;
  try {
    c = await connect(port, handshakeTimeoutMs);
    return (await c.fetch({ path: '/x', authority: 'localhost' })).status === 200;
  } catch {
    return false;
  } finally {
    await c?.close().catch(() => {});
  }
}

/** Starts a data plane on `upstream` and `extra`, runs `body`, stops it whatever happens. */
async function withDataplane<T>(upstream: string, extra: string, body: (dp: RunningDataplane) => Promise<T>) {
  const dp = await startDataplane(dataplaneConfig(upstream, extra));
  try {
    return await body(dp);
  } finally {
    await dp.stop();
  }
}

const oneBackend = (b: DemoBackend) => `  web:\n    backends: [{ id: ${b.name}, address: "${b.origin}" }]\n`;

describe('settings that no other test exercised (issue 13 item 4)', { timeout: 180_000 }, () => {
  const backends: DemoBackend[] = [];
  let a: DemoBackend;
  let b: DemoBackend;
  let c: DemoBackend;
  before(async () => {
    for (const name of ['a', 'b', 'c']) backends.push(await startDemoBackend(name));
    [a, b, c] = backends;
  });
  after(async () => {
    await Promise.all(backends.map((x) => x.close()));
  });

  it('quic_initial_max_data, quic_initial_max_stream_data and the stream limits reach the client as transport parameters', async () => {
    const extra = `performance:
  quic_initial_max_data: 9000
  quic_initial_max_stream_data: 5000
  quic_initial_max_streams_bidi: 7
  quic_initial_max_streams_uni: 5
`;
    await withDataplane(oneBackend(a), extra, async (dp) => {
      const raw = await RawQuicClient.connect(dp.port);
      try {
        const conn = raw.quic.conn;
        assert.equal(conn.peerStreamsLeftBidi(), 7);
        assert.equal(conn.peerStreamsLeftUni(), 5);
        // quiche takes what flow control allows: the stream window, then what the connection has left.
        assert.equal(conn.streamSend(0, Buffer.alloc(20_000), false), 5000);
        assert.equal(conn.streamSend(4, Buffer.alloc(20_000), false), 4000);
      } finally {
        await raw.close();
      }
    });
  });

  it('listen.address and listen.tcp.enabled: QUIC and TCP only where configured, no TCP when disabled', async () => {
    // 127.0.0.2 is loopback too (all of 127/8 on Linux), and not where anything else listens.
    const at = (address: string) => dataplaneConfig(oneBackend(a)).replace('address: 127.0.0.1', `address: ${address}`);
    const elsewhere = await startDataplane(at('127.0.0.2'));
    try {
      const c = await H3ClientSession.connect('127.0.0.2', elsewhere.port, { insecure: true, serverName: 'localhost' });
      try {
        assert.equal((await c.fetch({ path: '/x', authority: 'localhost' })).status, 200);
      } finally {
        await c.close();
      }
      assert.equal(await tcpListens('127.0.0.2', elsewhere.port), true, 'the TCP listener (on by default)');
      assert.equal(await tcpListens('127.0.0.1', elsewhere.port), false, 'TCP also on 127.0.0.1');
    } finally {
      await elsewhere.stop();
    }
    const noTcp = await startDataplane(
      at('127.0.0.1').replace('  port: 0\n', '  port: 0\n  tcp: { enabled: false }\n'),
    );
    try {
      assert.equal(await connects(noTcp.port, 3000), true, 'QUIC serves');
      assert.equal(await tcpListens('127.0.0.1', noTcp.port), false, 'a TCP listener though disabled');
    } finally {
      await noTcp.stop();
    }
  });

  it('max_connection_age_ms: an idle connection is closed once it is that old', async () => {
    // The client's idle timeout (10 s) and the server's (30 s) are far off: only the age limit acts.
    await withDataplane(oneBackend(a), 'performance: { max_connection_age_ms: 1000 }\n', async (dp) => {
      const raw = await RawQuicClient.connect(dp.port);
      try {
        const t0 = performance.now();
        const closed = await raw.waitClosed(6000);
        assert.ok(closed, `still open after ${Math.round(performance.now() - t0)} ms`);
        assert.equal(closed.isApp, true);
        assert.equal(closed.code, 0x100, 'H3_NO_ERROR');
      } finally {
        await raw.close();
      }
    });
  });

  describe('load balancing', () => {
    let dp: RunningDataplane;
    before(async () => {
      const pools = `  sticky:
    route: { path_prefix: /sticky }
    backends: [{ id: s-a, address: "${a.origin}" }, { id: s-b, address: "${b.origin}" }]
  weighted:
    route: { path_prefix: /weighted }
    load_balancing: { type: round-robin }
    backends: [{ id: w-a, address: "${a.origin}", weight: 1 }, { id: w-b, address: "${b.origin}", weight: 3 }]
  hashed:
    route: { path_prefix: /hashed }
    load_balancing: { type: consistent-hash, key: "header:x-user-id" }
    backends:
      - { id: h-a, address: "${a.origin}" }
      - { id: h-b, address: "${b.origin}" }
      - { id: h-c, address: "${c.origin}" }
`;
      dp = await startDataplane(dataplaneConfig(pools, 'load_balancing: { type: sticky-cid }\n'));
    });
    after(async () => {
      await dp?.stop();
    });

    async function answers(client: H3ClientSession, path: string, headers: Array<[string, string]> = []) {
      const r = await client.fetch({ path, authority: 'localhost', headers });
      assert.equal(r.status, 200);
      return JSON.parse(r.body.toString()).backend as string;
    }

    it('load_balancing.type is the fallback of pools that set none (sticky-cid: one connection, one backend)', async () => {
      // The default fallback, round-robin, would alternate between a and b.
      const client = await connect(dp.port);
      try {
        const seen = new Set<string>();
        for (let i = 0; i < 8; i++) seen.add(await answers(client, '/sticky/x'));
        assert.equal(seen.size, 1, `one connection reached ${[...seen]}`);
      } finally {
        await client.close();
      }
    });

    it('backends[].weight: 1:3 round-robin sends 2 of 8 requests to the light backend', async () => {
      const client = await connect(dp.port);
      try {
        const seen: string[] = [];
        for (let i = 0; i < 8; i++) seen.push(await answers(client, '/weighted/x'));
        assert.equal(seen.filter((x) => x === 'a').length, 2, seen.join());
        assert.equal(seen.filter((x) => x === 'b').length, 6, seen.join());
      } finally {
        await client.close();
      }
    });

    it('consistent-hash on header:NAME: one key, one backend; keys spread over the backends', async () => {
      const client = await connect(dp.port);
      try {
        const used = new Set<string>();
        for (let u = 0; u < 12; u++) {
          const seen = new Set<string>();
          for (let i = 0; i < 3; i++) seen.add(await answers(client, `/hashed/${i}`, [['x-user-id', `user-${u}`]]));
          assert.equal(seen.size, 1, `user-${u} reached ${[...seen]}`);
          used.add([...seen][0]);
        }
        assert.ok(used.size >= 2, `12 keys all went to ${[...used]}`);
      } finally {
        await client.close();
      }
    });
  });

  it('backend_connect_timeout_ms: a backend that never finishes TLS fails after it; a pool timeouts value wins', async () => {
    // Accepts TCP and never says a word: only the connect timeout (which covers TLS) ends the wait.
    // The default (1000 ms) would fail the quick pool's bound, the global value the patient one's.
    const sockets = new Set<net.Socket>();
    const mute = net.createServer((s) => sockets.add(s));
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    const origin = `https://127.0.0.1:${(mute.address() as net.AddressInfo).port}`;
    const pools = `  quick:
    route: { path_prefix: /quick }
    backends: [{ id: q, address: "${origin}" }]
  patient:
    route: { path_prefix: /patient }
    timeouts: { backend_connect_timeout_ms: 2500 }
    backends: [{ id: p, address: "${origin}" }]
`;
    const extra = 'performance: { backend_connect_timeout_ms: 300 }\nresilience: { retries: { attempts: 0 } }\n';
    try {
      await withDataplane(pools, extra, async (dp) => {
        const client = await connect(dp.port);
        try {
          const timed = async (path: string) => {
            const t0 = performance.now();
            const r = await client.fetch({ path, authority: 'localhost' });
            return { status: r.status, ms: performance.now() - t0 };
          };
          const quick = await timed('/quick/x');
          const patient = await timed('/patient/x');
          assert.equal(quick.status, 502);
          assert.ok(quick.ms >= 250 && quick.ms < 2000, `quick pool answered after ${Math.round(quick.ms)} ms`);
          assert.equal(patient.status, 502);
          assert.ok(
            patient.ms >= 2400 && patient.ms < 6000,
            `patient pool answered after ${Math.round(patient.ms)} ms`,
          );
        } finally {
          await client.close();
        }
      });
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => mute.close(r));
    }
  });

  it('performance.backend_timeout_ms: a silent backend gets 504 after it', async () => {
    await withDataplane(oneBackend(a), 'performance: { backend_timeout_ms: 600 }\n', async (dp) => {
      const client = await connect(dp.port);
      try {
        const t0 = performance.now();
        const r = await client.fetch({ path: '/hang', authority: 'localhost' });
        const ms = performance.now() - t0;
        assert.equal(r.status, 504);
        assert.ok(ms >= 550 && ms < 3000, `answered after ${Math.round(ms)} ms`);
      } finally {
        await client.close();
      }
    });
  });

  it('upstream_tls: verify false accepts an unknown CA; server_name is the name verified', async () => {
    const cert = devCert(); // for localhost, 127.0.0.1 and ::1
    const trusted = await startDemoBackend('trusted', {
      tls: { cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) },
    });
    const other = generateSelfSigned(tempDir('spooky-unknown-ca-'));
    const unknown = await startDemoBackend('unknown', {
      tls: { cert: readFileSync(other.certFile), key: readFileSync(other.keyFile) },
    });
    try {
      const status = async (address: string, upstreamTls: string) =>
        withDataplane(`  web:\n    backends: [{ id: t, address: "${address}" }]\n`, upstreamTls, async (dp) => {
          const client = await connect(dp.port);
          try {
            return (await client.fetch({ path: '/x', authority: 'app.example' })).status;
          } finally {
            await client.close();
          }
        });
      const local = `https://localhost:${trusted.port}`;
      assert.equal(await status(local, `upstream_tls: { ca_file: ${cert.certFile}, server_name: localhost }\n`), 200);
      assert.equal(
        await status(local, `upstream_tls: { ca_file: ${cert.certFile}, server_name: other.example }\n`),
        502,
      );
      assert.equal(await status(`https://localhost:${unknown.port}`, 'upstream_tls: { verify: false }\n'), 200);
      assert.equal(unknown.seen.length, 1, 'the unverified backend was reached');
    } finally {
      await trusted.close();
      await unknown.close();
    }
  });

  it('upstream_tls client_cert and client_key: a backend that requires a client certificate gets this one', async () => {
    const cert = devCert();
    const client = generateSelfSigned(tempDir('spooky-upstream-client-')); // its own CA
    const backend = http2.createSecureServer(
      {
        cert: readFileSync(cert.certFile),
        key: readFileSync(cert.keyFile),
        ca: readFileSync(client.certFile),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        const tls = req.socket as TLSSocket;
        res.end(JSON.stringify({ authorized: tls.authorized, subject: tls.getPeerCertificate().subject?.CN }));
      },
    );
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    const address = `https://localhost:${(backend.address() as net.AddressInfo).port}`;
    const fetchVia = (upstreamTls: string) =>
      withDataplane(`  web:\n    backends: [{ id: m, address: "${address}" }]\n`, upstreamTls, async (dp) => {
        const c = await connect(dp.port);
        try {
          return await c.fetch({ path: '/x', authority: 'localhost' });
        } finally {
          await c.close();
        }
      });
    try {
      const without = await fetchVia(`upstream_tls: { ca_file: ${cert.certFile} }\n`);
      assert.equal(without.status, 502);
      const withCert = await fetchVia(
        `upstream_tls: { ca_file: ${cert.certFile}, client_cert: ${client.certFile}, client_key: ${client.keyFile} }\n`,
      );
      assert.equal(withCert.status, 200);
      assert.deepEqual(JSON.parse(withCert.body.toString()), { authorized: true, subject: 'localhost' });
    } finally {
      await new Promise((r) => backend.close(r));
    }
  });

  it('retries.attempts 0 and retries.on without connect-failure let a refused backend show (502); with circuit_breaker.enabled false it is retried every time', async () => {
    const gone = await startDemoBackend('gone');
    await gone.close(); // its port now refuses connections
    const pool = `  web:\n    backends: [{ id: good, address: "${a.origin}" }, { id: gone, address: "${gone.origin}" }]\n`;
    const run = (extra: string) =>
      withDataplane(pool, extra, async (dp) => {
        const client = await connect(dp.port);
        try {
          const statuses: number[] = [];
          for (let i = 0; i < 30; i++)
            statuses.push((await client.fetch({ path: '/x', authority: 'localhost' })).status);
          await sleep(200); // the last access lines
          const retried = dp.logs.filter((o) => o.access === true && Number(o.retries ?? 0) > 0).length;
          return {
            failed: statuses.filter((s) => s === 502).length,
            ok: statuses.filter((s) => s === 200).length,
            retried,
          };
        } finally {
          await client.close();
        }
      });
    const noAttempts = await run('resilience: { retries: { attempts: 0 } }\n');
    assert.ok(noAttempts.failed >= 1, `attempts 0: ${JSON.stringify(noAttempts)}`);
    const notOnConnect = await run('resilience: { retries: { on: [reset-before-response] } }\n');
    assert.ok(notOnConnect.failed >= 1, `on without connect-failure: ${JSON.stringify(notOnConnect)}`);
    // The defaults (attempts 1, on connect-failure) retry; the breaker would stop trying `gone`
    // after 5 failures, so more retries than that show it is off.
    const noBreaker = await run('resilience: { circuit_breaker: { enabled: false } }\n');
    assert.equal(noBreaker.ok, 30, JSON.stringify(noBreaker));
    assert.ok(noBreaker.retried >= 10, `breaker off: ${JSON.stringify(noBreaker)}`);
  });

  it('max_active_connections: past the cap a new QUIC connection is refused; per_source_new_connections_burst and _per_sec refuse one address past its burst until the refill', async () => {
    await withDataplane(
      oneBackend(a),
      'performance: { max_active_connections: 2, quic_retry: never }\n',
      async (dp) => {
        const held = [await connect(dp.port), await connect(dp.port)];
        try {
          assert.equal(await connects(dp.port, 1500), false, 'a third connection got in');
        } finally {
          for (const h of held) await h.close();
        }
      },
    );
    const extra =
      'performance: { per_source_new_connections_burst: 2, per_source_new_connections_per_sec: 1, quic_retry: never }\n';
    await withDataplane(oneBackend(a), extra, async (dp) => {
      assert.equal(await connects(dp.port, 3000), true);
      assert.equal(await connects(dp.port, 3000), true);
      // Below quiche's first Initial retransmission, which the refilled bucket would let in.
      assert.equal(await connects(dp.port, 700), false, 'a third new connection within the second got in');
      await sleep(1200);
      assert.equal(await connects(dp.port, 3000), true, 'refused after the refill');
    });
  });

  it('memory_limit_mib: over the limit new connections are refused', async () => {
    await withDataplane(oneBackend(a), 'performance: { memory_limit_mib: 1 }\n', async (dp) => {
      for (let i = 0; i < 40 && !dp.logs.some((o) => /memory_limit_mib/.test(String(o.msg))); i++) await sleep(100);
      assert.ok(
        dp.logs.some((o) => /refusing new connections/.test(String(o.msg))),
        'logs that it refuses connections',
      );
      assert.equal(await connects(dp.port, 1500), false);
    });
  });

  it('shutdown_drain_timeout_ms: SIGTERM with a request that outlasts it exits once the timeout is over', async () => {
    const dp = await startDataplane(
      dataplaneConfig(oneBackend(a), 'performance: { shutdown_drain_timeout_ms: 500 }\n'),
    );
    let client: H3ClientSession | undefined;
    try {
      client = await connect(dp.port);
      const slow = client.fetch({ path: '/late-end?ms=8000', authority: 'localhost' }).catch((e: Error) => e);
      await sleep(300);
      const t0 = performance.now();
      await dp.stop('SIGTERM');
      const ms = performance.now() - t0;
      assert.ok(ms >= 400 && ms < 4000, `exited ${Math.round(ms)} ms after SIGTERM (the request wanted 8 s)`);
      // The request is cut when the drain time is over, not answered after its 8 s.
      const outcome = await Promise.race([slow, sleep(5000).then(() => 'still pending')]);
      assert.ok(outcome instanceof Error, `the request ended with ${String(outcome)}`);
    } finally {
      await client?.close();
      await dp.stop('SIGKILL');
    }
  });
});
