// Brownout (resilience.brownout): while in-flight use reaches trigger_percent of the admission
// capacity, shed shed_percent of the requests to non-core routes (pools not in core_routes) until
// use falls to recover_percent or below (hysteresis). The share is spread evenly by an
// accumulator, not drawn at random, so that 10 % means every tenth request. Pure: the caller
// passes the time and the figures.

export interface BrownoutPolicy {
  enabled: boolean;
  triggerPercent: number;
  recoverPercent: number;
  shedPercent: number;
  /** Pool names never shed by brownout. */
  coreRoutes: readonly string[];
}

export class Brownout {
  #policy: BrownoutPolicy;
  #core: Set<string>;
  #active = false;
  #since: number | null = null;
  #credit = 0;
  /** Requests refused by brownout (for status). */
  shed = 0;
  activations = 0;

  constructor(policy: BrownoutPolicy) {
    this.#policy = { ...policy };
    this.#core = new Set(policy.coreRoutes);
  }

  get enabled(): boolean {
    return this.#policy.enabled;
  }

  get active(): boolean {
    return this.#active;
  }

  /** When the current brownout started (the caller's clock), or null when inactive. */
  get activeSince(): number | null {
    return this.#since;
  }

  /** A new snapshot: an active brownout stays active (re-judged at the next observation); off ends it. */
  configure(policy: BrownoutPolicy): void {
    this.#policy = { ...policy };
    this.#core = new Set(policy.coreRoutes);
    if (!policy.enabled) this.#deactivate();
  }

  /** In-flight use changed: `inFlight` of `capacity` requests. Returns whether brownout is active. */
  observe(inFlight: number, capacity: number, nowMs: number): boolean {
    const p = this.#policy;
    if (!p.enabled) return false;
    const percent = capacity > 0 ? (inFlight * 100) / capacity : 100;
    if (!this.#active && percent >= p.triggerPercent) {
      this.#active = true;
      this.#since = nowMs;
      this.#credit = 0;
      this.activations++;
    } else if (this.#active && percent <= p.recoverPercent) {
      this.#deactivate();
    }
    return this.#active;
  }

  /** Should a request to `route` be refused now? Counts it when so. */
  shouldShed(route: string): boolean {
    if (!this.#active || this.#core.has(route)) return false;
    this.#credit += this.#policy.shedPercent;
    if (this.#credit < 100) return false;
    this.#credit -= 100;
    this.shed++;
    return true;
  }

  #deactivate(): void {
    this.#active = false;
    this.#since = null;
  }
}
