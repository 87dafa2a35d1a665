/**
 * The spooky-dataplane process: bootstrap from the YAML file (listen, TLS, log, control socket),
 * serve, and follow the control plane. Before the first snapshot it serves the cached last
 * snapshot when there is one, else the file itself; it keeps serving whatever it has while the
 * control plane is away. Validation errors print and exit 1 before any port is bound.
 */
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { allocatorHost, allocatorWarning } from '../lib/allocator.js';
import { applyHeapGrowing } from '../lib/heap-growing.js';
import { createLogger, describeOpenError, setLogLevel } from '../lib/log.js';
import { resolveServiceAccount } from '../lib/system-accounts.js';
import { VERSION } from '../lib/version.js';
import { formatIssues, loadConfigFile } from '../model/config/load.js';
import {
  type BootstrapConfig,
  buildBootstrapConfig,
  buildRuntimeConfig,
  type RuntimeConfig,
  resolveLogLevel,
} from '../model/config/runtime.js';
import { decodeSnapshot } from '../model/snapshot/codec.js';
import { memoryLimitBytes } from './connection-guard.js';
import { readSnapshotCache, writeSnapshotCache } from './control/snapshot-cache.js';
import type { ApplyOutcome, DataPlane, WorkerRole } from './dataplane.js';
import { snapshotSupportError } from './feature-support.js';
import { dropPrivileges } from './privileges.js';
import { hostWarnings } from './startup-checks.js';
import { HandoffChannel } from './workers/handoff.js';
import { isToWorker, type ToSupervisor, type ToWorker, type WorkerArgs } from './workers/protocol.js';
import { pinWorkers, resolveWorkerCount, workerShare } from './workers/shares.js';
import { runSupervisor } from './workers/supervisor.js';

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

export interface DataPlaneProcessOptions {
  /** How often the data plane sends `Stats` to the control plane (`--stats-interval-ms`); 5000. */
  statsIntervalMs?: number;
  /** Set by the supervisor (hidden `--worker-*` options): this process is one of its workers. */
  worker?: WorkerArgs;
  /** `--workers`: performance.workers for this process, whatever the file and snapshots say. */
  workers?: 'auto' | number;
}

/** The first message of the supervisor: the keys every worker shares. */
function supervisorKeys(): Promise<{ ticketKey: Uint8Array; retryKey: Uint8Array }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no keys from the supervisor within 10 s')), 10_000);
    const onMessage = (m: unknown) => {
      if (!isToWorker(m) || m.type !== 'keys') return;
      clearTimeout(timer);
      process.off('message', onMessage);
      resolve({ ticketKey: Buffer.from(m.ticketKey, 'base64'), retryKey: Buffer.from(m.retryKey, 'base64') });
    };
    process.on('message', onMessage);
    // A failed send (the supervisor is gone) must not throw: 'disconnect' handles that case.
    process.send?.({ type: 'ready' } satisfies ToSupervisor, undefined, undefined, () => {});
  });
}

/**
 * A data plane that follows a remote control plane (control.server) binds where its own file
 * says: in a fleet each host has its own address (and may have its own port), while every other
 * setting comes from the control plane's snapshot. Without control.server, `own` is null and the
 * snapshot's listener is the one served (a change to it needs a restart and is NACKed).
 */
function pinListener(config: RuntimeConfig, own: { address: string; port: number } | null): RuntimeConfig {
  if (own === null || (config.listen.address === own.address && config.listen.port === own.port)) return config;
  return Object.freeze({
    ...config,
    listen: Object.freeze({ ...config.listen, address: own.address, port: own.port }),
  });
}

/** The one line for a listener that cannot be bound. */
function cannotStart(e: unknown, runtime: RuntimeConfig): string {
  const err = e as NodeJS.ErrnoException;
  const where = `${runtime.listen.address}:${runtime.listen.port}`;
  const why =
    err.code === 'EADDRINUSE'
      ? `${where} is already in use by another process`
      : err.code === 'EACCES'
        ? `permission denied binding ${where} (ports below 1024 need root or CAP_NET_BIND_SERVICE)`
        : err.message;
  return `spooky-dataplane: cannot start: ${why}`;
}

export async function runDataPlane(file: string, options: DataPlaneProcessOptions = {}): Promise<void> {
  // Before the first request allocates anything (lib/heap-growing.ts says why).
  applyHeapGrowing();
  const loaded = loadConfigFile(file, { controlSides: ['server'] });
  if (loaded.warnings.length > 0) process.stderr.write(`${formatIssues(file, loaded.warnings, 'warning')}\n`);
  if (!loaded.ok) fail(formatIssues(file, loaded.errors));
  const baseDir = dirname(file);
  let bootstrap: BootstrapConfig;
  try {
    bootstrap = buildBootstrapConfig(loaded.config, { baseDir, sides: ['server'] });
  } catch (e) {
    // A control.server TLS file changed into something unreadable since validation a moment ago.
    fail(`spooky-dataplane: ${(e as Error).message}`);
  }
  let log: Logger;
  try {
    // The file's level from the first line: startup warnings obey it (the cached snapshot's, if
    // any, takes over below).
    log = createLogger({
      level: resolveLogLevel(loaded.config.log.level),
      format: loaded.config.log.format,
      component: 'dataplane',
      destination: bootstrap.logFile,
    });
  } catch (e) {
    fail(`spooky-dataplane: cannot open log.file ${bootstrap.logFile}: ${describeOpenError(e)}`);
  }
  // Once per host: the supervisor (or the single process) says them, not every worker again.
  if (!options.worker) {
    for (const w of hostWarnings()) log.warn({ check: w.check }, w.message);
    const allocatorNote = allocatorWarning(process.env, allocatorHost());
    if (allocatorNote !== null) log.warn({ check: 'allocator' }, allocatorNote);
  }

  let fromFile: RuntimeConfig;
  try {
    fromFile = buildRuntimeConfig(loaded.config, { baseDir });
  } catch (e) {
    // A certificate or key changed into something unreadable since validation a moment ago.
    fail(`spooky-dataplane: ${(e as Error).message}`);
  }
  const ownListener = bootstrap.control.server
    ? { address: fromFile.listen.address, port: fromFile.listen.port }
    : null;
  let runtime: RuntimeConfig = fromFile;
  let version = 0;
  const stateDir = bootstrap.control.stateDir;
  try {
    const cached = readSnapshotCache(stateDir);
    if (cached) {
      const rt = pinListener(decodeSnapshot(cached), ownListener);
      // A cache for another listener (the file changed) is stale: the file wins.
      if (rt.listen.address === fromFile.listen.address && rt.listen.port === fromFile.listen.port) {
        runtime = rt;
        version = cached.version;
        log.info({ version, state_dir: stateDir }, 'starting from the cached snapshot');
      }
    }
  } catch (e) {
    log.warn({ state_dir: stateDir, err: (e as Error).message }, 'ignoring an unreadable snapshot cache');
  }
  setLogLevel(log, runtime.log.level);
  // How many workers is the file's word (or --workers'), never a cached snapshot's: a restart is
  // how a new count takes effect, and it must not bring back the count it was meant to change.
  runtime = pinWorkers(runtime, options.workers ?? fromFile.performance.workers);

  const privileges = loaded.config.security.privileges;
  const dropping = privileges.enabled && process.getuid?.() === 0;
  if (dropping) {
    // A missing account fails now, before anything is bound, not after the `listening` line.
    try {
      resolveServiceAccount(privileges.user, privileges.group);
    } catch (e) {
      fail(`spooky-dataplane: security.privileges: ${(e as Error).message}`);
    }
  }

  const autoMemoryMiB = Math.floor(memoryLimitBytes({ ...runtime.performance, memory_limit_mib: 0 }) / 2 ** 20);
  const workerCountOf = (rt: RuntimeConfig) =>
    resolveWorkerCount(rt.performance.workers, rt.performance.memory_limit_mib || autoMemoryMiB);
  const workerArgs = options.worker;
  const workers = workerArgs?.count ?? workerCountOf(runtime);
  if (!workerArgs && workers > 1) {
    const supervised = runSupervisor({
      file,
      statsIntervalMs: options.statsIntervalMs ?? 5000,
      workers,
      pinned: options.workers,
      drainTimeoutMs: runtime.performance.shutdown_drain_timeout_ms,
      listen: { address: runtime.listen.address, port: runtime.listen.port, tcp: runtime.listen.tcp },
      log: log.child({ component: 'supervisor' }),
    });
    // The supervisor binds the port first: a port it cannot have is one line, not one per worker.
    return supervised.catch((e) => fail(cannotStart(e, runtime)));
  }
  // Loaded past the supervisor's branch: it forwards no traffic, and the QUIC and HTTP stacks
  // with the control-plane client are about 17 MiB of an idle process (docs/performance.md,
  // "Memory").
  const [{ DataPlane }, { ControlClient }] = await Promise.all([
    import('./dataplane.js'),
    import('./control/client.js'),
  ]);
  if (workerArgs) log = log.child({ worker: workerArgs.index });
  // One worker's share of the host-wide limits (workers/shares.ts); a single process keeps them.
  const share = (rt: RuntimeConfig) => workerShare(rt, workers, autoMemoryMiB);

  let role: WorkerRole | null = null;
  let handoff: HandoffChannel | null = null;
  // A drain the supervisor asks for while this worker is still starting is kept for later.
  let drainAsked = false;
  let rotatedKey: string | null = null;
  const onEarlyMessage = (m: unknown) => {
    if (!isToWorker(m)) return;
    if (m.type === 'drain') drainAsked = true;
    // A rotation during start-up: the keys this worker started with are already old.
    if (m.type === 'ticket-key') rotatedKey = m.ticketKey;
  };
  if (workerArgs) {
    process.on('message', onEarlyMessage);
    let keys: { ticketKey: Uint8Array; retryKey: Uint8Array };
    try {
      keys = await supervisorKeys();
      handoff = await HandoffChannel.open((datagram, from) => dp.receiveHandedOver(datagram, from));
    } catch (e) {
      fail(`spooky-dataplane worker ${workerArgs.index}: ${(e as Error).message}`);
    }
    const channel = handoff;
    role = {
      port: workerArgs.port,
      ...keys,
      steering: {
        identity: { self: workerArgs.index, count: workerArgs.count },
        handOver: (worker, datagram, from) => channel.send(worker, datagram, from),
      },
    };
  }
  const dp = new DataPlane(share(runtime), log, version, role);
  if (workerArgs) dp.metrics.labelWorker(workerArgs.index);
  try {
    await dp.start();
  } catch (e) {
    fail(cannotStart(e, runtime));
  }

  if (dropping) {
    // Listeners are bound: nothing below needs root.
    try {
      const { uid, gid } = dropPrivileges(privileges.user, privileges.group);
      log.info({ user: privileges.user, group: privileges.group, uid, gid }, 'privileges dropped');
    } catch (e) {
      fail(`spooky-dataplane: security.privileges: ${(e as Error).message}`);
    }
  }

  const control = new ControlClient({
    target: bootstrap.control.server ?? { socketPath: bootstrap.control.socket },
    diagnose: (workerArgs?.index ?? 0) === 0,
    nodeId: `${hostname()}:${dp.address.port}${workerArgs ? `/w${workerArgs.index}` : ''}`,
    build: VERSION,
    listen: { address: runtime.listen.address, port: runtime.listen.port },
    log,
    servedVersion: () => dp.current.version,
    onSnapshot: (snapshot): ApplyOutcome => {
      let rt: RuntimeConfig;
      try {
        rt = pinWorkers(pinListener(decodeSnapshot(snapshot), ownListener), options.workers);
      } catch (e) {
        return { ok: false, restartRequired: false, error: `unusable snapshot: ${(e as Error).message}` };
      }
      const unsupported = snapshotSupportError(rt);
      if (unsupported) return { ok: false, restartRequired: false, error: unsupported };
      const wanted = workerCountOf(rt);
      if (wanted !== workers) {
        return {
          ok: false,
          restartRequired: true,
          error: `performance.workers changed (${workers} → ${wanted} workers); restart spooky-dataplane to apply it`,
        };
      }
      const outcome = dp.apply(share(rt), snapshot.version);
      // Workers hold the same snapshot: the first one keeps the cache.
      if (outcome.ok && (workerArgs?.index ?? 0) === 0) {
        try {
          writeSnapshotCache(stateDir, snapshot);
        } catch (e) {
          log.warn({ state_dir: stateDir, err: (e as Error).message }, 'cannot cache the snapshot');
        }
      }
      return outcome;
    },
    onBackendStates: (m) => dp.backendStates.update(m.epoch, m.states, m.full),
    statsIntervalMs: options.statsIntervalMs ?? 5000,
    stats: (advanceRate) => dp.stats(advanceRate),
    metricsText: () => dp.metrics.text(),
  });
  control.start();

  let draining = false;
  const drain = (reason: string) => {
    if (draining) return;
    draining = true;
    log.info({ signal: reason }, 'draining');
    if (workerArgs) {
      const timeoutMs = dp.current.config.performance.shutdown_drain_timeout_ms;
      process.send?.({ type: 'draining', timeoutMs } satisfies ToSupervisor, undefined, undefined, () => {});
    }
    control.stop();
    dp.stop()
      .then(
        () => handoff?.close(),
        (e) => {
          log.error({ err: e }, 'shutdown failed');
          process.exit(1);
        },
      )
      .then(() => process.exit(0));
  };
  let signals = 0;
  const onSignal = (signal: string) => {
    // A second signal skips the drain.
    if (++signals > 1) process.exit(1);
    drain(signal);
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  if (workerArgs && handoff) {
    const channel = handoff;
    process.off('message', onEarlyMessage);
    process.on('message', (m) => {
      if (!isToWorker(m)) return;
      handleSupervisor(m, dp, channel, drain);
    });
    // The supervisor is gone (killed): nobody restarts or stops this worker any more.
    process.on('disconnect', () => drain('supervisor gone'));
    process.send?.(
      { type: 'listening', handoffPort: channel.port } satisfies ToSupervisor,
      undefined,
      undefined,
      () => {},
    );
    if (rotatedKey !== null) dp.useTicketKey(Buffer.from(rotatedKey, 'base64'));
    if (drainAsked) drain('supervisor');
  }
}

function handleSupervisor(m: ToWorker, dp: DataPlane, handoff: HandoffChannel, drain: (why: string) => void): void {
  switch (m.type) {
    case 'peers':
      handoff.setPeers(m.ports);
      return;
    case 'ticket-key':
      dp.useTicketKey(Buffer.from(m.ticketKey, 'base64'));
      return;
    case 'drain':
      drain('supervisor');
      return;
    case 'keys':
      return;
  }
}
