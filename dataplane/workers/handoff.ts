/**
 * The hand-over channel between data-plane workers: a datagram that reached the wrong worker
 * (workers/steering.ts) travels to its owner over a loopback UDP socket of each worker, with the
 * client's address in front of it, and the owner feeds it to the connection as if it had read it
 * itself (its answers leave through its own socket on the shared port: the client sees one
 * address). Node has no unix datagram sockets; a loopback socket only takes datagrams from the
 * hand-over ports of the workers running now (the supervisor announces every change), and the
 * owner reads only datagrams for connections it holds, so another process on the host cannot
 * open connections under a forged client address. A handed-over datagram is never handed over
 * again.
 */
import dgram from 'node:dgram';
import type { Host } from '../quic/quiche.js';

const LOOPBACK = '127.0.0.1';

/** [host length: u8][host: ASCII][port: u16 BE] in front of the datagram. */
export function encodeHandoffHeader(from: Host): Buffer {
  const host = Buffer.from(from.host, 'latin1');
  const head = Buffer.allocUnsafe(3 + host.length);
  head[0] = host.length;
  host.copy(head, 1);
  head.writeUInt16BE(from.port, 1 + host.length);
  return head;
}

/** The client address and datagram of a hand-over message; null when it is malformed. */
export function decodeHandoff(buf: Buffer): { from: Host; datagram: Buffer } | null {
  if (buf.length < 1) return null;
  const hostLen = buf[0] as number;
  const start = 3 + hostLen;
  if (hostLen === 0 || buf.length <= start) return null;
  const host = buf.toString('latin1', 1, 1 + hostLen);
  return { from: { host, port: buf.readUInt16BE(1 + hostLen) }, datagram: buf.subarray(start) };
}

export interface HandoffCounters {
  /** Datagrams sent to their owner. */
  out: number;
  /** Datagrams received from another worker. */
  in: number;
  /** Not handed over: the owner is not running (restarting) or the message was refused. */
  dropped: number;
}

export class HandoffChannel {
  readonly counters: HandoffCounters = { out: 0, in: 0, dropped: 0 };
  /** Hand-over port of each worker by index (0: not listening). */
  private peers: readonly number[] = [];
  private peerPorts = new Set<number>();

  private constructor(
    private readonly socket: dgram.Socket,
    onDatagram: (datagram: Buffer, from: Host) => void,
  ) {
    socket.on('message', (msg, rinfo) => {
      if (rinfo.address !== LOOPBACK || !this.peerPorts.has(rinfo.port)) {
        this.counters.dropped++;
        return;
      }
      const m = decodeHandoff(msg);
      if (!m) {
        this.counters.dropped++;
        return;
      }
      this.counters.in++;
      onDatagram(m.datagram, m.from);
    });
    socket.on('error', () => {});
  }

  /** A channel on an OS-chosen loopback port; `onDatagram` gets what other workers hand over. */
  static open(onDatagram: (datagram: Buffer, from: Host) => void): Promise<HandoffChannel> {
    const socket = dgram.createSocket('udp4');
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, LOOPBACK, () => {
        socket.off('error', reject);
        resolve(new HandoffChannel(socket, onDatagram));
      });
    });
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** The hand-over ports of all workers, by index, as the supervisor last announced them. */
  setPeers(ports: readonly number[]): void {
    this.peers = ports;
    this.peerPorts = new Set(ports.filter((p) => p > 0));
  }

  /** Sends the datagram to `worker`; false when that worker is not listening (restarting). */
  send(worker: number, datagram: Uint8Array, from: Host): boolean {
    const port = this.peers[worker] ?? 0;
    if (port === 0) {
      this.counters.dropped++;
      return false;
    }
    this.counters.out++;
    this.socket.send([encodeHandoffHeader(from), datagram], port, LOOPBACK);
    return true;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
