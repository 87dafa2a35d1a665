/**
 * Issue #12 item 9: connection limits without fairness. max_active_connections and the
 * new-connection bucket were global and counted bare TCP sockets before TLS, so 50 idle TCP
 * connects from one address locked every new client out for two minutes, and an Initial flood
 * emptied the bucket for everyone. Here the attacker's sockets are bound to 127.0.0.2 and the
 * victim connects from 127.0.0.1 (all of 127/8 is loopback on Linux), against the real
 * spooky-control + spooky-dataplane pair.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { quiche } from '../dataplane/quic/quiche.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { Observed } from './support/observe.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const ATTACKER = '127.0.0.2';
const MAX_ACTIVE = 40;
const PER_SOURCE_MAX = 10;
const HANDSHAKE_TIMEOUT_MS = 3000;

/** Opens `n` TCP connections from `from` that never send a byte; resolves when each is open or refused. */
async function idleTcp(port: number, from: string, n: number): Promise<net.Socket[]> {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Socket>((resolve) => {
          const s = net.connect({ host: '127.0.0.1', port, localAddress: from });
          s.on('error', () => {});
          s.once('connect', () => resolve(s));
          s.once('close', () => resolve(s));
        }),
    ),
  );
}

/** Fresh client Initials (a real quiche client's first datagram, new connection ids each time). */
class InitialFactory {
  private readonly cfg = quiche.Config.withBoringSslCtx(false, false, null, null, null, null);
  private readonly buf = Buffer.alloc(quiche.MAX_DATAGRAM_SIZE);

  constructor(private readonly port: number) {
    this.cfg.setApplicationProtos(['h3']);
    this.cfg.setMaxIdleTimeout(5000);
  }

  next(): Buffer {
    const conn = quiche.Connection.connect(
      'localhost',
      randomBytes(quiche.MAX_CONN_ID_LEN),
      { host: ATTACKER, port: 40000 },
      { host: '127.0.0.1', port: this.port },
      this.cfg,
    );
    const sent = conn.send(this.buf);
    assert.ok(sent, 'quiche wrote an Initial');
    return Buffer.from(this.buf.subarray(0, sent[0]));
  }
}

/** Sends `perSec` Initials per second from the attacker's address until stopped. */
async function floodInitials(port: number, perSec: number, stop: () => boolean): Promise<number> {
  const socket = dgram.createSocket('udp4');
  socket.on('error', () => {});
  await new Promise<void>((r) => socket.bind(0, ATTACKER, () => r()));
  const factory = new InitialFactory(port);
  let sent = 0;
  try {
    while (!stop() && sent < 10_000) {
      socket.send(factory.next(), port, '127.0.0.1');
      sent++;
      await sleep(1000 / perSec);
    }
  } finally {
    socket.close();
  }
  return sent;
}

/** One GET over a fresh HTTP/3 connection from 127.0.0.1. */
async function quicGet(port: number): Promise<number> {
  const c = await H3ClientSession.connect('127.0.0.1', port, {
    insecure: true,
    serverName: 'localhost',
    handshakeTimeoutMs: 3000,
  });
  try {
    return (await c.fetch({ path: '/victim/h3', authority: 'localhost' })).status;
  } finally {
    await c.close();
  }
}

/** One GET over a fresh TLS + HTTP/2 connection from 127.0.0.1 to the TCP listener. */
function tcpGet(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error('no answer over TCP within 5 s'));
    }, 5000);
    session.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    const req = session.request({ ':path': '/victim/tcp', ':authority': 'localhost' });
    req.on('error', () => {});
    req.on('response', (h) => {
      clearTimeout(timer);
      req.resume();
      session.close();
      resolve(Number(h[':status']));
    });
  });
}

describe('one address cannot lock the others out', () => {
  let backend: DemoBackend;
  let obs: Observed;
  const attackerSockets: net.Socket[] = [];

  before(async () => {
    backend = await startDemoBackend('a');
    obs = await Observed.start(`  web:\n    backends: [{ id: a, address: "${backend.origin}" }]\n`, {
      tcp: true,
      extra: `performance:
  max_active_connections: ${MAX_ACTIVE}
  per_source_max_connections: ${PER_SOURCE_MAX}
  per_source_new_connections_per_sec: 5
  per_source_new_connections_burst: 15
  new_connections_per_sec: 20
  new_connections_burst: 20
  tls_handshake_timeout_ms: ${HANDSHAKE_TIMEOUT_MS}
  quic_max_idle_timeout_ms: 4000
`,
    });
  });

  after(async () => {
    for (const s of attackerSockets) s.destroy();
    await obs?.stop();
    await backend?.close();
  });

  it(`${MAX_ACTIVE + 20} idle TCP connections and an Initial flood from ${ATTACKER}: clients from 127.0.0.1 still connect over TCP and QUIC`, async (t) => {
    const metric = (reason: string) => obs.metric('spooky_overload_shed_by_reason_total', { reason });
    const retries = async () => (await obs.metric('spooky_quic_retry_total', { outcome: 'sent' })) ?? 0;
    const before = {
      cap: (await metric('source_connection_cap')) ?? 0,
      rate: (await metric('source_connection_rate')) ?? 0,
      retries: await retries(),
    };
    // More idle connections than max_active_connections: on its own enough to lock everyone out.
    attackerSockets.push(...(await idleTcp(obs.port, ATTACKER, MAX_ACTIVE + 20)));
    let flooding = true;
    const flood = floodInitials(obs.port, 100, () => !flooding);
    let sent = 0;
    try {
      await sleep(500);
      const statuses: Array<number | string> = [];
      for (let i = 0; i < 6; i++) {
        for (const get of [quicGet, tcpGet]) {
          statuses.push(await get(obs.port).catch((e: Error) => e.message));
        }
        await sleep(250);
      }
      t.diagnostic(`victim: ${JSON.stringify(statuses)}`);
      assert.deepEqual(
        statuses,
        statuses.map(() => 200),
        'every victim request over a fresh connection succeeded',
      );
    } finally {
      flooding = false;
      sent = await flood;
      t.diagnostic(`${sent} Initials sent from ${ATTACKER}`);
    }
    // The attacker's refusals are its own: per-source reasons, not the global ones.
    const tcpRefused = MAX_ACTIVE + 20 - PER_SOURCE_MAX;
    await obs.settle(); // the data plane's counters reach the control plane's scrape
    const cap = ((await metric('source_connection_cap')) ?? 0) - before.cap;
    const rate = ((await metric('source_connection_rate')) ?? 0) - before.rate;
    // quic_retry auto: Initials beyond new_connections_per_sec get a stateless Retry (no state,
    // no admission) before any limit is consulted; a spoofed source cannot answer it.
    const retried = (await retries()) - before.retries;
    t.diagnostic(`shed: source_connection_cap +${cap}, source_connection_rate +${rate}; Retry sent +${retried}`);
    assert.ok(cap >= tcpRefused, `the idle TCP connections past the per-source share were refused (${cap})`);
    assert.ok(
      cap + rate + retried >= tcpRefused + sent / 2,
      'most of the flood was refused by the per-source limits or answered with a stateless Retry',
    );
  });

  it(`closes a TCP connection that has not completed TLS within tls_handshake_timeout_ms (${HANDSHAKE_TIMEOUT_MS} ms), idle or dripping`, async (t) => {
    const [idle, drip] = await idleTcp(obs.port, '127.0.0.3', 2);
    attackerSockets.push(idle, drip);
    assert.ok(!idle.destroyed && !drip.destroyed, 'both admitted');
    const t0 = performance.now();
    // A TLS record header then one byte every 500 ms: an idle timer would never fire.
    drip.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]));
    const dripping = setInterval(() => drip.writable && drip.write(Buffer.from([0x01])), 500);
    const closedAfter = (s: net.Socket) =>
      new Promise<number>((resolve) => {
        if (s.destroyed) resolve(0);
        s.once('close', () => resolve(performance.now() - t0));
        setTimeout(() => resolve(Number.POSITIVE_INFINITY), HANDSHAKE_TIMEOUT_MS + 7000);
      });
    try {
      const [idleMs, dripMs] = await Promise.all([closedAfter(idle), closedAfter(drip)]);
      t.diagnostic(`closed by the server after ${Math.round(idleMs)} ms (idle), ${Math.round(dripMs)} ms (dripping)`);
      for (const ms of [idleMs, dripMs]) {
        assert.ok(Number.isFinite(ms), `closed within ${HANDSHAKE_TIMEOUT_MS + 7000} ms`);
        assert.ok(ms >= HANDSHAKE_TIMEOUT_MS - 500, `not before the timeout (${Math.round(ms)} ms)`);
      }
    } finally {
      clearInterval(dripping);
    }
  });
});
