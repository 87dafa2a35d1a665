/**
 * The bundled quiche (0.18) lets a peer grow the server's memory with frames that carry no stream
 * data: PATH_CHALLENGE floods (CVE-2023-6193), NEW_CONNECTION_ID with ever-rising
 * retire_prior_to (CVE-2024-1410), CRYPTO frames after the handshake (CVE-2024-1765). Spooky
 * cannot patch quiche here, but it sees every datagram and every stream byte: all three floods
 * look like many bytes received that never become stream data. This guard measures that per
 * connection over fixed windows and says when a connection is over its allowance (pure: the
 * caller passes the clock).
 *
 * The allowance has to leave room for honest overhead: packet headers and padding, ACKs for what
 * we send (a downloading client sends little else), and frame headers around small requests; and
 * for stream data quiche holds that the application has not read yet (a paused upload): up to the
 * connection's flow-control window, which is all a peer may send ahead of our reads.
 */
export const OVERHEAD_WINDOW_MS = 10_000;
/** Non-stream bytes always allowed per window. */
export const OVERHEAD_BASE_BYTES = 1 << 20;
/** Plus this share of the bytes we sent in the window (the peer's ACKs for them). */
export const OVERHEAD_PER_BYTE_SENT = 0.1;
/** Plus this much per byte of stream data received (headers of small frames). */
export const OVERHEAD_PER_STREAM_BYTE = 1;
/** Checked only every this many received bytes, so the per-datagram cost is two additions. */
const CHECK_EVERY_BYTES = 64 * 1024;

export class OverheadGuard {
  private windowStart: number;
  private received = 0;
  private streamReceived = 0;
  private sent = 0;
  private nextCheck = CHECK_EVERY_BYTES;

  /**
   * `now`: a millisecond clock, read only every CHECK_EVERY_BYTES. `unreadWindow`: the
   * most unread stream data the flow-control windows allow (dataplane.ts unreadWindowBytes).
   */
  constructor(
    private readonly now: () => number,
    private readonly unreadWindow = 0,
  ) {
    this.windowStart = now();
  }

  /** Bytes we sent to the peer (whole datagrams). */
  onSent(bytes: number): void {
    this.sent += bytes;
  }

  /** Stream data the application read. */
  onStreamData(bytes: number): void {
    this.streamReceived += bytes;
  }

  /**
   * A datagram quiche accepted, of `bytes`. Returns false when the connection has received more
   * non-stream bytes in this window than its allowance: the caller closes it.
   */
  onReceived(bytes: number): boolean {
    this.received += bytes;
    if (this.received < this.nextCheck) return true;
    const nowMs = this.now();
    if (nowMs - this.windowStart >= OVERHEAD_WINDOW_MS) {
      // A new window (at most CHECK_EVERY_BYTES of the old one go unjudged).
      this.windowStart = nowMs;
      this.received = bytes;
      this.streamReceived = 0;
      this.sent = 0;
      this.nextCheck = CHECK_EVERY_BYTES;
      return true;
    }
    this.nextCheck = this.received + CHECK_EVERY_BYTES;
    return !this.overAllowance();
  }

  /** Non-stream bytes received in the current window, and what they may be. */
  get figures(): { overhead: number; allowance: number } {
    return {
      overhead: Math.max(0, this.received - this.streamReceived),
      allowance:
        OVERHEAD_BASE_BYTES +
        this.unreadWindow +
        OVERHEAD_PER_BYTE_SENT * this.sent +
        OVERHEAD_PER_STREAM_BYTE * this.streamReceived,
    };
  }

  private overAllowance(): boolean {
    const { overhead, allowance } = this.figures;
    return overhead > allowance;
  }
}
