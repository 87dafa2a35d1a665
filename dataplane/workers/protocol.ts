/**
 * The messages between the data-plane supervisor and its workers, over the IPC channel of
 * child_process.fork. Keys travel here rather than on the command line (visible in `ps`).
 */

export type ToWorker =
  /** First message to every worker: the keys all workers share (base64). */
  | { type: 'keys'; ticketKey: string; retryKey: string }
  /** The session-ticket key rotated (base64). */
  | { type: 'ticket-key'; ticketKey: string }
  /** Every worker's hand-over port by index; 0 while a worker is not listening. */
  | { type: 'peers'; ports: number[] }
  /** Stop accepting, drain and exit (the supervisor received SIGTERM or SIGINT). */
  | { type: 'drain' };

export type ToSupervisor =
  /** The worker is up and listens for messages: send it the keys (one sent earlier may be lost). */
  | { type: 'ready' }
  /** The worker listens on the shared port and takes hand-overs on `handoffPort`. */
  | { type: 'listening'; handoffPort: number }
  /** The worker began to drain, for at most `timeoutMs` (its current shutdown_drain_timeout_ms). */
  | { type: 'draining'; timeoutMs: number };

/** Hidden command-line options of spooky-dataplane that make a process a worker. */
export interface WorkerArgs {
  index: number;
  count: number;
  port: number;
}

export function isToWorker(m: unknown): m is ToWorker {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}

export function isToSupervisor(m: unknown): m is ToSupervisor {
  if (typeof m !== 'object' || m === null) return false;
  const type = (m as { type?: unknown }).type;
  return (
    type === 'ready' ||
    (type === 'listening' && typeof (m as { handoffPort?: unknown }).handoffPort === 'number') ||
    (type === 'draining' && typeof (m as { timeoutMs?: unknown }).timeoutMs === 'number')
  );
}
