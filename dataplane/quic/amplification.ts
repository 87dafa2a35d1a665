/**
 * RFC 9000 §8.1 anti-amplification, enforced by Spooky on top of quiche: before a client's address
 * is validated, the server sends at most three times the bytes it received from that address.
 * quiche 0.18 applies the limit to the packets it writes but not to the padding it adds to
 * datagrams carrying an Initial packet, so its handshake retransmissions (PTO probes padded to
 * 1,200 bytes) overshoot it. Datagrams over the limit are held back, in order, until the client
 * sends more or its address is validated; beyond a few they are discarded (quiche's loss recovery
 * sends their content again). Pure bookkeeping: the caller does the I/O.
 */
export const AMPLIFICATION_FACTOR = 3;
/** Datagrams held back per connection; older ones are discarded beyond this. */
const MAX_HELD = 8;

export class AmplificationLimit<T extends { byteLength: number }> {
  private received = 0;
  private sent = 0;
  private readonly held: T[] = [];
  /** Datagrams held back at least once, and those discarded without being sent. */
  heldCount = 0;
  discardedCount = 0;

  /** Bytes of a datagram received from the address under validation (valid or not: §8.1). */
  onReceived(bytes: number): void {
    this.received += bytes;
  }

  get hasHeld(): boolean {
    return this.held.length > 0;
  }

  get bytesSent(): number {
    return this.sent;
  }

  /**
   * Offers a datagram for sending; returns those that may leave now, in order (held ones first).
   * What does not fit stays held.
   */
  offer(datagram: T | null): T[] {
    if (datagram) {
      this.held.push(datagram);
      this.heldCount++;
    }
    const out: T[] = [];
    while (this.held.length > 0 && this.sent + this.held[0].byteLength <= this.received * AMPLIFICATION_FACTOR) {
      const d = this.held.shift() as T;
      this.sent += d.byteLength;
      out.push(d);
    }
    // One that left at once (it is then the last out) was never held.
    if (datagram && out.at(-1) === datagram) this.heldCount--;
    while (this.held.length > MAX_HELD) {
      this.held.shift();
      this.discardedCount++;
    }
    return out;
  }

  /** The address is validated: everything held may leave, and the limit no longer applies. */
  release(): T[] {
    const out = this.held.splice(0);
    for (const d of out) this.sent += d.byteLength;
    return out;
  }
}
