/**
 * Per-connection limits on request streams that cost the server work without ever becoming a
 * useful exchange (pure: the caller passes the clock):
 *
 * - Streams the client resets before their response completed: HTTP/2's "rapid reset"
 *   (CVE-2023-44487) works the same way over HTTP/3, each HEADERS + RESET_STREAM pair starting a
 *   backend request: the same allowance as on HTTP/2 (resilience/cancelled-streams.ts); past it
 *   the connection is closed.
 * - Streams whose request HEADERS have not completed (slowloris): each must complete within the
 *   header timeout, and only a few may be incomplete at once on one connection.
 */
import { cancelledStreamsBucket } from '../resilience/cancelled-streams.js';
import type { TokenBucket } from '../resilience/token-bucket.js';
/** Request streams of one connection whose HEADERS are still incomplete. */
export const MAX_STREAMS_AWAITING_HEADERS = 32;

export class StreamGuard {
  private resets: TokenBucket | null = null;
  /** Stream id → the time by which its HEADERS must have arrived, in insertion (= deadline) order. */
  private readonly awaiting = new Map<number, number>();

  constructor(readonly headerTimeoutMs: number) {}

  /** A client reset a request stream before its response completed; false once over the budget. */
  onPrematureReset(nowMs: number): boolean {
    // Created on first use: most connections never reset a stream.
    this.resets ??= cancelledStreamsBucket(nowMs);
    return this.resets.tryTake(nowMs);
  }

  /**
   * A request stream is open without complete HEADERS; false (and not tracked) when too many
   * streams of this connection already wait for theirs.
   */
  startAwaitingHeaders(streamId: number, nowMs: number): boolean {
    if (this.awaiting.has(streamId)) return true;
    if (this.awaiting.size >= MAX_STREAMS_AWAITING_HEADERS) return false;
    this.awaiting.set(streamId, nowMs + this.headerTimeoutMs);
    return true;
  }

  /** The stream's HEADERS arrived, or the stream is gone. */
  stopAwaitingHeaders(streamId: number): void {
    this.awaiting.delete(streamId);
  }

  get awaitingHeaders(): number {
    return this.awaiting.size;
  }

  /** Removes and returns the streams whose header deadline has passed. */
  takeExpired(nowMs: number): number[] {
    const out: number[] = [];
    // Every entry got the same timeout, so insertion order is deadline order.
    for (const [id, deadline] of this.awaiting) {
      if (deadline > nowMs) break;
      out.push(id);
      this.awaiting.delete(id);
    }
    return out;
  }

  /** The earliest header deadline still pending, or null. */
  nextDeadline(): number | null {
    for (const deadline of this.awaiting.values()) return deadline;
    return null;
  }
}
