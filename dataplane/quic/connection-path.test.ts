/**
 * A server QuicConnection and a quiche client joined in memory (real quiche on both ends, the
 * datagrams handed over by the test): which client address the server reports, and what it sends
 * before the client's address is validated.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { generateSelfSigned } from '../../cli/certs.js';
import { QuicConnection, type QuicTransport } from './connection.js';
import { type Connection, type Host, quiche } from './quiche.js';

const SERVER: Host = { host: '127.0.0.1', port: 4433 };
const CLIENT_A: Host = { host: '127.0.0.1', port: 50001 };
const CLIENT_B: Host = { host: '127.0.0.2', port: 50002 };

const certs = generateSelfSigned(join(tmpdir(), `spooky-path-test-${process.pid}`));

function serverConfig() {
  const cfg = quiche.Config.withBoringSslCtx(
    false,
    false,
    null,
    [readFileSync(certs.keyFile)],
    [readFileSync(certs.certFile)],
    null,
  );
  cfg.setApplicationProtos(['h3']);
  cfg.setMaxIdleTimeout(5000);
  cfg.setInitialMaxData(1_000_000);
  cfg.setInitialMaxStreamDataBidiRemote(100_000);
  cfg.setInitialMaxStreamsBidi(10);
  return cfg;
}

function clientConfig() {
  const cfg = quiche.Config.withBoringSslCtx(false, false, null, null, null, null);
  cfg.setApplicationProtos(['h3']);
  cfg.setMaxIdleTimeout(5000);
  cfg.setInitialMaxData(1_000_000);
  cfg.setInitialMaxStreamDataBidiLocal(100_000);
  return cfg;
}

/** The two ends and the wire between them; `clientFrom` is the source address the server sees. */
class Pair implements QuicTransport {
  readonly toClient: Array<{ data: Uint8Array; to: Host }> = [];
  readonly client: Connection;
  readonly server: QuicConnection;
  clientFrom: Host = CLIENT_A;
  /** The client's own address (it changes only when the client migrates itself). */
  clientLocal: Host = CLIENT_A;
  /** Spare ids the server connection asked for, and those the client retired. */
  readonly issued: Uint8Array[] = [];
  readonly retired: Uint8Array[] = [];
  sentToClient = 0;
  receivedFromA = 0;

  constructor(addressValidated: boolean) {
    this.client = quiche.Connection.connect('localhost', randomBytes(20), CLIENT_A, SERVER, clientConfig());
    const first = this.clientDatagrams();
    const qc = quiche.Connection.accept(randomBytes(20), null, SERVER, CLIENT_A, serverConfig());
    this.server = new QuicConnection(qc, this, SERVER, CLIENT_A, addressValidated);
    for (const d of first) this.deliver(d);
    this.server.flush(true);
  }

  deliver(d: Buffer): void {
    if (this.clientFrom === CLIENT_A) this.receivedFromA += d.length;
    this.server.receive(d, this.clientFrom);
  }

  sendDatagram(data: Uint8Array, to: Host): void {
    this.sentToClient += data.length;
    this.toClient.push({ data, to });
  }
  readonly sendBuffer = new Uint8Array(quiche.MAX_DATAGRAM_SIZE);
  sendFromBuffer(len: number, to: Host): void {
    this.sendDatagram(Buffer.from(this.sendBuffer.subarray(0, len)), to);
  }
  /** Time stands still here: the test drives every exchange itself. */
  setDeadline(): void {}
  scheduleFlush(): void {}
  deferFlush(): void {}
  forget(): void {}
  /** Part of the transport interface on main (protective closes); nothing to count here. */
  shed(): void {}
  issueConnectionId(): Uint8Array {
    const id = randomBytes(20);
    this.issued.push(id);
    return id;
  }
  retireConnectionId(_conn: QuicConnection, id: Uint8Array): void {
    this.retired.push(id);
  }

  clientDatagrams(): Buffer[] {
    const out: Buffer[] = [];
    const buf = Buffer.alloc(quiche.MAX_DATAGRAM_SIZE);
    for (let i = 0; i < 100; i++) {
      const r = this.client.send(buf);
      if (!r) break;
      out.push(Buffer.from(buf.subarray(0, r[0])));
    }
    return out;
  }

  /** One exchange: the server's datagrams to the client, then the client's answer to the server. */
  step(): number {
    for (const d of this.toClient.splice(0))
      this.client.recv(Buffer.from(d.data), { from: SERVER, to: this.clientLocal });
    const answer = this.clientDatagrams();
    for (const d of answer) this.deliver(d);
    this.server.flush(true);
    return answer.length;
  }

  /** Exchanges until both sides are quiet (bounded). */
  run(): void {
    for (let i = 0; i < 20; i++) {
      if (this.step() === 0 && this.toClient.length === 0) return;
    }
  }

  close(): void {
    this.server.close(false, 0, '');
  }
}

describe('QuicConnection: the client address', () => {
  const pairs: Pair[] = [];
  after(() => {
    for (const p of pairs) p.close();
  });

  it('ignores a datagram from another address that quiche cannot authenticate', () => {
    const p = new Pair(true);
    pairs.push(p);
    p.run();
    assert.ok(p.client.isEstablished() && p.server.conn.isEstablished());
    const junk = Buffer.concat([Buffer.from([0x40]), Buffer.from(p.client.destinationId()), randomBytes(60)]);
    assert.equal(p.server.receive(junk, CLIENT_B), true, 'quiche drops it quietly');
    assert.deepEqual(p.server.peer, CLIENT_A);
  });

  it('follows a NAT rebinding only once the new path is validated', () => {
    const p = new Pair(true);
    pairs.push(p);
    p.run();
    // The client's next packets arrive from another address: authenticated, non-probing.
    p.client.sendAckEliciting();
    p.clientFrom = CLIENT_B;
    for (const d of p.clientDatagrams()) p.deliver(d);
    p.server.flush(true);
    assert.deepEqual(p.server.peer, CLIENT_A, 'not before PATH_CHALLENGE is answered');
    assert.ok(
      p.toClient.some((d) => d.to.host === CLIENT_B.host && d.to.port === CLIENT_B.port),
      'the server probes the new path',
    );
    p.run();
    assert.deepEqual(p.server.peer, CLIENT_B, 'after PATH_RESPONSE from the new address');
  });
});

describe('QuicConnection: spare connection ids', () => {
  it('none are offered unless the endpoint asks for it', () => {
    const p = new Pair(true);
    try {
      p.run();
      assert.equal(p.issued.length, 0);
      assert.equal(p.client.availableDcids(), 0);
    } finally {
      p.close();
    }
  });

  it('offered once the handshake completes; a client migrating on its own uses one and is followed', () => {
    const p = new Pair(true);
    p.server.offersSpareIds = true;
    try {
      p.run();
      assert.ok(p.issued.length >= 1, 'a spare id was offered');
      assert.equal(p.client.availableDcids(), p.issued.length);
      const before = Buffer.from(p.client.destinationId());
      // The client offers the server a spare id of its own too, for the new path's answers.
      p.client.newSourceCid(randomBytes(20), 1n, false);
      p.run();
      p.client.migrate(CLIENT_B, SERVER);
      p.client.sendAckEliciting(); // quiche's client sends on the new path once it has something to send
      p.clientLocal = CLIENT_B;
      p.clientFrom = CLIENT_B;
      p.run();
      assert.deepEqual(p.server.peer, CLIENT_B, 'the server follows the validated new path');
      const now = Buffer.from(p.client.destinationId());
      assert.notDeepEqual(now, before, 'a new path uses a new id');
      assert.ok(
        p.issued.some((id) => Buffer.from(id).equals(now)),
        'the id the client moved to is one the endpoint issued',
      );
    } finally {
      p.close();
    }
  });
});

describe('QuicConnection: sends before address validation', () => {
  it('stay within three times what the client sent until the handshake completes, which it does', () => {
    const p = new Pair(false);
    try {
      for (let i = 0; i < 20 && !p.server.conn.isEstablished(); i++) {
        assert.ok(p.sentToClient <= 3 * p.receivedFromA, `${p.sentToClient} bytes sent for ${p.receivedFromA}`);
        p.step();
      }
      assert.ok(p.server.conn.isEstablished(), 'the handshake completed');
      assert.ok(p.client.isEstablished());
    } finally {
      p.close();
    }
  });
});
