/**
 * A NAT in front of a client, for tests of NAT rebinding: the client talks to `port`, the NAT
 * forwards its datagrams to the server from an outside socket and the answers back. After
 * `rebind()` the client's next datagram leaves from a new outside port (as when a NAT reassigns
 * the mapping); answers to the old port still come through for a second, then that port
 * closes. The server sees the same connection arrive from a new address without the client
 * knowing. (Closing the old port at once can strand a client that is only receiving: it has
 * nothing to send until something arrives, and nothing can arrive. That is QUIC, not the server.)
 */
import dgram from 'node:dgram';

const OLD_MAPPING_MS = 1000;

export class Nat {
  private client: { address: string; port: number } | null = null;
  private outside: dgram.Socket;
  private rebindPending = false;
  /** Every outside port used, in order. */
  readonly outsidePorts: number[] = [];

  private constructor(
    private readonly inside: dgram.Socket,
    private readonly serverPort: number,
  ) {
    this.outside = this.newOutside();
    inside.on('message', (msg, rinfo) => {
      this.client = { address: rinfo.address, port: rinfo.port };
      if (this.rebindPending) {
        this.rebindPending = false;
        const old = this.outside;
        this.outside = this.newOutside();
        setTimeout(() => old.close(), OLD_MAPPING_MS);
      }
      this.outside.send(msg, this.serverPort, '127.0.0.1');
    });
  }

  static async start(serverPort: number): Promise<Nat> {
    const inside = dgram.createSocket('udp4');
    await new Promise<void>((r) => inside.bind(0, '127.0.0.1', () => r()));
    const nat = new Nat(inside, serverPort);
    await new Promise<void>((r) => nat.outside.once('listening', () => r()));
    return nat;
  }

  private newOutside(): dgram.Socket {
    const s = dgram.createSocket('udp4');
    s.on('message', (msg) => {
      if (this.client) this.inside.send(msg, this.client.port, this.client.address);
    });
    s.on('error', () => {});
    s.bind(0, '127.0.0.1', () => this.outsidePorts.push(s.address().port));
    return s;
  }

  /** The port the client sends to. */
  get port(): number {
    return this.inside.address().port;
  }

  /** The client's next datagram leaves from a new outside port. */
  rebind(): void {
    this.rebindPending = true;
  }

  close(): void {
    this.inside.close();
    try {
      this.outside.close();
    } catch {
      // Closed already.
    }
  }
}
