/**
 * Session resumption and 0-RTT against the listener's real quiche Config (buildQuicServerConfig),
 * over an in-memory link (real QUIC and TLS, no socket): what the ticket-key handling relies on.
 * A ticket opens on any Config holding the same key (so an apply may rebuild the Config), a key
 * set on a live Config replaces the old one (rotation), and without quic_0rtt no early data.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { generateSelfSigned } from '../../cli/certs.js';
import { loadConfigText } from '../../model/config/load.js';
import type { RuntimeConfig } from '../../model/config/runtime.js';
import { buildQuicServerConfig } from '../dataplane.js';
import { deliver, drain, linkClientConfig } from './in-memory-link.js';
import { type Config, type Host, quiche } from './quiche.js';
import { TICKET_KEY_BYTES } from './ticket-keys.js';

const CLIENT: Host = { host: '127.0.0.1', port: 40011 };
const SERVER: Host = { host: '127.0.0.1', port: 40012 };
const toServer = { from: CLIENT, to: SERVER };
const toClient = { from: SERVER, to: CLIENT };
const cert = generateSelfSigned(join(tmpdir(), `spooky-resumption-${process.pid}`));

function performance(quic0rtt: boolean): RuntimeConfig['performance'] {
  const r = loadConfigText(
    `listen: { tls: { cert: c.pem, key: k.pem } }\nupstream:\n  web:\n    backends: [{ id: w, address: "http://127.0.0.1:1" }]\nperformance: { quic_0rtt: ${quic0rtt} }\n`,
    't.yaml',
  );
  assert.ok(r.ok);
  return r.config.performance as RuntimeConfig['performance'];
}

function serverConfig(key: Uint8Array, quic0rtt = true): Config {
  const certPem = readFileSync(cert.certFile, 'utf8');
  const keyPem = readFileSync(cert.keyFile, 'utf8');
  return buildQuicServerConfig(certPem, keyPem, performance(quic0rtt), null, key);
}

function clientConfig(): Config {
  const c = linkClientConfig();
  c.enableEarlyData(); // a client, too, sends early data only when its TLS context allows it
  return c;
}

interface Outcome {
  resumed: boolean;
  /** The server read the request while still in early data (0-RTT accepted). */
  requestInEarlyData: boolean;
  /** The client's session (ticket) after the handshake, for the next connection. */
  session: Uint8Array;
}

/** One connection: resumes `session` if given, sends a request on stream 0 as soon as it may. */
function connect(server: Config, session: Uint8Array | null): Outcome {
  const client = quiche.Connection.connect('localhost', randomBytes(16), CLIENT, SERVER, clientConfig());
  if (session) client.setSession(session);
  const first = drain(client);
  // With a ticket that allows it, the client is in early data once its ClientHello is out.
  if (client.isInEarlyData()) {
    client.streamSend(0, Buffer.from('GET /'), true);
    first.push(...drain(client));
  }
  const conn = quiche.Connection.accept(randomBytes(16), null, SERVER, CLIENT, server);
  deliver(first, conn, toServer);
  let requestInEarlyData = false;
  const rbuf = new Uint8Array(64);
  const readRequest = () => {
    for (const id of conn.readable()) {
      if (id === 0 && conn.streamRecv(0, rbuf) !== null && !conn.isEstablished() && conn.isInEarlyData()) {
        requestInEarlyData = true;
      }
    }
  };
  readRequest();
  for (let i = 0; i < 10 && !(client.isEstablished() && conn.isEstablished()); i++) {
    deliver(drain(conn), client, toClient);
    deliver(drain(client), conn, toServer);
    readRequest();
  }
  assert.ok(client.isEstablished() && conn.isEstablished(), 'handshake over the in-memory link');
  // The NewSessionTicket follows the handshake.
  for (let i = 0; i < 3; i++) {
    deliver(drain(conn), client, toClient);
    deliver(drain(client), conn, toServer);
  }
  const next = client.session();
  assert.ok(next, 'the server issued a ticket');
  return { resumed: client.isResumed(), requestInEarlyData, session: next };
}

const key = () => randomBytes(TICKET_KEY_BYTES);

describe('session tickets on the listener config', () => {
  it('resumes with 0-RTT on the same Config and on a rebuilt one with the same key', () => {
    const k = key();
    const cfg = serverConfig(k);
    const full = connect(cfg, null);
    assert.equal(full.resumed, false);
    const again = connect(cfg, full.session);
    assert.ok(again.resumed, 'resumed');
    assert.ok(again.requestInEarlyData, 'the request was read as early data');
    // An apply that changes QUIC settings builds a new Config: the key goes with it.
    const rebuilt = connect(serverConfig(k), again.session);
    assert.ok(rebuilt.resumed && rebuilt.requestInEarlyData);
  });

  it('a Config with a new key (a rotation, or a per-Config key) refuses older tickets', () => {
    const cfg = serverConfig(key());
    const { session } = connect(cfg, null);
    assert.equal(connect(serverConfig(key()), session).resumed, false, 'another key');
    cfg.setTicketKey(key());
    const after = connect(cfg, session);
    assert.equal(after.resumed, false, 'rotated on the live Config');
    assert.equal(after.requestInEarlyData, false);
    assert.ok(connect(cfg, after.session).resumed, 'tickets issued after the rotation work');
  });

  it('without quic_0rtt, tickets resume but never carry early data', () => {
    const k = key();
    const { session } = connect(serverConfig(k, false), null);
    const again = connect(serverConfig(k, false), session);
    assert.ok(again.resumed);
    assert.equal(again.requestInEarlyData, false);
    // A ticket from while 0-RTT was on, presented after it was turned off.
    const on = connect(serverConfig(k, true), null);
    const off = connect(serverConfig(k, false), on.session);
    assert.ok(off.resumed);
    assert.equal(off.requestInEarlyData, false);
  });
});
