/**
 * Active health checking for every backend with a `health_check` (request-path.md, "Health"): one
 * jittered schedule per backend, one state machine per backend, every transition logged, counted
 * and handed to `onTransition` at once (the control plane pushes it to the data planes).
 */
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { RuntimeBackend, RuntimeConfig } from '../../model/config/runtime.js';
import { type ProbeResult, type ProbeSpec, probeBackend } from './prober.js';
import { type HealthPolicy, type HealthState, HealthStateMachine, type Transition } from './state-machine.js';

export type HealthCheckSpec = ProbeSpec & { intervalMs: number } & HealthPolicy;
export type HealthTarget =
  | { backend: RuntimeBackend; check: HealthCheckSpec }
  | { backend: RuntimeBackend; check: null };

export interface BackendHealth {
  id: string;
  pool: string;
  state: HealthState | 'unknown';
  since: Date;
  lastProbe: (ProbeResult & { at: Date }) | null;
}

export interface HealthCheckerOptions {
  tls: RuntimeConfig['upstreamTls'];
  /** Called at once on every transition. */
  onTransition(backendId: string, t: Transition): void;
  log: Logger;
  registry?: Registry;
  probe?: typeof probeBackend;
  now?: () => number;
  random?: () => number;
}

interface Entry {
  backend: RuntimeBackend;
  check: HealthCheckSpec | null;
  key: string;
  machine: HealthStateMachine | null;
  /** When the entry was created; `since` of a backend without a health check. */
  createdAt: number;
  lastProbe: (ProbeResult & { at: Date }) | null;
  timer: ReturnType<typeof setTimeout> | undefined;
  stopped: boolean;
  /** A probe is in flight (it may outlive a stop() and restart). */
  probing: boolean;
  /** Bumped by every stop and start, so a probe from before does not schedule again. */
  generation: number;
}

interface Metrics {
  total: Counter<'backend'>;
  success: Counter<'backend'>;
  failure: Counter<'backend' | 'reason'>;
  healthy: Gauge<'pool' | 'backend'>;
}

/** Jitter of the period between probes: interval ± 10%. */
const JITTER = 0.1;

function metricsIn(registry: Registry): Metrics {
  // Reuse what another checker registered in the same registry rather than throw.
  const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  const registers = [registry];
  return {
    total: get('spooky_health_checks_total', () => {
      const help = 'Active health probes run, per backend';
      return new Counter({ name: 'spooky_health_checks_total', help, labelNames: ['backend'], registers });
    }),
    success: get('spooky_health_checks_success_total', () => {
      const help = 'Active health probes that succeeded, per backend';
      return new Counter({ name: 'spooky_health_checks_success_total', help, labelNames: ['backend'], registers });
    }),
    failure: get('spooky_health_checks_failure_total', () => {
      const help = 'Active health probes that failed, per backend and reason';
      return new Counter({
        name: 'spooky_health_checks_failure_total',
        help,
        labelNames: ['backend', 'reason'],
        registers,
      });
    }),
    healthy: get('spooky_backend_healthy', () => {
      const help = 'Whether a backend counts as healthy (1) or not (0); backends without health_check count as 1';
      return new Gauge({ name: 'spooky_backend_healthy', help, labelNames: ['pool', 'backend'], registers });
    }),
  };
}

/** What must be equal for a backend to keep its entry (schedule and state) across update(). */
function keyOf(t: HealthTarget): string {
  const c = t.check;
  const check = c && [c.method, c.path, c.timeoutMs, c.expectedStatus, c.intervalMs, c.failureThreshold];
  return JSON.stringify([serverOf(t.backend), check, c?.successThreshold, c?.cooldownMs]);
}

/** The server a backend id points at: while it stays the same, a new health_check keeps its state. */
function serverOf(b: RuntimeBackend): string {
  return JSON.stringify([b.pool, b.origin, b.protocol]);
}

export class HealthChecker {
  readonly #opts: HealthCheckerOptions;
  readonly #probe: typeof probeBackend;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #metrics: Metrics | null;
  #entries = new Map<string, Entry>();

  constructor(opts: HealthCheckerOptions) {
    this.#opts = opts;
    this.#probe = opts.probe ?? probeBackend;
    this.#now = opts.now ?? (() => Date.now());
    this.#random = opts.random ?? Math.random;
    this.#metrics = opts.registry ? metricsIn(opts.registry) : null;
  }

  /**
   * (Re)configure from the active config: start schedules for new backends, stop removed ones and
   * keep the state of unchanged ones (same id, pool, origin, protocol and check).
   */
  update(targets: readonly HealthTarget[]): void {
    const wanted = new Map<string, { target: HealthTarget; key: string }>();
    for (const target of targets) {
      if (!wanted.has(target.backend.id)) wanted.set(target.backend.id, { target, key: keyOf(target) });
    }
    const next = new Map<string, Entry>();
    /** Backends whose check changed but not their server: they keep their state (and since). */
    const carried = new Map<string, { state: HealthState; since: number }>();
    for (const [id, entry] of this.#entries) {
      const w = wanted.get(id);
      if (w !== undefined && w.key === entry.key) {
        entry.backend = w.target.backend;
        next.set(id, entry);
        if (entry.stopped) this.#begin(entry);
      } else {
        // A fixed health_check (path, expected_status…) must not declare an unhealthy backend
        // healthy before it has passed the new check: the data planes still avoid it.
        if (w?.target.check && entry.machine && serverOf(w.target.backend) === serverOf(entry.backend))
          carried.set(id, { state: entry.machine.state, since: entry.machine.since });
        this.#retire(entry, true);
      }
    }
    for (const [id, { target, key }] of wanted) {
      if (next.has(id)) continue;
      const now = this.#now();
      const kept = carried.get(id);
      const entry: Entry = {
        backend: target.backend,
        check: target.check,
        key,
        machine: target.check
          ? new HealthStateMachine(target.check, kept?.state ?? 'healthy', kept?.since ?? now)
          : null,
        createdAt: now,
        lastProbe: null,
        timer: undefined,
        stopped: true,
        probing: false,
        generation: 0,
      };
      this.#metrics?.healthy.set({ pool: target.backend.pool, backend: id }, kept?.state === 'unhealthy' ? 0 : 1);
      next.set(id, entry);
      this.#begin(entry);
    }
    this.#entries = next;
  }

  health(): BackendHealth[] {
    return [...this.#entries.values()].map((e) => ({
      id: e.backend.id,
      pool: e.backend.pool,
      state: e.machine?.state ?? 'unknown',
      since: new Date(e.machine?.since ?? e.createdAt),
      lastProbe: e.lastProbe,
    }));
  }

  /** False only for a backend whose health check found it unhealthy; unknown counts as healthy. */
  isHealthy(id: string): boolean {
    return this.#entries.get(id)?.machine?.state !== 'unhealthy';
  }

  /** Stops every schedule; health() keeps the last known states, and update() starts again. */
  stop(): void {
    for (const entry of this.#entries.values()) this.#retire(entry, false);
  }

  #begin(entry: Entry): void {
    entry.stopped = false;
    entry.generation++;
    // First probe after a random part of the interval, so a fleet does not probe in step.
    if (entry.check) this.#schedule(entry, this.#random() * entry.check.intervalMs);
  }

  #retire(entry: Entry, removed: boolean): void {
    entry.stopped = true;
    entry.generation++;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    if (removed) this.#metrics?.healthy.remove({ pool: entry.backend.pool, backend: entry.backend.id });
  }

  #schedule(entry: Entry, delayMs: number): void {
    entry.timer = setTimeout(() => void this.#tick(entry), Math.max(0, delayMs));
    entry.timer.unref?.();
  }

  /** One due probe: skipped during cooldown; the next is scheduled only once this one is over. */
  async #tick(entry: Entry): Promise<void> {
    entry.timer = undefined;
    const { check, machine } = entry;
    const generation = entry.generation;
    if (entry.stopped || check === null || machine === null) return;
    const started = this.#now();
    const period = check.intervalMs * (1 - JITTER + 2 * JITTER * this.#random());
    if (!entry.probing && machine.mayProbe(started)) {
      let result: ProbeResult;
      entry.probing = true;
      try {
        result = await this.#probe(entry.backend, check, this.#opts.tls);
      } catch (err) {
        // probeBackend never throws; an injected probe might.
        const code = (err as { code?: unknown } | null)?.code;
        result = { ok: false, error: `error ${typeof code === 'string' ? code : 'ERROR'}`, latencyMs: 0 };
      } finally {
        entry.probing = false;
      }
      if (entry.generation !== generation) return;
      this.#record(entry, machine, result);
    }
    this.#schedule(entry, started + period - this.#now());
  }

  #record(entry: Entry, machine: HealthStateMachine, result: ProbeResult): void {
    const at = this.#now();
    const { id, pool } = entry.backend;
    entry.lastProbe = { ...result, at: new Date(at) };
    const reason = result.ok ? `status ${result.status}` : (result.error ?? 'error');
    if (this.#metrics) {
      this.#metrics.total.inc({ backend: id });
      if (result.ok) this.#metrics.success.inc({ backend: id });
      else this.#metrics.failure.inc({ backend: id, reason });
    }
    const t = machine.record(result.ok, reason, at);
    if (t === null) return;
    this.#metrics?.healthy.set({ pool, backend: id }, t.to === 'healthy' ? 1 : 0);
    const fields = { backend: id, pool, reason: t.reason, from: t.from, to: t.to };
    if (t.to === 'unhealthy') this.#opts.log.warn(fields, 'backend unhealthy');
    else this.#opts.log.info(fields, 'backend healthy');
    try {
      this.#opts.onTransition(id, t);
    } catch (err) {
      this.#opts.log.error({ err, backend: id, pool }, 'health transition handler failed');
    }
  }
}
