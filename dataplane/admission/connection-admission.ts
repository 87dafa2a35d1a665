// Admission of new client connections, QUIC and TCP alike: a global cap on open connections, a
// per-source cap and new-connection rate (so one address cannot take the capacity of all), and
// the global token bucket for handshakes from unvalidated addresses. Pure: the time is passed in.
//
// Address validation decides which limits can be trusted. A QUIC Initial's source address can be
// spoofed until the address is validated (RFC 9000 §8: a Retry token, or the handshake itself);
// a TCP connection's cannot (the three-way handshake proved it). So:
//   * unvalidated attempts (a QUIC Initial without a Retry token) draw from the global bucket
//     (`new_connections_per_sec` / `_burst`): the only limit a spoofer with many addresses meets;
//   * validated attempts (TCP, a QUIC Initial with a valid Retry token) never touch that bucket:
//     when spoofed Initials have emptied it, validated clients still get in, judged by their own
//     per-source share only;
//   * every attempt counts against its source's cap and rate, and the global cap.
// A source's share is kept apart for validated and unvalidated attempts: spoofed Initials that
// carry a victim's address can use up the victim's unvalidated share, never its validated one.

import { TokenBucket } from '../resilience/token-bucket.js';
import { sourceKey } from './source-key.js';

export interface AdmissionLimits {
  /** max_active_connections: open client connections, QUIC and TCP together. */
  readonly maxActive: number;
  /** new_connections_per_sec / new_connections_burst: unvalidated handshakes, all sources. */
  readonly newPerSec: number;
  readonly newBurst: number;
  /** per_source_max_connections: open connections of one source (IPv4 address or IPv6 /64). */
  readonly perSourceMaxActive: number;
  /** per_source_new_connections_per_sec / _burst: new connections of one source. */
  readonly perSourceNewPerSec: number;
  readonly perSourceNewBurst: number;
}

/** One connection attempt: who from, and whether that address is proven (TCP, QUIC Retry token). */
export interface AdmissionAttempt {
  readonly peer: { readonly host: string };
  readonly addressValidated: boolean;
}

/** Why an attempt was refused; also the `reason` label of spooky_overload_shed_by_reason_total. */
export type AdmissionRefusal =
  | 'connection_cap'
  | 'connection_rate'
  | 'source_connection_cap'
  | 'source_connection_rate'
  /** The process is over performance.memory_limit_mib (decided by the data plane's memory guard). */
  | 'memory';

/** Held by an admitted connection; `release` (idempotent) when it is gone. */
export interface AdmissionLease {
  release(): void;
}

export type AdmissionVerdict =
  | { readonly ok: true; readonly lease: AdmissionLease }
  | { readonly ok: false; readonly reason: AdmissionRefusal };

interface SourceShare {
  active: number;
  /** New-connection tokens of this source (created full at its first admission). */
  bucket: TokenBucket;
}

/** How often idle shares are swept from the table. */
const SWEEP_INTERVAL_MS = 1000;

export class ConnectionAdmission {
  #limits: AdmissionLimits;
  #global: TokenBucket;
  #active = 0;
  /** `v|KEY` (validated) or `u|KEY` (unvalidated) → share. */
  readonly #sources = new Map<string, SourceShare>();
  #lastSweepMs: number;

  constructor(limits: AdmissionLimits, nowMs: number) {
    this.#limits = limits;
    this.#global = new TokenBucket(limits.newPerSec, limits.newBurst, nowMs);
    this.#lastSweepMs = nowMs;
  }

  /** Open connections holding a lease. */
  get active(): number {
    return this.#active;
  }

  /**
   * Per-source shares tracked at `nowMs` (bounded by open connections plus recent admissions).
   * Sweeps first: with no new connections coming, nothing else would forget idle shares.
   */
  trackedSources(nowMs: number): number {
    this.#sweep(nowMs);
    return this.#sources.size;
  }

  /**
   * New limits (a snapshot change). Open connections and their counts stay; a changed rate
   * starts its buckets afresh (full).
   */
  configure(limits: AdmissionLimits, nowMs: number): void {
    const old = this.#limits;
    this.#limits = limits;
    if (old.newPerSec !== limits.newPerSec || old.newBurst !== limits.newBurst) {
      this.#global = new TokenBucket(limits.newPerSec, limits.newBurst, nowMs);
    }
    if (old.perSourceNewPerSec !== limits.perSourceNewPerSec || old.perSourceNewBurst !== limits.perSourceNewBurst) {
      for (const share of this.#sources.values()) share.bucket = this.#sourceBucket(nowMs);
    }
  }

  /** Admits the attempt (the caller then holds the lease) or says which limit refused it. */
  admit(attempt: AdmissionAttempt, nowMs: number): AdmissionVerdict {
    this.#sweep(nowMs);
    const limits = this.#limits;
    if (this.#active >= limits.maxActive) return refused('connection_cap');
    const key = `${attempt.addressValidated ? 'v' : 'u'}|${sourceKey(attempt.peer.host)}`;
    const share = this.#sources.get(key);
    if (share) {
      if (share.active >= limits.perSourceMaxActive) return refused('source_connection_cap');
      if (share.bucket.tokens(nowMs) < 1) return refused('source_connection_rate');
    }
    // Checked last, and only now taken from: a source over its own share never drains the
    // bucket everyone's unvalidated handshakes share.
    if (!attempt.addressValidated && !this.#global.tryTake(nowMs)) return refused('connection_rate');
    const admitted = share ?? { active: 0, bucket: this.#sourceBucket(nowMs) };
    if (!share) this.#sources.set(key, admitted);
    admitted.bucket.tryTake(nowMs);
    admitted.active++;
    this.#active++;
    let released = false;
    return {
      ok: true,
      lease: {
        release: () => {
          if (released) return;
          released = true;
          admitted.active--;
          this.#active--;
        },
      },
    };
  }

  #sourceBucket(nowMs: number): TokenBucket {
    return new TokenBucket(this.#limits.perSourceNewPerSec, this.#limits.perSourceNewBurst, nowMs);
  }

  /** Forgets shares with no open connection and a full bucket: they would admit as a new one. */
  #sweep(nowMs: number): void {
    if (nowMs - this.#lastSweepMs < SWEEP_INTERVAL_MS) return;
    this.#lastSweepMs = nowMs;
    const full = this.#limits.perSourceNewBurst;
    for (const [key, share] of this.#sources) {
      if (share.active === 0 && share.bucket.tokens(nowMs) >= full) this.#sources.delete(key);
    }
  }
}

function refused(reason: AdmissionRefusal): AdmissionVerdict {
  return { ok: false, reason };
}
