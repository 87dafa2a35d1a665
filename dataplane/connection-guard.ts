/**
 * Protective limits over the QUIC connections as a whole, checked once a second:
 *
 * - Connection age (performance.max_connection_age_ms): a connection that old gets GOAWAY, and
 *   is closed once its streams are answered and acknowledged, or shutdown_drain_timeout_ms later.
 *   Clients reconnect; whatever a long-lived peer made quiche 0.18 accumulate goes with it.
 * - Process memory (performance.memory_limit_mib, see resilience/memory-guard.ts): at the limit
 *   new connections are refused; well above it the oldest QUIC connections are shed too.
 */
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import type { Logger } from 'pino';
import type { RuntimeConfig } from '../model/config/runtime.js';
import { H3 } from './h3/errors.js';
import type { H3ServerSession } from './h3/server.js';
import { autoMemoryLimit, MemoryGuard, type MemoryState } from './resilience/memory-guard.js';

type Performance = RuntimeConfig['performance'];

const TICK_MS = 1000;
/** Share of the connections shed per tick while memory is far over the limit (at least one). */
const SHED_SHARE = 0.01;

/** memory.max of this process's cgroup (v2), or null when there is none or it is "max". */
function cgroupMemoryMax(): number | null {
  try {
    const raw = readFileSync('/sys/fs/cgroup/memory.max', 'utf8').trim();
    return /^\d+$/.test(raw) ? Number(raw) : null;
  } catch {
    return null;
  }
}

export function memoryLimitBytes(perf: Performance): number {
  return perf.memory_limit_mib > 0 ? perf.memory_limit_mib * 2 ** 20 : autoMemoryLimit(cgroupMemoryMax(), totalmem());
}

export class ConnectionGuard {
  readonly memory: MemoryGuard;
  private timer: NodeJS.Timeout | null = null;
  /** Sessions drained for their age, and when that began. */
  private readonly aged = new WeakMap<H3ServerSession, number>();

  constructor(
    private readonly sessions: ReadonlySet<H3ServerSession>,
    private readonly perf: () => Performance,
    private readonly log: Logger,
    private readonly readRss: () => number = () => process.memoryUsage.rss(),
  ) {
    this.memory = new MemoryGuard(memoryLimitBytes(perf()));
  }

  start(): void {
    this.timer ??= setInterval(() => this.tick(performance.now()), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** An applied snapshot may change the limits. */
  configure(perf: Performance): void {
    this.memory.limitBytes = memoryLimitBytes(perf);
  }

  tick(now: number): void {
    const perf = this.perf();
    this.checkAge(now, perf);
    this.checkMemory();
  }

  private checkAge(now: number, perf: Performance): void {
    const maxAge = perf.max_connection_age_ms;
    if (maxAge <= 0) return;
    // Sessions are kept in creation order: stop at the first one young enough.
    for (const s of this.sessions) {
      if (now - s.quic.createdAt < maxAge) break;
      const since = this.aged.get(s);
      if (since === undefined) {
        this.aged.set(s, now);
        s.quic.transport.shed(s.quic, 'max_age');
        s.beginDrain();
      } else if ((s.streams.size === 0 && s.unacknowledged() === 0) || now - since >= perf.shutdown_drain_timeout_ms) {
        s.closeWith(H3.NO_ERROR, 'connection age limit');
      }
    }
  }

  private checkMemory(): void {
    const before: MemoryState = this.memory.state;
    const rss = this.readRss();
    const state = this.memory.update(rss);
    if (state !== before) {
      const fields = { rss_mib: Math.round(rss / 2 ** 20), limit_mib: Math.round(this.memory.limitBytes / 2 ** 20) };
      if (state === 'ok') this.log.info(fields, 'memory back under the limit: accepting connections again');
      else this.log.warn({ ...fields, state }, 'memory over performance.memory_limit_mib: refusing new connections');
    }
    if (state !== 'shedding') return;
    let n = Math.max(1, Math.ceil(this.sessions.size * SHED_SHARE));
    for (const s of this.sessions) {
      if (n-- <= 0) break;
      s.quic.shed('memory', 'memory limit');
    }
  }
}
