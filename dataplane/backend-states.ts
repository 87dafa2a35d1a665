/**
 * Health and operator drain per backend id, pushed by the control plane as small BackendStates
 * messages. It outlives snapshots (a backend keeps its state across an apply) and is read on
 * every pick, so it is a plain map lookup.
 */
export interface BackendState {
  healthy: boolean;
  drained: boolean;
}

export class BackendStates {
  private readonly states = new Map<string, BackendState>();
  /** The epoch of the last update applied; older ones are ignored. */
  epoch = 0;

  /** Backends without a known state count as healthy and not drained. */
  eligible(id: string): boolean {
    const s = this.states.get(id);
    return s === undefined || (s.healthy && !s.drained);
  }

  /**
   * Applies one update; returns false for a stale epoch. A `full` table replaces everything held,
   * whatever its epoch: it comes from a (possibly restarted) control plane on connect or after an
   * apply, and nothing it does not say may survive it.
   */
  update(
    epoch: number,
    states: ReadonlyArray<{ backendId: string; healthy: boolean; drained: boolean }>,
    full = false,
  ): boolean {
    if (!full && epoch <= this.epoch) return false;
    this.epoch = epoch;
    if (full) this.states.clear();
    for (const s of states) this.states.set(s.backendId, { healthy: s.healthy, drained: s.drained });
    return true;
  }
}
