/**
 * A QUIC endpoint: one UDP socket and the table of connections reached through it, keyed by
 * connection id. As a server it classifies each datagram (see `classifyDatagram`) and accepts
 * new connections; as a client it dials one. Nothing in a datagram can throw out of here.
 */
import { randomFillSync } from 'node:crypto';
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { AdmissionAttempt, AdmissionLease, AdmissionVerdict } from '../admission/connection-admission.js';
import { classifyDatagram, connectionKey, type DatagramVerdict } from './classify.js';
import { QuicConnection, type QuicTransport } from './connection.js';
import { type Config, type Host, quiche } from './quiche.js';

export const CONN_ID_LEN: number = quiche.MAX_CONN_ID_LEN;

const SOCKET_BUFFER = 16 * 1024 * 1024;

export interface EndpointCounters {
  datagramsIn: number;
  datagramsOut: number;
  /** Datagrams dropped, by reason (garbage, unknown connection, short initial, rejected by quiche). */
  dropped: Record<string, number>;
  versionNegotiations: number;
  accepted: number;
  /** Connections that closed before their handshake completed, by who closed and the code. */
  handshakeFailures: Record<string, number>;
  /** Packets quiche declared lost, summed over closed connections. */
  lostPackets: number;
}

export interface ServerEndpointOptions {
  config: Config;
  /** Called for each accepted connection; attach the application before returning. */
  onConnection(conn: QuicConnection): void;
  /**
   * Admission hook, asked before a new connection is created: a refusal drops the Initial
   * (counted as dropped: admission); an admitted connection holds the lease until it is forgotten.
   * `addressValidated` is true only for an Initial that carries a valid Retry token.
   */
  admit?(attempt: AdmissionAttempt): AdmissionVerdict;
}

export class QuicEndpoint implements QuicTransport {
  readonly counters: EndpointCounters = {
    datagramsIn: 0,
    datagramsOut: 0,
    dropped: {},
    versionNegotiations: 0,
    accepted: 0,
    handshakeFailures: {},
    lostPackets: 0,
  };
  /** Called with each connection's smoothed RTT (ms) when it closes. */
  onConnectionRtt: ((rttMs: number) => void) | null = null;
  private readonly socket: dgram.Socket;
  private readonly table = new Map<string, QuicConnection>();
  private readonly connections = new Set<QuicConnection>();
  /** The admission lease of each accepted connection, released in `forget`. */
  private readonly leases = new Map<QuicConnection, AdmissionLease>();
  private readonly pendingFlush = new Set<QuicConnection>();
  private flushQueued = false;
  private readonly sendBuffer = new Uint8Array(quiche.MAX_DATAGRAM_SIZE);
  private local: Host = { host: '', port: 0 };
  private server: ServerEndpointOptions | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly deferred = new Set<QuicConnection>();
  private deferTimer: NodeJS.Timeout | null = null;
  private socketOpen = true;

  private constructor(family: 'udp4' | 'udp6') {
    this.socket = dgram.createSocket({ type: family });
    this.socket.on('message', (msg, rinfo) => this.onDatagram(msg, { host: rinfo.address, port: rinfo.port }));
    // Send errors (ICMP unreachable surfacing as ECONNREFUSED and the like) must not end the process.
    this.socket.on('error', () => {});
  }

  /** Binds a server endpoint. Resolves once the socket listens; rejects with the bind error. */
  static async listen(address: string, port: number, options: ServerEndpointOptions): Promise<QuicEndpoint> {
    const ep = new QuicEndpoint(isIPv6(address) ? 'udp6' : 'udp4');
    ep.server = options;
    await ep.bind(address, port);
    return ep;
  }

  /** New connections use this config from now on (a certificate change); existing ones keep theirs. */
  setServerConfig(config: Config): void {
    if (this.server) this.server = { ...this.server, config };
  }

  /** Opens a client endpoint on an ephemeral port and starts a handshake to `host:port`. */
  static async connect(
    host: string,
    port: number,
    serverName: string | null,
    config: Config,
  ): Promise<{ endpoint: QuicEndpoint; connection: QuicConnection }> {
    const ep = new QuicEndpoint(isIPv6(host) ? 'udp6' : 'udp4');
    await ep.bind(isIPv6(host) ? '::' : '0.0.0.0', 0);
    const scid = newConnectionId();
    const peer = { host, port };
    const conn = quiche.Connection.connect(serverName, scid, ep.local, peer, config);
    const qc = new QuicConnection(conn, ep, ep.local, peer, ep.sendBuffer);
    ep.register(qc, scid);
    return { endpoint: ep, connection: qc };
  }

  private bind(address: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.socket.once('error', onError);
      this.socket.bind({ address, port, exclusive: true }, () => {
        this.socket.off('error', onError);
        const a = this.socket.address();
        this.local = { host: address, port: a.port };
        // Bursts of datagrams overflow the kernel's default 208 KiB socket buffers and every
        // drop costs a loss-recovery round trip. Ask for 16 MiB; Linux caps it at
        // net.core.rmem_max / wmem_max (the operations guide says to raise those).
        for (const set of [
          () => this.socket.setRecvBufferSize(SOCKET_BUFFER),
          () => this.socket.setSendBufferSize(SOCKET_BUFFER),
        ]) {
          try {
            set();
          } catch {
            // Refused by the OS: the default size stays, as before.
          }
        }
        resolve();
      });
    });
  }

  /** The socket buffer sizes the kernel actually granted (for the startup log and warnings). */
  get socketBuffers(): { recv: number; send: number } {
    return { recv: this.socket.getRecvBufferSize(), send: this.socket.getSendBufferSize() };
  }

  get address(): Host {
    return this.local;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  private drop(reason: string): void {
    this.counters.dropped[reason] = (this.counters.dropped[reason] ?? 0) + 1;
  }

  private onDatagram(msg: Buffer, from: Host): void {
    this.counters.datagramsIn++;
    const verdict: DatagramVerdict = classifyDatagram(msg, this.server !== null, (key) => this.table.has(key));
    switch (verdict.kind) {
      case 'drop':
        this.drop(verdict.reason);
        return;
      case 'known': {
        const conn = this.table.get(verdict.key);
        if (conn && !conn.receive(msg, from)) this.drop('rejected');
        return;
      }
      case 'negotiate': {
        const out = Buffer.allocUnsafe(quiche.MAX_DATAGRAM_SIZE);
        try {
          const n = quiche.negotiateVersion(verdict.scid, verdict.dcid, out);
          this.counters.versionNegotiations++;
          this.sendDatagram(out.subarray(0, n), from);
        } catch {
          this.drop('garbage');
        }
        return;
      }
      case 'new':
        this.accept(msg, from, verdict.dcid);
        return;
    }
  }

  private accept(msg: Buffer, from: Host, odcid: Uint8Array): void {
    const server = this.server;
    if (!server || this.closed) return this.drop('not_accepting');
    // No address validation yet: every Initial is judged as possibly spoofed.
    const verdict = server.admit?.({ peer: from, addressValidated: false });
    if (verdict && !verdict.ok) return this.drop('admission');
    const scid = newConnectionId();
    let conn: QuicConnection;
    try {
      const qc = quiche.Connection.accept(scid, null, this.local, from, server.config);
      conn = new QuicConnection(qc, this, this.local, from, this.sendBuffer);
    } catch {
      verdict?.lease.release();
      return this.drop('rejected');
    }
    if (verdict) this.leases.set(conn, verdict.lease);
    // The client keeps addressing its original destination id until it learns ours.
    this.register(conn, scid, odcid);
    conn.originalDcid = Buffer.from(odcid).toString('hex');
    this.counters.accepted++;
    server.onConnection(conn);
    if (!conn.receive(msg, from)) {
      this.drop('rejected');
      conn.flush();
    }
  }

  private register(conn: QuicConnection, ...ids: Uint8Array[]): void {
    for (const id of ids) {
      const key = connectionKey(id);
      conn.ids.push(key);
      this.table.set(key, conn);
    }
    this.connections.add(conn);
  }

  sendDatagram(data: Uint8Array, to: Host): void {
    if (!this.socketOpen) return;
    this.counters.datagramsOut++;
    this.socket.send(data, to.port, to.host);
  }

  scheduleFlush(conn: QuicConnection): void {
    this.pendingFlush.add(conn);
    if (this.flushQueued) return;
    this.flushQueued = true;
    // After every I/O callback of this loop turn: a response's HEADERS, DATA and FIN, and the
    // ACKs for a burst of datagrams, leave in as few packets as possible.
    setImmediate(this.flushAll);
  }

  deferFlush(conn: QuicConnection): void {
    this.deferred.add(conn);
    if (this.deferTimer) return;
    this.deferTimer = setTimeout(this.flushDeferred, 1);
  }

  private readonly flushDeferred = (): void => {
    this.deferTimer = null;
    const conns = [...this.deferred];
    this.deferred.clear();
    for (const c of conns) c.flush(true);
  };

  private readonly flushAll = (): void => {
    this.flushQueued = false;
    for (const c of this.pendingFlush) c.flush();
    this.pendingFlush.clear();
  };

  forget(conn: QuicConnection): void {
    if (this.connections.has(conn)) this.recordClose(conn);
    this.leases.get(conn)?.release();
    this.leases.delete(conn);
    for (const key of conn.ids) if (this.table.get(key) === conn) this.table.delete(key);
    this.connections.delete(conn);
    this.pendingFlush.delete(conn);
    this.deferred.delete(conn);
  }

  /** Figures of a connection that is going away, for the metrics. */
  private recordClose(conn: QuicConnection): void {
    try {
      this.counters.lostPackets += Number(conn.conn.stats().lost);
      const path = conn.conn.pathStats()[0];
      if (path && conn.isEstablished) this.onConnectionRtt?.(Number(path.rtt));
    } catch {
      // Stats of a connection quiche already freed: nothing to add.
    }
    if (!conn.isEstablished) {
      const local = conn.conn.localError();
      const peer = conn.conn.peerError();
      const err = local ?? peer;
      const reason = err ? `${err === local ? 'local' : 'peer'}_0x${err.errorCode.toString(16)}` : 'timeout';
      this.counters.handshakeFailures[reason] = (this.counters.handshakeFailures[reason] ?? 0) + 1;
    }
  }

  /** Stops accepting; existing connections keep running until `close`. */
  stopAccepting(): void {
    this.closed = true;
  }

  /** Closes every connection with `code` (HTTP/3 NO_ERROR by default) and then the socket. */
  async close(code = 0x100, reason = 'shutting down'): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.closing = this.shutdown(code, reason);
    return this.closing;
  }

  private async shutdown(code: number, reason: string): Promise<void> {
    for (const conn of [...this.connections]) conn.close(true, code, reason);
    // Give the CONNECTION_CLOSE datagrams a turn of the event loop to leave.
    await new Promise((r) => setImmediate(r));
    for (const conn of [...this.connections]) {
      if (conn.timer) clearTimeout(conn.timer);
      this.forget(conn);
    }
    if (this.deferTimer) clearTimeout(this.deferTimer);
    this.socketOpen = false;
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}

export function newConnectionId(): Uint8Array {
  return randomFillSync(Buffer.allocUnsafe(CONN_ID_LEN));
}
