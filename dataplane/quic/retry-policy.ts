/**
 * When a new QUIC connection must first prove its address with a Retry round trip
 * (`performance.quic_retry`): `always`, `never`, or `auto`, which asks for Retry while new
 * handshakes (Initials without a valid token) arrive faster than `new_connections_per_sec`.
 * Pure: the caller passes the clock.
 */
export type RetryMode = 'always' | 'never' | 'auto';

export interface RetrySettings {
  mode: RetryMode;
  newConnectionsPerSec: number;
}

const WINDOW_MS = 1000;

/** New handshakes per second over a sliding one-second window (two fixed windows, interpolated). */
export class HandshakeRate {
  private windowStart = 0;
  private current = 0;
  private previous = 0;

  /** Counts one handshake at `nowMs` and returns the estimated rate per second including it. */
  note(nowMs: number): number {
    this.roll(nowMs);
    this.current++;
    return this.estimate(nowMs);
  }

  private roll(nowMs: number): void {
    const elapsed = nowMs - this.windowStart;
    if (elapsed < WINDOW_MS) return;
    // One window later the current count becomes the previous one; after two, both are stale.
    this.previous = elapsed < 2 * WINDOW_MS ? this.current : 0;
    this.current = 0;
    this.windowStart = nowMs - (elapsed % WINDOW_MS);
  }

  private estimate(nowMs: number): number {
    const into = (nowMs - this.windowStart) / WINDOW_MS;
    return this.previous * (1 - into) + this.current;
  }
}

export class RetryPolicy {
  private readonly rate = new HandshakeRate();

  /** Called once per new handshake without a valid token: true means answer with a Retry. */
  shouldRetry(settings: RetrySettings, nowMs: number): boolean {
    if (settings.mode === 'always') return true;
    if (settings.mode === 'never') return false;
    return this.rate.note(nowMs) > settings.newConnectionsPerSec;
  }
}
