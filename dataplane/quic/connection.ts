/**
 * One QUIC connection driven directly on quiche's `Connection` (see shared spec quic-notes.md for
 * why not the library's JavaScript layer). Owns the per-stream send queues that absorb quiche's
 * short writes, and tells its application (HTTP/3 server or client) when streams are readable,
 * writable again, or reset. Used by both the server endpoint and the client.
 */
import { randomBytes } from 'node:crypto';
import { AmplificationLimit } from './amplification.js';
import { type DeadlineEntry, DeadlineHeap } from './deadline-heap.js';
import type { OverheadGuard } from './overhead-guard.js';
import type { Connection, Host } from './quiche.js';
import type { QuicApplication, QuicStreamTransport } from './stream-transport.js';

export type { QuicApplication };

/** Bytes queued per stream above which `streamWrite` reports backpressure. */
export const STREAM_HIGH_WATER = 256 * 1024;
const STREAM_LOW_WATER = 64 * 1024;

/** The transport glue the connection needs from its endpoint (socket and connection table). */
export interface QuicTransport {
  /** Sends a datagram the caller owns (or a copy of it). */
  sendDatagram(data: Uint8Array, to: Host): void;
  /**
   * Where a connection writes its next datagram (one buffer per endpoint; it is replaced when the
   * socket still holds the previous datagram, so read it before every `Connection.send`).
   */
  readonly sendBuffer: Uint8Array;
  /** Sends the first `len` bytes of `sendBuffer`, without a copy. */
  sendFromBuffer(len: number, to: Host): void;
  /** Calls `conn.onTimer()` at `at` (performance.now() ms); null cancels. */
  setDeadline(conn: QuicConnection, at: number | null): void;
  /** Schedules `flush` of this connection soon (coalescing many writes into one send pass). */
  scheduleFlush(conn: QuicConnection): void;
  /** Flushes this connection after a short delay, so a lone ACK can ride on the answer. */
  deferFlush(conn: QuicConnection): void;
  /** Called once the connection is closed, to drop it from tables and timers. */
  forget(conn: QuicConnection): void;
  /** The connection is being closed by one of Spooky's protective limits (for the metrics). */
  shed(conn: QuicConnection, reason: ShedReason): void;
  /**
   * A fresh connection id that now leads to `conn`, to offer the peer as a spare one it can
   * migrate to (RFC 9000 §5.1.1, §9.5); absent on endpoints that offer none.
   */
  issueConnectionId?(conn: QuicConnection): Uint8Array;
  /** The peer retired `id`: it no longer leads to `conn`. */
  retireConnectionId?(conn: QuicConnection, id: Uint8Array): void;
}

/** Spare connection ids kept issued to a client (quiche also caps them at the client's limit). */
const MAX_SPARE_IDS = 3;
/** Every this many flushes, ids the peer retired are dropped and spares topped up. */
const ID_UPKEEP_FLUSHES = 64;

/** Why Spooky closed (or drained) a connection to protect itself. */
export type ShedReason = 'overhead' | 'max_age' | 'memory';

/**
 * H3_EXCESSIVE_LOAD. This transport only carries HTTP/3 (ALPN h3), so the protective closes made
 * down here use the HTTP/3 code a client understands.
 */
const EXCESSIVE_LOAD = 0x107;
/** Transport error CONNECTION_REFUSED (RFC 9000 §20.1). */
const CONNECTION_REFUSED = 0x2;

interface SendQueue {
  chunks: Uint8Array[];
  bytes: number;
  fin: boolean;
  /** Above the high-water mark since the last drain notification. */
  blocked: boolean;
}

const BLOCKED = -2;
const STOPPED = -1;
const EMPTY = new Uint8Array(0);

const STREAM_ERR = /\((\d+)\)/;
/** Path events read per received datagram at most (quiche queues a few per new path). */
const MAX_PATH_EVENTS = 16;

interface OutgoingDatagram {
  data: Buffer;
  to: Host;
  readonly byteLength: number;
}

function sameAddress(a: Host, b: Host): boolean {
  return a.port === b.port && a.host === b.host;
}

/** quiche reports stream errors as `StreamReset(code)` / `StreamStopped(code)` in the message. */
function errorCode(e: unknown): { kind: string; code: number } {
  const msg = e instanceof Error ? e.message : String(e);
  const m = STREAM_ERR.exec(msg);
  return { kind: msg, code: m ? Number(m[1]) : 0 };
}

export class QuicConnection implements QuicStreamTransport {
  app: QuicApplication | null = null;
  /** Connection ids (latin1 keys) under which the endpoint's table knows this connection. */
  readonly ids: string[] = [];
  /** The destination id of the client's first Initial (hex): stable for the connection's life (sticky-cid). */
  originalDcid = '';
  private readonly sendQueues = new Map<number, SendQueue>();
  private established = false;
  private inputPending = false;
  /** Datagrams received, and whether the application wrote, since our last send pass. */
  private receivedSinceSend = 0;
  private wroteSinceSend = false;
  private closedNotified = false;
  /** This connection's place in the endpoint's deadline heap (connection-timers.ts). */
  readonly deadline: DeadlineEntry<QuicConnection> = DeadlineHeap.entry<QuicConnection>(this);
  /** Server side: the non-stream-input limit (see overhead-guard.ts); null on the client side. */
  overhead: OverheadGuard | null = null;
  /** performance.now() when the connection was created. */
  readonly createdAt = performance.now();
  /** Server side: fires when the handshake is not complete in time (see armHandshakeDeadline). */
  private handshakeDeadline: NodeJS.Timeout | null = null;
  /** True when the server gave up on a handshake that did not complete in time. */
  handshakeAbandoned = false;

  /**
   * Until the client's address is validated (a Retry token, or the completed handshake), what
   * this server connection may send (RFC 9000 §8.1); null once validated, and on clients.
   */
  private amplification: AmplificationLimit<OutgoingDatagram> | null;
  /** Datagrams the anti-amplification limit held back / discarded (read by the metrics at close). */
  readonly amplificationFigures = { held: 0, discarded: 0 };
  /** Offer the peer spare connection ids to migrate to (set by the server endpoint). */
  offersSpareIds = false;
  /** Spare connection ids were offered once the handshake completed. */
  private idsIssued = false;
  private flushesSinceUpkeep = 0;
  /** The address the handshake runs on (where the first Initial came from). */
  private readonly handshakePeer: Host;

  /**
   * `peer` is the client's address for the application (forwarded headers, logs, hashing). It
   * starts as the source of the first Initial and changes only when quiche reports that the
   * client migrated to a validated path (RFC 9000 §9), never from a datagram's source alone.
   */
  constructor(
    readonly conn: Connection,
    readonly transport: QuicTransport,
    readonly local: Host,
    public peer: Host,
    addressValidated = true,
  ) {
    this.handshakePeer = peer;
    this.amplification = addressValidated ? null : new AmplificationLimit();
  }

  /** The application runs: the handshake completed, or the server accepted 0-RTT early data. */
  get isEstablished(): boolean {
    return this.established;
  }

  /** The handshake completed (0-RTT early data alone does not count: a replay never completes it). */
  get handshakeCompleted(): boolean {
    return this.conn.isEstablished();
  }

  /** The server accepted 0-RTT early data and the handshake has not completed yet. */
  get inEarlyData(): boolean {
    try {
      return this.conn.isInEarlyData() && !this.conn.isEstablished();
    } catch {
      return false;
    }
  }

  /**
   * performance.tls_handshake_timeout_ms for QUIC: a handshake not complete `ms` after the first
   * Initial is closed with CONNECTION_REFUSED, so a client that stops mid-handshake (or never
   * meant to finish) gives back its admission slot then rather than at the idle timeout. Early
   * data does not count as complete: 0-RTT without the handshake is not a connection yet.
   */
  armHandshakeDeadline(ms: number): void {
    this.handshakeDeadline = setTimeout(() => {
      this.handshakeDeadline = null;
      if (this.conn.isEstablished() || this.conn.isClosed()) return;
      this.handshakeAbandoned = true;
      this.close(false, CONNECTION_REFUSED, 'handshake not completed within performance.tls_handshake_timeout_ms');
    }, ms);
    this.handshakeDeadline.unref();
  }

  /**
   * Feeds one datagram; returns false when quiche rejected it (the caller counts drops). The
   * application hears about it once per event-loop turn, in `flush`, so a burst of datagrams is
   * read as a few large chunks rather than one callback per packet.
   */
  receive(data: Uint8Array, from: Host): boolean {
    const limit = this.amplification;
    // RFC 9000 §8.1: every datagram from the address under validation counts, even one quiche
    // rejects; datagrams from elsewhere earn nothing toward it.
    if (limit && sameAddress(from, this.handshakePeer)) {
      limit.onReceived(data.length);
      if (limit.hasHeld) this.transport.scheduleFlush(this);
    }
    try {
      this.conn.recv(data, { from, to: this.local });
    } catch {
      return false;
    }
    // Only a packet quiche authenticated can start a migration; its path events say when.
    if (!sameAddress(from, this.peer)) this.followMigration();
    this.inputPending = true;
    this.receivedSinceSend++;
    this.transport.scheduleFlush(this);
    if (this.overhead && !this.overhead.onReceived(data.length)) {
      this.shed('overhead', 'too much input that is not stream data');
    }
    return true;
  }

  /** Closes the connection with H3_EXCESSIVE_LOAD to protect the server, and counts why. */
  shed(reason: ShedReason, message: string): void {
    if (this.conn.isClosed() || this.conn.isDraining()) return;
    this.transport.shed(this, reason);
    this.close(true, EXCESSIVE_LOAD, message);
  }

  /**
   * quiche makes a path from a new address active once it received an authenticated, non-probing
   * packet there, and reports `PeerMigrated` only when that path is validated (at once for a path
   * validated earlier, else after PATH_CHALLENGE/PATH_RESPONSE). Only then does `peer` change.
   */
  private followMigration(): void {
    this.upkeepIds();
    let migrated = false;
    for (let i = 0; i < MAX_PATH_EVENTS; i++) {
      const ev = this.conn.pathEventNext() as { type: string } | null | undefined;
      if (!ev) break;
      if (ev.type === 'PeerMigrated') migrated = true;
    }
    if (!migrated) return;
    try {
      for (const p of this.conn.pathStats()) {
        if (p.active) this.peer = { host: p.peerHost.host, port: p.peerHost.port };
      }
    } catch {
      // Statistics unavailable: keep the last validated address.
    }
  }

  /**
   * Forgets the ids the peer retired and offers new spare ones up to MAX_SPARE_IDS, so that a
   * client can migrate (a new address uses a new id: RFC 9000 §9.5). Each id is the endpoint's
   * (a worker's ids name the worker, so a migrated client's datagrams find it).
   */
  private upkeepIds(): void {
    const t = this.transport;
    if (!t.issueConnectionId || !this.idsIssued) return;
    this.flushesSinceUpkeep = 0;
    try {
      for (let i = 0; i < 4 * MAX_SPARE_IDS; i++) {
        const retired = this.conn.retiredScidNext();
        if (!retired) break;
        t.retireConnectionId?.(this, retired);
      }
      const spare = Math.min(this.conn.sourceCidsLeft(), MAX_SPARE_IDS - (this.conn.activeSourceCids() - 1));
      for (let i = 0; i < spare; i++) {
        const token = BigInt(`0x${randomBytes(16).toString('hex')}`);
        const id = t.issueConnectionId(this);
        try {
          this.conn.newSourceCid(id, token, false);
        } catch (e) {
          // quiche refused it (its limit): it must not route anything here.
          t.retireConnectionId?.(this, id);
          throw e;
        }
      }
    } catch {
      // The spares offered so far stand.
    }
  }

  /** Surfaces handshake completion and readable streams to the application. */
  private processInput(): void {
    this.inputPending = false;
    if (this.offersSpareIds && !this.idsIssued && this.conn.isEstablished()) {
      this.idsIssued = true;
      this.upkeepIds();
    }
    if (!this.established && (this.conn.isEstablished() || this.conn.isInEarlyData())) {
      this.established = true;
      this.app?.onEstablished();
    }
    if (this.established && this.app) {
      if (this.conn.isReadable()) for (const id of this.conn.readable()) this.app.onStreamReadable(id);
      this.app.onInput();
    }
  }

  /**
   * Reads stream data into `buf`. Returns [bytes, fin], or null when nothing is buffered.
   * A peer reset is reported to the application and returns null.
   */
  streamRead(streamId: number, buf: Uint8Array): [number, boolean] | null {
    try {
      const r = this.conn.streamRecv(streamId, buf);
      // Reading frees flow-control credit; MAX_STREAM_DATA must go out even when no packet
      // prompted this read (a resumed upload), or the peer stalls until a timer fires.
      if (r !== null && r[0] > 0) {
        this.transport.scheduleFlush(this);
        this.overhead?.onStreamData(r[0]);
      }
      return r;
    } catch (e) {
      const { kind, code } = errorCode(e);
      if (kind.startsWith('StreamReset')) this.app?.onStreamAborted(streamId, 'read', code);
      return null;
    }
  }

  /**
   * Queues `data` (and FIN) on a stream, writing what quiche takes now. Returns false when the
   * stream's queue is above the high-water mark: the caller should pause its source until
   * `onStreamDrained`. Data is never dropped silently; a stopped stream reports `onStreamAborted`.
   * A FIN must ride on at least one byte: quiche may collect a stream whose bare FIN follows
   * acknowledged data before sending it (the HTTP/3 layer uses `END_OF_STREAM`).
   */
  streamWrite(streamId: number, data: Uint8Array, fin: boolean): boolean {
    this.wroteSinceSend = true;
    let q = this.sendQueues.get(streamId);
    if (!q) {
      // Fast path: nothing queued, hand as much as quiche takes now.
      const n = this.sendNow(streamId, data, fin);
      if (n === STOPPED) return true;
      this.transport.scheduleFlush(this);
      if (n === data.length) return true; // FIN (if any) went with the last byte
      data = data.subarray(Math.max(n, 0));
      q = { chunks: [], bytes: 0, fin: false, blocked: false };
      this.sendQueues.set(streamId, q);
    }
    if (data.length > 0) {
      q.chunks.push(data);
      q.bytes += data.length;
    }
    if (fin) q.fin = true;
    this.transport.scheduleFlush(this);
    if (q.bytes > STREAM_HIGH_WATER) {
      q.blocked = true;
      return false;
    }
    return true;
  }

  /**
   * Hands data to quiche; returns how much it took, BLOCKED when it took nothing (not even a
   * zero-length FIN), or STOPPED when the stream can no longer be written (stopped by the peer
   * or already finished), in which case its queue is discarded.
   */
  private sendNow(streamId: number, data: Uint8Array, fin: boolean): number {
    try {
      return this.conn.streamSend(streamId, data, fin) ?? BLOCKED;
    } catch (e) {
      const { kind, code } = errorCode(e);
      this.sendQueues.delete(streamId);
      if (kind.startsWith('StreamStopped')) this.app?.onStreamAborted(streamId, 'write', code);
      return STOPPED;
    }
  }

  /** Moves queued data into quiche for every stream that has capacity now. */
  private drainWritable(): void {
    if (this.sendQueues.size === 0) return;
    // The queued streams themselves, not quiche's `writable()`: through the binding that is an
    // iterator costing ~6 µs a call plus 0.4 µs per writable stream (docs/performance.md).
    for (const [id, q] of this.sendQueues) {
      if (q.chunks.length > 0 && !this.hasCapacity(id)) continue;
      let stopped = false;
      while (q.chunks.length > 0) {
        const chunk = q.chunks[0];
        const last = q.chunks.length === 1;
        const n = this.sendNow(id, chunk, last && q.fin);
        if (n === STOPPED) {
          stopped = true;
          break;
        }
        if (n <= 0) break;
        q.bytes -= n;
        if (n < chunk.length) {
          q.chunks[0] = chunk.subarray(n);
          break;
        }
        q.chunks.shift();
        if (last) q.fin = false;
      }
      if (stopped) continue;
      if (q.chunks.length === 0 && q.fin) {
        // A FIN with no data left to carry it.
        const n = this.sendNow(id, EMPTY, true);
        if (n === STOPPED) continue;
        if (n >= 0) q.fin = false;
      }
      if (q.chunks.length === 0 && !q.fin) this.sendQueues.delete(id);
      if (q.blocked && q.bytes <= STREAM_LOW_WATER) {
        q.blocked = false;
        this.app?.onStreamDrained(id);
      }
    }
  }

  /** True when quiche takes data on the stream now, or will report why not (stopped, finished). */
  private hasCapacity(streamId: number): boolean {
    try {
      return this.conn.streamCapacity(streamId) > 0;
    } catch {
      return true;
    }
  }

  /** Abruptly ends one or both directions of a stream with an application error code. */
  streamShutdown(streamId: number, direction: 'read' | 'write', code: number): void {
    this.wroteSinceSend = true;
    if (direction === 'write') this.sendQueues.delete(streamId);
    try {
      this.conn.streamShutdown(streamId, direction === 'read' ? 0 : 1, code);
    } catch {
      // Already finished or never existed in that direction: nothing left to abort.
    }
    this.transport.scheduleFlush(this);
  }

  /** The peer's verified certificate chain (DER, leaf first), or null. */
  peerCertChain(): Uint8Array[] | null {
    return this.conn.peerCertChain();
  }

  /** quiche forgets a stream once everything on it is acknowledged (or it was stopped). */
  streamAlive(streamId: number): boolean {
    try {
      this.conn.streamCapacity(streamId);
      return true;
    } catch {
      return false;
    }
  }

  /** Closes the connection with an application (HTTP/3) or transport error code. */
  close(isApp: boolean, code: number, reason: string): void {
    try {
      this.conn.close(isApp, code, Buffer.from(reason));
    } catch {
      // Already closing.
    }
    // CONNECTION_CLOSE must leave now: the caller may close the socket right after.
    this.flush(true);
  }

  /**
   * Once per loop turn (and after timeouts): hands new input to the application, moves queued
   * stream data into quiche, sends every datagram it has ready, re-arms the timer, and retires
   * a closed connection.
   */
  flush(force = false): void {
    if (this.inputPending) this.processInput();
    if (this.idsIssued && ++this.flushesSinceUpkeep >= ID_UPKEEP_FLUSHES) this.upkeepIds();
    this.drainWritable();
    // RFC 9000 §13.2.2: one ack-eliciting packet may wait (up to max_ack_delay) for an ACK; if
    // the answer is written within a millisecond the ACK rides on it, halving small-request
    // packets. Two or more datagrams, or anything of ours to send, go out now.
    if (!force && !this.wroteSinceSend && this.receivedSinceSend === 1 && this.established && !this.conn.isClosed()) {
      this.transport.deferFlush(this);
      return;
    }
    this.receivedSinceSend = 0;
    this.wroteSinceSend = false;
    if (this.amplification) this.sendHeld();
    const t = this.transport;
    for (;;) {
      const buf = t.sendBuffer;
      let res: ReturnType<Connection['send']>;
      try {
        res = this.conn.send(buf);
      } catch {
        break;
      }
      if (res === null) break;
      const [len, info] = res;
      // quiche's `info.at` (its pacing release time) reaches JavaScript as an empty object in
      // this binding, so datagrams leave as they are produced (docs/performance.md).
      if (this.amplification) {
        // Held datagrams outlive this pass: they get their own copy.
        this.sendLimited({ data: Buffer.from(buf.subarray(0, len)), to: info.to, byteLength: len });
      } else {
        // Only what really leaves earns the peer ACK allowance (handshake sends stay under the base).
        this.overhead?.onSent(len);
        t.sendFromBuffer(len, info.to);
      }
    }
    if (this.conn.isClosed()) {
      this.retire();
      return;
    }
    this.armTimer();
  }

  /**
   * Before validation: once the handshake completed (the client read our Handshake keys) the
   * limit ends and what was held leaves; until then held datagrams leave as credit allows.
   */
  private sendHeld(): void {
    const limit = this.amplification as AmplificationLimit<OutgoingDatagram>;
    if (this.conn.isEstablished()) {
      for (const d of limit.release()) this.transport.sendDatagram(d.data, d.to);
      this.noteAmplification(limit);
      this.amplification = null;
      return;
    }
    for (const d of limit.offer(null)) this.transport.sendDatagram(d.data, d.to);
  }

  private sendLimited(d: OutgoingDatagram): void {
    const limit = this.amplification as AmplificationLimit<OutgoingDatagram>;
    for (const out of limit.offer(d)) this.transport.sendDatagram(out.data, out.to);
  }

  private noteAmplification(limit: AmplificationLimit<OutgoingDatagram>): void {
    this.amplificationFigures.held = limit.heldCount;
    this.amplificationFigures.discarded = limit.discardedCount;
  }

  private armTimer(): void {
    const ms = this.conn.timeout();
    this.transport.setDeadline(this, ms === null ? null : performance.now() + ms);
  }

  /** The deadline set in `armTimer` was reached. */
  onTimer(): void {
    // Due deadlines fire in a batch: an earlier one's work may have retired this connection.
    if (this.closedNotified) return;
    this.conn.onTimeout();
    this.inputPending = true;
    this.flush();
  }

  private retire(): void {
    if (this.amplification) this.noteAmplification(this.amplification);
    if (this.handshakeDeadline) clearTimeout(this.handshakeDeadline);
    this.handshakeDeadline = null;
    this.transport.setDeadline(this, null);
    this.sendQueues.clear();
    this.transport.forget(this);
    if (this.closedNotified) return;
    this.closedNotified = true;
    const local = this.conn.localError();
    const peer = this.conn.peerError();
    const err = local ?? peer;
    this.app?.onClosed(
      err
        ? {
            local: err === local,
            isApp: err.isApp,
            code: err.errorCode,
            reason: Buffer.from(err.reason).toString('utf8'),
          }
        : null,
    );
  }
}
