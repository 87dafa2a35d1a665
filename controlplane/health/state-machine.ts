/**
 * The per-backend health state machine (request-path.md, "Health"). Pure: no timers, no I/O; the
 * caller passes the time of every call.
 *
 *   Healthy --failure_threshold consecutive failures--> Unhealthy (cooldown starts)
 *   Unhealthy: no probes for cooldown_ms, then --success_threshold consecutive successes--> Healthy
 *   A failure while Unhealthy resets the success count and restarts the cooldown.
 */

export type HealthState = 'healthy' | 'unhealthy';

export interface HealthPolicy {
  failureThreshold: number;
  successThreshold: number;
  cooldownMs: number;
}

export interface Transition {
  from: HealthState;
  to: HealthState;
  reason: string;
}

function plural(n: number, one: string, many: string): string {
  return `${n} consecutive ${n === 1 ? one : many}`;
}

export class HealthStateMachine {
  readonly #policy: HealthPolicy;
  #state: HealthState;
  #since: number;
  #failures = 0;
  #successes = 0;
  /** When the current cooldown began (only meaningful while unhealthy). */
  #cooldownFrom: number;

  /**
   * @param initial the starting state, healthy unless given.
   * @param startMs the time `since` reports before the first transition; an initially unhealthy
   *   machine cools down from this time.
   */
  constructor(policy: HealthPolicy, initial: HealthState = 'healthy', startMs = 0) {
    this.#policy = {
      failureThreshold: Math.max(1, Math.floor(policy.failureThreshold)),
      successThreshold: Math.max(1, Math.floor(policy.successThreshold)),
      cooldownMs: Math.max(0, policy.cooldownMs),
    };
    this.#state = initial;
    this.#since = startMs;
    this.#cooldownFrom = startMs;
  }

  get state(): HealthState {
    return this.#state;
  }

  /** When the current state began (ms). */
  get since(): number {
    return this.#since;
  }

  /** Consecutive failures counted so far while healthy. */
  get failures(): number {
    return this.#failures;
  }

  /** Consecutive successes counted so far while unhealthy. */
  get successes(): number {
    return this.#successes;
  }

  /** Whether a probe may run at `nowMs` (false while cooling down after becoming unhealthy). */
  mayProbe(nowMs: number): boolean {
    return this.#state === 'healthy' || nowMs >= this.#cooldownFrom + this.#policy.cooldownMs;
  }

  /** Feed one probe result; returns the transition when the state changed. */
  record(ok: boolean, reason: string, nowMs: number): Transition | null {
    if (this.#state === 'healthy') {
      if (ok) {
        this.#failures = 0;
        return null;
      }
      this.#failures++;
      if (this.#failures < this.#policy.failureThreshold) return null;
      const why = plural(this.#failures, 'failure', 'failures') + (reason ? `: ${reason}` : '');
      this.#state = 'unhealthy';
      this.#since = nowMs;
      this.#cooldownFrom = nowMs;
      this.#failures = 0;
      this.#successes = 0;
      return { from: 'healthy', to: 'unhealthy', reason: why };
    }
    if (!ok) {
      // A failure during recovery: start over, cooldown included.
      this.#successes = 0;
      this.#cooldownFrom = nowMs;
      return null;
    }
    this.#successes++;
    if (this.#successes < this.#policy.successThreshold) return null;
    const why = plural(this.#successes, 'success', 'successes');
    this.#state = 'healthy';
    this.#since = nowMs;
    this.#failures = 0;
    this.#successes = 0;
    return { from: 'unhealthy', to: 'healthy', reason: why };
  }
}
