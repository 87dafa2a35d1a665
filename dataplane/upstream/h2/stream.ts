/**
 * One request's stream on an upstream HTTP/2 connection: its flow-control windows in both
 * directions, the request body waiting for credit, and how far each side got. The connection
 * (connection.ts) moves the frames; the exchange (client-h2.ts) hears the events.
 */
import type { H2Connection } from './connection.js';
import { ErrorCode } from './frames.js';

/** What we announce: a receive window per stream (the most a paused stream can buffer here). */
export const STREAM_WINDOW = 256 * 1024;

export interface StreamEvents {
  /** A complete header block: interim or final response head, or trailers (`endStream`). */
  onHeaders(fields: Array<[string, string]>, endStream: boolean): void;
  onData(chunk: Buffer, endStream: boolean): void;
  /**
   * The stream ended without a complete response: RST_STREAM from the backend (`code`), a
   * GOAWAY that left it unprocessed (REFUSED_STREAM), or the connection failed (`code` null).
   */
  onReset(code: number | null, reason: string): void;
  /** Room in the flow-control windows again: request body writes may continue. */
  onDrain(): void;
  /** The stream is closed in both directions (after the last callback): its slot is free. */
  onClosed(): void;
}

export class H2Stream {
  id = 0;
  sendWindow: number;
  private recvWindow = STREAM_WINDOW;
  private unacked = 0;
  private paused = false;
  private outQueue: Buffer[] = [];
  private outBytes = 0;
  /** `write` said wait, or `bodyRoom` said 0: onDrain is owed once the queue is empty and there is room. */
  needDrain = false;
  /** undefined: the request is still open; null: end without trailers; fields: trailers to send. */
  private endWith: Array<[string, string]> | null | undefined;
  localClosed = false;
  remoteClosed = false;
  private finished = false;
  /** A final (non-1xx) response head arrived: DATA may follow. */
  responded = false;

  constructor(
    private readonly conn: H2Connection,
    readonly events: StreamEvents,
    initialSendWindow: number,
  ) {
    this.sendWindow = initialSendWindow;
  }

  /** Bytes of request body waiting for flow-control credit. */
  get buffered(): number {
    return this.outBytes;
  }

  /**
   * Request body. What both windows allow goes into the connection's output for this turn at
   * once (a client's many small QUIC reads extend one DATA frame); the rest is copied and waits
   * for credit (the chunk is lent for this call only), and the caller is asked to wait (false)
   * until onDrain: the body then waits where it came from (in QUIC, under the client's flow
   * control) rather than in a second buffer here.
   */
  write(chunk: Uint8Array): boolean {
    if (this.bodyOver) return true;
    if (chunk.length > 0) {
      const sent = this.sendsNow ? this.conn.sendBody(this, chunk) : 0;
      if (sent < chunk.length) {
        const rest = Buffer.from(chunk.subarray(sent));
        this.outQueue.push(rest);
        this.outBytes += rest.length;
        if (this.id !== 0) this.conn.markPending(this);
      }
    }
    if (this.outBytes === 0) return true;
    this.needDrain = true;
    return false;
  }

  /** What `write` sends at once (UpstreamExchange.bodyRoom); 0 owes an onDrain. */
  bodyRoom(): number {
    if (this.bodyOver) return Number.POSITIVE_INFINITY; // write takes (and drops) anything
    const room = this.sendsNow ? this.conn.bodyRoom(this) : 0;
    if (room > 0) return room;
    this.needDrain = true;
    return 0;
  }

  /** The request body was ended (or the stream is gone): more body is not sent. */
  private get bodyOver(): boolean {
    return this.localClosed || this.endWith !== undefined || this.finished;
  }

  /** Body goes straight out: nothing may overtake body already waiting, nor a stream not opened yet (no HEADERS). */
  private get sendsNow(): boolean {
    return this.outBytes === 0 && this.id !== 0;
  }

  /** Ends the request body, with trailers when given. */
  end(trailers: Array<[string, string]> | null): void {
    if (this.bodyOver) return;
    this.endWith = trailers && trailers.length > 0 ? trailers : null;
    if (this.id !== 0) this.conn.markPending(this);
  }

  /** RST_STREAM(CANCEL) and forget: no callback follows. */
  cancel(code: number = ErrorCode.CANCEL): void {
    if (this.finished) return;
    this.conn.resetStream(this, code);
  }

  /** Stops granting the backend stream credit (the client is slow); resume grants it again. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.returnCredit(0);
  }

  /** Connection internals below. Takes up to `max` queued bytes (the windows' room). */
  takeOutgoing(max: number): Buffer[] {
    const chunks: Buffer[] = [];
    let bytes = 0;
    while (this.outQueue.length > 0 && bytes < max) {
      const head = this.outQueue[0] as Buffer;
      const room = max - bytes;
      if (head.length <= room) {
        chunks.push(head);
        this.outQueue.shift();
        bytes += head.length;
      } else {
        chunks.push(head.subarray(0, room));
        this.outQueue[0] = head.subarray(room);
        bytes += room;
      }
    }
    this.outBytes -= bytes;
    return chunks;
  }

  get pendingTrailers(): Array<[string, string]> | null {
    return this.outBytes === 0 && this.endWith ? this.endWith : null;
  }

  /** END_STREAM went out, or goes out with this turn's frames: nothing of the body waits. */
  get requestEnding(): boolean {
    return this.localClosed || this.wantsEnd;
  }

  get wantsEnd(): boolean {
    return this.outBytes === 0 && this.endWith !== undefined && !this.localClosed;
  }

  /** DATA arrived: `length` counts against the window (padding included). False: window exceeded. */
  received(length: number): boolean {
    this.recvWindow -= length;
    if (this.recvWindow < 0) return false;
    this.returnCredit(length);
    return true;
  }

  private returnCredit(length: number): void {
    this.unacked += length;
    if (this.paused || this.remoteClosed || this.unacked < STREAM_WINDOW / 2) return;
    this.recvWindow += this.unacked;
    this.conn.grantStream(this, this.unacked);
    this.unacked = 0;
  }

  markFinished(): boolean {
    if (this.finished) return false;
    this.finished = true;
    return true;
  }

  get isFinished(): boolean {
    return this.finished;
  }
}
