// Global / per-upstream / per-backend in-flight limits (request-path.md, "Admission and
// overload"). Each count lives with what it counts: the global one in the process-wide admission
// (cluster/global-admission.ts), a pool's in its cluster, a backend's in its host; each outlives
// snapshots while its pool or backend stays. An attempt takes a slot in all three or in none, and
// frees exactly what it took (its lease remembers the counters, so an apply in between cannot
// make it free another pool's or backend's slot).

export type ShedReason = 'global_inflight' | 'upstream_inflight' | 'backend_inflight';

export interface InflightLimitValues {
  global: number;
  perUpstream: number;
  perBackend: number;
}

/** Requests in flight against one limit. */
export class InflightCount {
  #count = 0;

  get value(): number {
    return this.#count;
  }

  hasRoom(limit: number): boolean {
    return this.#count < limit;
  }

  increment(): void {
    this.#count++;
  }

  /** Never below 0. */
  decrement(): void {
    if (this.#count > 0) this.#count--;
  }
}

/** The three counts one attempt occupies. */
export interface InflightSlot {
  readonly global: InflightCount;
  readonly upstream: InflightCount;
  readonly backend: InflightCount;
}

/**
 * Takes one slot in each count, checked global first: null on success, else the first limit that
 * refused (and nothing is taken). Lowering a limit below a count sheds new requests only.
 */
export function acquireSlot(limits: Readonly<InflightLimitValues>, slot: InflightSlot): ShedReason | null {
  if (!slot.global.hasRoom(limits.global)) return 'global_inflight';
  if (!slot.upstream.hasRoom(limits.perUpstream)) return 'upstream_inflight';
  if (!slot.backend.hasRoom(limits.perBackend)) return 'backend_inflight';
  slot.global.increment();
  slot.upstream.increment();
  slot.backend.increment();
  return null;
}

/** Frees a slot taken by acquireSlot (the caller frees each slot once). */
export function releaseSlot(slot: InflightSlot): void {
  slot.global.decrement();
  slot.upstream.decrement();
  slot.backend.decrement();
}
