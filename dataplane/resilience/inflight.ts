// Global / per-upstream / per-backend in-flight limits (request-path.md, "Admission and
// overload"). Checked in that order; a refused acquire reserves nothing. Per-backend counts are
// keyed by backend id alone, so a backend shared by two pools has one count. Map entries are
// dropped when they reach 0. Slots are also counted per pool+backend pair, so a release without
// a matching acquire (even one whose pool and backend are each busy elsewhere) is ignored.

export type ShedReason = 'global_inflight' | 'upstream_inflight' | 'backend_inflight';

export interface InflightLimitValues {
  global: number;
  perUpstream: number;
  perBackend: number;
}

export class InflightLimits {
  #limits: InflightLimitValues;
  #total = 0;
  readonly #byUpstream = new Map<string, number>();
  readonly #byBackend = new Map<string, number>();
  readonly #byPair = new Map<string, number>();

  constructor(limits: InflightLimitValues) {
    this.#limits = { ...limits };
  }

  /** New limits from a snapshot; counts are kept (lowering a limit sheds new requests only). */
  setLimits(limits: InflightLimitValues): void {
    this.#limits = { ...limits };
  }

  get limits(): Readonly<InflightLimitValues> {
    return this.#limits;
  }

  get total(): number {
    return this.#total;
  }

  /** Reserves a slot for pool+backend: null on success, else the first limit that refused. */
  tryAcquire(pool: string, backend: string): ShedReason | null {
    if (!this.globalHasRoom()) return 'global_inflight';
    if (!this.upstreamHasRoom(pool)) return 'upstream_inflight';
    if (!this.backendHasRoom(backend)) return 'backend_inflight';
    this.#total++;
    this.#byUpstream.set(pool, (this.#byUpstream.get(pool) ?? 0) + 1);
    this.#byBackend.set(backend, (this.#byBackend.get(backend) ?? 0) + 1);
    const pair = pairKey(pool, backend);
    this.#byPair.set(pair, (this.#byPair.get(pair) ?? 0) + 1);
    return null;
  }

  /** Frees a slot taken by tryAcquire(pool, backend); ignored when there is none to free. */
  release(pool: string, backend: string): void {
    const pair = pairKey(pool, backend);
    if (!this.#byPair.has(pair)) return;
    this.#total--;
    decrement(this.#byPair, pair);
    decrement(this.#byUpstream, pool);
    decrement(this.#byBackend, backend);
  }

  globalHasRoom(): boolean {
    return this.#total < this.#limits.global;
  }

  upstreamHasRoom(pool: string): boolean {
    return (this.#byUpstream.get(pool) ?? 0) < this.#limits.perUpstream;
  }

  /** Would the backend accept one more (try another backend before shedding)? */
  backendHasRoom(backend: string): boolean {
    return this.inFlight(backend) < this.#limits.perBackend;
  }

  inFlight(backend: string): number {
    return this.#byBackend.get(backend) ?? 0;
  }

  /** Backends with requests in flight and their counts (backends at 0 are absent). */
  backendsInFlight(): Array<[string, number]> {
    return [...this.#byBackend];
  }
}

function pairKey(pool: string, backend: string): string {
  return `${pool.length}:${pool}${backend}`;
}

function decrement(map: Map<string, number>, key: string): void {
  const current = map.get(key) ?? 0;
  if (current <= 1) map.delete(key);
  else map.set(key, current - 1);
}
