/**
 * A QUIC endpoint: one UDP socket and the table of connections reached through it, keyed by
 * connection id. As a server it classifies each datagram (see `classifyDatagram`) and accepts
 * new connections; as a client it dials one. Nothing in a datagram can throw out of here.
 */
import { randomFillSync } from 'node:crypto';
import dgram from 'node:dgram';
import dns from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import type { AdmissionAttempt, AdmissionLease, AdmissionVerdict } from '../admission/connection-admission.js';
import { otherOwner, type WorkerIdentity, workerConnectionId } from '../workers/steering.js';
import { classifyDatagram, type DatagramVerdict } from './classify.js';
import { QuicConnection, type QuicTransport, type ShedReason } from './connection.js';
import { ConnectionTable } from './connection-table.js';
import { ConnectionTimers } from './connection-timers.js';
import { OverheadGuard } from './overhead-guard.js';
import { type Config, type Host, quiche } from './quiche.js';
import { RetryPolicy, type RetrySettings } from './retry-policy.js';
import { checkRetryToken, isRetryTokenFormat, mintRetryToken, newRetryTokenKey } from './retry-token.js';

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
  /** Connections closed or drained by Spooky's protective limits, by reason. */
  shed: Partial<Record<ShedReason, number>>;
  /** Stateless Retry: `sent`, `validated` (a good token), and refused tokens by reason. */
  retries: Record<string, number>;
  /** Datagrams held back by the anti-amplification limit, and those discarded (closed connections). */
  amplificationHeld: number;
  amplificationDiscarded: number;
  /** Datagrams handed over to the worker owning their connection id, and received that way. */
  steeredOut: number;
  steeredIn: number;
}

/** Workers sharing the port (workers/steering.ts): who this one is and how to reach the others. */
export interface EndpointSteering {
  readonly identity: WorkerIdentity;
  /** Sends the datagram to `worker`; false when that worker cannot take it now. */
  handOver(worker: number, datagram: Buffer, from: Host): boolean;
}

const clock = () => performance.now();

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
  /** `performance.quic_retry` and the rate `auto` compares with, read per new handshake. */
  retry?(): RetrySettings;
  /** The most unread stream data flow control allows a connection (unreadWindowBytes), read per new connection. */
  streamWindowBytes?(): number;
  /** performance.tls_handshake_timeout_ms, read per new connection (none: the idle timeout only). */
  handshakeTimeoutMs?(): number;
  /** Bind with SO_REUSEPORT next to the other workers, and steer by connection id. */
  steering?: EndpointSteering;
  /** The Retry-token key, when workers must read each other's tokens; default: this process's own. */
  retryKey?: Uint8Array;
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
    shed: {},
    retries: {},
    amplificationHeld: 0,
    amplificationDiscarded: 0,
    steeredOut: 0,
    steeredIn: 0,
  };
  /** Called with each connection's smoothed RTT (ms) when it closes. */
  onConnectionRtt: ((rttMs: number) => void) | null = null;
  private readonly socket: dgram.Socket;
  private readonly connections = new ConnectionTable<QuicConnection>();
  /** The admission lease of each accepted connection, released in `forget`. */
  private readonly leases = new Map<QuicConnection, AdmissionLease>();
  private readonly pendingFlush = new Set<QuicConnection>();
  private flushQueued = false;
  sendBuffer: Uint8Array = new Uint8Array(quiche.MAX_DATAGRAM_SIZE);
  private readonly timers = new ConnectionTimers<QuicConnection>((conn) => conn.onTimer());
  private local: Host = { host: '', port: 0 };
  private server: ServerEndpointOptions | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly deferred = new Set<QuicConnection>();
  private deferTimer: NodeJS.Timeout | null = null;
  private socketOpen = true;
  /** Retry tokens are sealed with a key of this process (or its workers): nobody else can mint or read them. */
  private retryKey: Uint8Array = newRetryTokenKey();
  private readonly retryPolicy = new RetryPolicy();
  private steering: EndpointSteering | null = null;
  private readonly steerTo = (dcid: Uint8Array): number | null =>
    this.steering ? otherOwner(dcid, this.steering.identity) : null;

  private constructor(family: 'udp4' | 'udp6', reusePort = false) {
    this.socket = dgram.createSocket({ type: family, reusePort, lookup: numericLookup });
    this.socket.on('message', (msg, rinfo) =>
      this.onDatagram(msg, { host: rinfo.address, port: rinfo.port }, this.steering !== null),
    );
    // Send errors (ICMP unreachable surfacing as ECONNREFUSED and the like) must not end the process.
    this.socket.on('error', () => {});
  }

  /** Binds a server endpoint. Resolves once the socket listens; rejects with the bind error. */
  static async listen(address: string, port: number, options: ServerEndpointOptions): Promise<QuicEndpoint> {
    const ep = new QuicEndpoint(isIPv6(address) ? 'udp6' : 'udp4', options.steering !== undefined);
    ep.server = options;
    ep.steering = options.steering ?? null;
    if (options.retryKey) ep.retryKey = options.retryKey;
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
    // Resolved once here: every send must name an address, which numericLookup answers at once
    // (a send resolved later would read the shared send buffer after it was reused).
    if (isIP(host) === 0) host = (await dns.promises.lookup(host)).address;
    const ep = new QuicEndpoint(isIPv6(host) ? 'udp6' : 'udp4');
    await ep.bind(isIPv6(host) ? '::' : '0.0.0.0', 0);
    const scid = newConnectionId();
    const peer = { host, port };
    let conn: ReturnType<typeof quiche.Connection.connect>;
    try {
      conn = quiche.Connection.connect(serverName, scid, ep.local, peer, config);
    } catch (e) {
      // The bound socket would keep the process alive with nothing to do.
      await ep.close();
      throw e;
    }
    const qc = new QuicConnection(conn, ep, ep.local, peer);
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

  /**
   * A datagram another worker received for one of this worker's connection ids. Only one for a
   * connection this worker holds is read: a worker never hands over an Initial, so anything else
   * (a new connection, a version negotiation) did not come from a worker.
   */
  receiveHandedOver(msg: Buffer, from: Host): void {
    this.counters.steeredIn++;
    if (from.port === 0) return this.drop('source_port_zero');
    // Classified once, here: only a connection this worker holds may take it.
    const verdict = classifyDatagram(msg, this.server !== null, this.knows);
    if (verdict.kind !== 'known' || !this.found) return this.drop('handed_over_unknown');
    this.counters.datagramsIn++;
    if (!this.found.receive(msg, from)) this.drop('rejected');
  }

  /** The connection the last `knows` call found: one table lookup per datagram, not two. */
  private found: QuicConnection | undefined;
  private readonly knows = (key: string): boolean => (this.found = this.connections.get(key)) !== undefined;

  /** A new connection id: owned by this worker when workers share the port. */
  private newId(): Uint8Array {
    return this.steering ? workerConnectionId(this.steering.identity.self) : newConnectionId();
  }

  private onDatagram(msg: Buffer, from: Host, steer: boolean): void {
    this.counters.datagramsIn++;
    // Linux delivers datagrams from port 0, and `dgram.send` throws for that port.
    if (from.port === 0) return this.drop('source_port_zero');
    const verdict: DatagramVerdict = classifyDatagram(
      msg,
      this.server !== null,
      this.knows,
      steer ? this.steerTo : undefined,
    );
    switch (verdict.kind) {
      case 'drop':
        this.drop(verdict.reason);
        return;
      case 'steer':
        if (this.steering?.handOver(verdict.worker, msg, from)) this.counters.steeredOut++;
        else this.drop('worker_unavailable');
        return;
      case 'known': {
        const conn = this.found;
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
        this.accept(msg, from, verdict);
        return;
    }
  }

  private countRetry(outcome: string): void {
    this.counters.retries[outcome] = (this.counters.retries[outcome] ?? 0) + 1;
  }

  /**
   * A new connection attempt. A token of ours must be valid (RFC 9000 §8.1.2–8.1.3): one that is
   * forged, from another address or port, or expired is dropped without an answer, so a spoofed
   * source draws nothing (the RFC allows dropping instead of closing with INVALID_TOKEN). Any other
   * token counts as none. Without a valid token the Retry policy may ask for a Retry first.
   */
  private accept(msg: Buffer, from: Host, hdr: Extract<DatagramVerdict, { kind: 'new' }>): void {
    const server = this.server;
    if (!server || this.closed) return this.drop('not_accepting');
    const now = performance.now();
    let odcid: Uint8Array | null = null;
    if (isRetryTokenFormat(hdr.token)) {
      const check = checkRetryToken(this.retryKey, hdr.token, from, hdr.dcid, now);
      if (!check.ok) {
        this.countRetry(`token_${check.reason}`);
        return this.drop('invalid_token');
      }
      this.countRetry('validated');
      odcid = check.odcid;
    } else if (server.retry && this.retryPolicy.shouldRetry(server.retry(), now)) {
      return this.sendRetry(from, hdr, now);
    }
    const verdict = server.admit?.({ peer: from, addressValidated: odcid !== null });
    if (verdict && !verdict.ok) {
      // The shared bucket for unvalidated handshakes is empty: unless Retry is off, ask the
      // client to prove its address; validated clients are judged by their per-source share only.
      if (verdict.reason === 'connection_rate' && odcid === null && server.retry?.().mode !== 'never') {
        return this.sendRetry(from, hdr, now);
      }
      return this.drop('admission');
    }
    // After a Retry the client addresses the id the Retry gave it (ours, CONN_ID_LEN long), and
    // quiche must announce it as retry_source_connection_id with the original id (RFC 9000 §7.3).
    const scid = odcid ? hdr.dcid : this.newId();
    let conn: QuicConnection;
    try {
      const qc = quiche.Connection.accept(scid, odcid, this.local, from, server.config);
      conn = new QuicConnection(qc, this, this.local, from, odcid !== null);
      conn.overhead = new OverheadGuard(clock, server.streamWindowBytes?.() ?? 0);
      conn.offersSpareIds = true;
      const handshakeMs = server.handshakeTimeoutMs?.();
      if (handshakeMs) conn.armHandshakeDeadline(handshakeMs);
    } catch {
      verdict?.lease.release();
      return this.drop('rejected');
    }
    if (verdict) this.leases.set(conn, verdict.lease);
    // Without Retry the client keeps addressing its original destination id until it learns ours.
    if (odcid) this.register(conn, scid);
    else this.register(conn, scid, hdr.dcid);
    conn.originalDcid = Buffer.from(odcid ?? hdr.dcid).toString('hex');
    this.counters.accepted++;
    server.onConnection(conn);
    if (!conn.receive(msg, from)) {
      this.drop('rejected');
      conn.flush();
    }
  }

  /** A stateless Retry (one small packet, well under 3× the Initial) carrying a fresh token. */
  private sendRetry(from: Host, hdr: Extract<DatagramVerdict, { kind: 'new' }>, now: number): void {
    const retryScid = this.newId();
    const out = Buffer.allocUnsafe(quiche.MAX_DATAGRAM_SIZE);
    let n: number;
    try {
      const token = mintRetryToken(this.retryKey, from, retryScid, hdr.dcid, now);
      n = quiche.retry(hdr.scid, hdr.dcid, retryScid, token, hdr.version, out);
    } catch {
      return this.drop('garbage');
    }
    this.countRetry('sent');
    this.sendDatagram(out.subarray(0, n), from);
  }

  issueConnectionId(conn: QuicConnection): Uint8Array {
    const id = this.newId();
    this.connections.register(conn, id);
    return id;
  }

  retireConnectionId(conn: QuicConnection, id: Uint8Array): void {
    this.connections.unregister(conn, id);
  }

  private register(conn: QuicConnection, ...ids: Uint8Array[]): void {
    this.connections.register(conn, ...ids);
  }

  sendDatagram(data: Uint8Array, to: Host): void {
    if (!this.socketOpen) return;
    this.send(data, to);
  }

  sendFromBuffer(len: number, to: Host): void {
    if (!this.socketOpen) return;
    this.send(this.sendBuffer.subarray(0, len), to);
    // dgram hands a datagram to the kernel at once when nothing is queued on the socket
    // (uv_udp_try_send); otherwise libuv queues it and keeps reading this memory until it
    // leaves, so the next datagram is written into a new buffer.
    if (this.socket.getSendQueueCount() > 0) this.sendBuffer = new Uint8Array(quiche.MAX_DATAGRAM_SIZE);
  }

  /**
   * `dgram.send` throws synchronously for an address or port it refuses (asynchronous errors go
   * to the socket's 'error' handler): that is one datagram not sent (QUIC's loss recovery covers
   * it), never the end of the process.
   */
  private send(data: Uint8Array, to: Host): void {
    try {
      this.socket.send(data, to.port, to.host);
      this.counters.datagramsOut++;
    } catch {
      // Not counted as sent; source port 0, the case known to throw, is dropped on input.
    }
  }

  setDeadline(conn: QuicConnection, at: number | null): void {
    this.timers.set(conn.deadline, at);
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

  shed(_conn: QuicConnection, reason: ShedReason): void {
    this.counters.shed[reason] = (this.counters.shed[reason] ?? 0) + 1;
  }

  /** Open connections, oldest first. */
  get openConnections(): IterableIterator<QuicConnection> {
    return this.connections.values();
  }

  forget(conn: QuicConnection): void {
    if (this.connections.contains(conn)) this.recordClose(conn);
    this.leases.get(conn)?.release();
    this.leases.delete(conn);
    this.connections.retire(conn);
    this.pendingFlush.delete(conn);
    this.deferred.delete(conn);
  }

  /** Figures of a connection that is going away, for the metrics. */
  private recordClose(conn: QuicConnection): void {
    this.counters.amplificationHeld += conn.amplificationFigures.held;
    this.counters.amplificationDiscarded += conn.amplificationFigures.discarded;
    try {
      this.counters.lostPackets += Number(conn.conn.stats().lost);
      const path = conn.conn.pathStats()[0];
      if (path && conn.handshakeCompleted) this.onConnectionRtt?.(Number(path.rtt));
    } catch {
      // Stats of a connection quiche already freed: nothing to add.
    }
    if (!conn.handshakeCompleted) {
      const local = conn.conn.localError();
      const peer = conn.conn.peerError();
      const err = local ?? peer;
      const reason = conn.handshakeAbandoned
        ? 'deadline'
        : err
          ? `${err === local ? 'local' : 'peer'}_0x${err.errorCode.toString(16)}`
          : 'timeout';
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
    for (const conn of [...this.connections.values()]) conn.close(true, code, reason);
    // Give the CONNECTION_CLOSE datagrams a turn of the event loop to leave.
    await new Promise((r) => setImmediate(r));
    for (const conn of [...this.connections.values()]) this.forget(conn);
    this.timers.clear();
    if (this.deferTimer) clearTimeout(this.deferTimer);
    this.socketOpen = false;
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}

/**
 * dgram resolves the address of every send, and `dns.lookup` answers even an IP literal on the
 * next tick: per datagram a closure, a tick and a deferred send. Peers are addresses already
 * (from the datagrams they sent, or resolved once in `connect`), so they are answered at once,
 * and the datagram reaches libuv before `dgram.send` returns, which the zero-copy send relies on.
 */
function numericLookup(
  address: string,
  options: dns.LookupOneOptions | number,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const v = isIP(address);
  if (v !== 0) callback(null, address, v);
  else dns.lookup(address, typeof options === 'number' ? { family: options } : options, callback);
}

export function newConnectionId(): Uint8Array {
  return randomFillSync(Buffer.allocUnsafe(CONN_ID_LEN));
}
