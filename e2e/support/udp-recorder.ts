/**
 * A UDP relay on loopback that records what a client sends before the server's first answer
 * (its first flight: Initial, and 0-RTT packets when it resumes), so a test can replay that
 * flight from another address as an on-path attacker would.
 */
import dgram from 'node:dgram';

export class UdpRecorder {
  /** The client's datagrams sent before the server's first answer, in order. */
  firstFlight: Buffer[] = [];
  private answered = false;
  private client: dgram.RemoteInfo | null = null;

  private constructor(
    private readonly front: dgram.Socket,
    private readonly back: dgram.Socket,
  ) {
    front.on('message', (msg, rinfo) => {
      this.client = rinfo;
      if (!this.answered) this.firstFlight.push(Buffer.from(msg));
      back.send(msg);
    });
    back.on('message', (msg) => {
      this.answered = true;
      const c = this.client;
      if (c) front.send(msg, c.port, c.address);
    });
    for (const s of [front, back]) s.on('error', () => {});
  }

  /** A relay to 127.0.0.1:`serverPort`; clients send to `port`. */
  static async start(serverPort: number): Promise<UdpRecorder> {
    const front = dgram.createSocket('udp4');
    const back = dgram.createSocket('udp4');
    await new Promise<void>((r) => front.bind(0, '127.0.0.1', r));
    await new Promise<void>((r) => back.connect(serverPort, '127.0.0.1', r));
    return new UdpRecorder(front, back);
  }

  get port(): number {
    return this.front.address().port;
  }

  /** Forget the last recording (before the next client run). */
  reset(): void {
    this.firstFlight = [];
    this.answered = false;
    this.client = null;
  }

  close(): void {
    this.front.close();
    this.back.close();
  }
}

/** Sends `datagrams` to 127.0.0.1:`port` from a fresh socket (another source port), then closes it. */
export async function replay(port: number, datagrams: Buffer[]): Promise<void> {
  const s = dgram.createSocket('udp4');
  s.on('error', () => {});
  await new Promise<void>((r) => s.connect(port, '127.0.0.1', r));
  for (const d of datagrams) await new Promise<void>((r) => s.send(d, () => r()));
  // Answers are ignored: the attacker cannot read them (it has none of the client's keys).
  await new Promise((r) => setTimeout(r, 200));
  await new Promise<void>((r) => s.close(() => r()));
}
