/**
 * A UDP socket that sends real client Initials (written by quiche's client) and records every
 * datagram the server sends back, without ever answering on its own: the view of an address that
 * a spoofed Initial named, or of a client that stops after its first flight.
 */
import { randomFillSync } from 'node:crypto';
import dgram from 'node:dgram';
import { type Connection, type Host, quiche } from '../../dataplane/quic/quiche.js';

export class InitialProbe {
  readonly replies: Buffer[] = [];
  private conn: Connection | null = null;

  private constructor(
    private readonly socket: dgram.Socket,
    readonly local: Host,
    private readonly server: Host,
  ) {
    socket.on('message', (m) => this.replies.push(m));
  }

  /** Binds a socket on `host` (port from the OS) that talks to the server at 127.0.0.1:`serverPort`. */
  static async open(serverPort: number, host = '127.0.0.1'): Promise<InitialProbe> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, host, () => resolve());
    });
    return new InitialProbe(socket, { host, port: socket.address().port }, { host: '127.0.0.1', port: serverPort });
  }

  /** Starts a new client connection and returns its first datagram (a full-size Initial). */
  firstInitial(): Buffer {
    const cfg = quiche.Config.withBoringSslCtx(false, false, null, null, null, null);
    cfg.setApplicationProtos(['h3']);
    const scid = randomFillSync(Buffer.alloc(quiche.MAX_CONN_ID_LEN));
    this.conn = quiche.Connection.connect('localhost', scid, this.local, this.server, cfg);
    return this.next();
  }

  /** Hands a Retry from the server to the client connection and returns the Initial that follows. */
  followRetry(retry: Buffer): Buffer {
    if (!this.conn) throw new Error('no connection');
    this.conn.recv(Buffer.from(retry), { from: this.server, to: this.local });
    return this.next();
  }

  private next(): Buffer {
    const buf = Buffer.alloc(quiche.MAX_DATAGRAM_SIZE);
    const r = this.conn?.send(buf);
    if (!r) throw new Error('the client had nothing to send');
    return Buffer.from(buf.subarray(0, r[0]));
  }

  send(datagram: Buffer): Promise<void> {
    return new Promise((resolve) => this.socket.send(datagram, this.server.port, this.server.host, () => resolve()));
  }

  /** Waits until `count` replies arrived or `ms` passed; returns the replies so far. */
  async waitReplies(count: number, ms: number): Promise<Buffer[]> {
    const deadline = Date.now() + ms;
    while (this.replies.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return [...this.replies];
  }

  get bytesReceived(): number {
    return this.replies.reduce((n, b) => n + b.length, 0);
  }

  close(): void {
    this.socket.close();
  }
}
