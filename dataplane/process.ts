/**
 * The spooky-dataplane process: bootstrap from the YAML file (listen, TLS, log, control socket),
 * serve, and follow the control plane. Before the first snapshot it serves the cached last
 * snapshot when there is one, else the file itself; it keeps serving whatever it has while the
 * control plane is away. Validation errors print and exit 1 before any port is bound.
 */
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { createLogger, describeOpenError, setLogLevel } from '../lib/log.js';
import { resolveServiceAccount } from '../lib/system-accounts.js';
import { VERSION } from '../lib/version.js';
import { formatIssues, loadConfigFile } from '../model/config/load.js';
import {
  buildBootstrapConfig,
  buildRuntimeConfig,
  type RuntimeConfig,
  resolveLogLevel,
} from '../model/config/runtime.js';
import { decodeSnapshot } from '../model/snapshot/codec.js';
import { ControlClient } from './control/client.js';
import { readSnapshotCache, writeSnapshotCache } from './control/snapshot-cache.js';
import { type ApplyOutcome, DataPlane } from './dataplane.js';
import { snapshotSupportError } from './feature-support.js';
import { dropPrivileges } from './privileges.js';
import { hostWarnings } from './startup-checks.js';

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

export interface DataPlaneProcessOptions {
  /** How often the data plane sends `Stats` to the control plane (`--stats-interval-ms`); 5000. */
  statsIntervalMs?: number;
}

export async function runDataPlane(file: string, options: DataPlaneProcessOptions = {}): Promise<void> {
  const loaded = loadConfigFile(file);
  if (loaded.warnings.length > 0) process.stderr.write(`${formatIssues(file, loaded.warnings, 'warning')}\n`);
  if (!loaded.ok) fail(formatIssues(file, loaded.errors));
  const baseDir = dirname(file);
  const bootstrap = buildBootstrapConfig(loaded.config, { baseDir });
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
  for (const w of hostWarnings()) log.warn({ check: w.check }, w.message);

  let fromFile: RuntimeConfig;
  try {
    fromFile = buildRuntimeConfig(loaded.config, { baseDir });
  } catch (e) {
    // A certificate or key changed into something unreadable since validation a moment ago.
    fail(`spooky-dataplane: ${(e as Error).message}`);
  }
  let runtime: RuntimeConfig = fromFile;
  let version = 0;
  const stateDir = bootstrap.control.stateDir;
  try {
    const cached = readSnapshotCache(stateDir);
    if (cached) {
      const rt = decodeSnapshot(cached);
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

  const dp = new DataPlane(runtime, log, version);
  try {
    await dp.start();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const where = `${runtime.listen.address}:${runtime.listen.port}`;
    const why =
      err.code === 'EADDRINUSE'
        ? `${where} is already in use by another process`
        : err.code === 'EACCES'
          ? `permission denied binding ${where} (ports below 1024 need root or CAP_NET_BIND_SERVICE)`
          : err.message;
    fail(`spooky-dataplane: cannot start: ${why}`);
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
    socketPath: bootstrap.control.socket,
    nodeId: `${hostname()}:${dp.address.port}`,
    build: VERSION,
    log,
    servedVersion: () => dp.current.version,
    onSnapshot: (snapshot): ApplyOutcome => {
      let rt: RuntimeConfig;
      try {
        rt = decodeSnapshot(snapshot);
      } catch (e) {
        return { ok: false, restartRequired: false, error: `unusable snapshot: ${(e as Error).message}` };
      }
      const unsupported = snapshotSupportError(rt);
      if (unsupported) return { ok: false, restartRequired: false, error: unsupported };
      const outcome = dp.apply(rt, snapshot.version);
      if (outcome.ok) {
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

  let signals = 0;
  const shutdown = (signal: string) => {
    // A second signal skips the drain.
    if (++signals > 1) process.exit(1);
    log.info({ signal }, 'draining');
    control.stop();
    dp.stop().then(
      () => process.exit(0),
      (e) => {
        log.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
