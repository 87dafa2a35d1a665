/**
 * Health and operator drain per backend id, pushed by the control plane as small BackendStates
 * messages. It outlives snapshots (a backend keeps its state across an apply). Each id has one
 * state object for the life of the process, updated in place, so a cluster's host holds it and
 * reads it on every pick without a lookup.
 */
export interface BackendState {
  healthy: boolean;
  drained: boolean;
}

export class BackendStates {
  private readonly states = new Map<string, BackendState>();
  /** The epoch of the last update applied; older ones are ignored. */
  epoch = 0;

  /** The backend's state object (live: later updates change it); unknown ids are in service. */
  stateOf(id: string): Readonly<BackendState> {
    let s = this.states.get(id);
    if (!s) {
      s = { healthy: true, drained: false };
      this.states.set(id, s);
    }
    return s;
  }

  /** Healthy and not drained. */
  eligible(id: string): boolean {
    const s = this.states.get(id);
    return s === undefined || (s.healthy && !s.drained);
  }

  /**
   * Applies one update; returns false for a stale epoch. A `full` table replaces everything held,
   * whatever its epoch: it comes from a (possibly restarted) control plane on connect or after an
   * apply, and nothing it does not say may survive it (a backend it does not name is in service).
   */
  update(
    epoch: number,
    states: ReadonlyArray<{ backendId: string; healthy: boolean; drained: boolean }>,
    full = false,
  ): boolean {
    if (!full && epoch <= this.epoch) return false;
    this.epoch = epoch;
    if (full) {
      for (const s of this.states.values()) {
        s.healthy = true;
        s.drained = false;
      }
    }
    for (const u of states) {
      const s = this.stateOf(u.backendId) as BackendState;
      s.healthy = u.healthy;
      s.drained = u.drained;
    }
    return true;
  }
}
