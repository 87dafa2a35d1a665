/**
 * The process's memory watermark (performance.memory_limit_mib), as a state machine over RSS
 * samples (pure: the caller samples). At the limit Spooky stops accepting connections; well above
 * it, it also sheds the oldest QUIC connections, since quiche 0.18 has known ways for a peer to
 * grow a connection's memory that no per-connection limit fully covers (see docs/security.md).
 * It accepts again once RSS is back below 90% of the limit, so it does not flap at the line.
 */
export type MemoryState = 'ok' | 'refusing' | 'shedding';

/** Accepting resumes below this share of the limit. */
export const RESUME_AT = 0.9;
/** Above this share of the limit the oldest connections are shed too. */
export const SHED_AT = 1.1;

export class MemoryGuard {
  state: MemoryState = 'ok';

  constructor(public limitBytes: number) {}

  /** Takes one RSS sample; returns the state it leads to. */
  update(rssBytes: number): MemoryState {
    const limit = this.limitBytes;
    if (rssBytes >= limit * SHED_AT) this.state = 'shedding';
    else if (rssBytes >= limit) this.state = 'refusing';
    else if (rssBytes < limit * RESUME_AT) this.state = 'ok';
    else if (this.state === 'shedding') this.state = 'refusing';
    return this.state;
  }

  get refusing(): boolean {
    return this.state !== 'ok';
  }
}

/**
 * The limit `memory_limit_mib: 0` stands for: 75% of the cgroup's memory.max when the process runs
 * under one (systemd's MemoryMax=, a container limit), else 75% of the machine's memory.
 */
export function autoMemoryLimit(cgroupMaxBytes: number | null, totalBytes: number): number {
  const base =
    cgroupMaxBytes !== null && cgroupMaxBytes > 0 && cgroupMaxBytes < totalBytes ? cgroupMaxBytes : totalBytes;
  return Math.floor(base * 0.75);
}
