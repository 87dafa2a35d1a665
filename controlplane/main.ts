#!/usr/bin/env -S node --max-semi-space-size=16
/**
 * `spooky-control --config FILE`: validates the config, serves snapshots to data planes over
 * `control.socket` (and TCP with mutual TLS when control.listen is on), and the control API. After a restart it serves the last applied config
 * (persisted under `control.state_dir`), not the file; SIGHUP re-reads the file and applies it.
 */
import '../lib/node-floor.js';
import { dirname, resolve } from 'node:path';
import { Command } from 'commander';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { createLogger, describeOpenError } from '../lib/log.js';
import { VERSION_LINE } from '../lib/node-runtime.js';
import { resolveServiceAccount, type ServiceAccount, shareDirectoryWithGroup } from '../lib/system-accounts.js';
import { describeConfigReadError, formatIssues, loadConfigFile, readConfigFileText } from '../model/config/load.js';
import { type BootstrapConfig, buildBootstrapConfig, resolveLogLevel } from '../model/config/runtime.js';
import { resolveApiToken } from './api/auth.js';
import { type RunningControlApi, startControlApi } from './api/server.js';
import { ControlPlane, STATS_REPLY_TIMEOUT_MS } from './control-plane.js';
import { ControlPlaneMetrics, type RunningMetricsServer, startMetricsServer } from './metrics.js';
import { AppliedStore } from './store/applied-store.js';
import { SnapshotServer } from './xds/server.js';

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

const program = new Command('spooky-control')
  .description('Spooky control plane: validates config, pushes snapshots to data planes, serves the control API')
  .requiredOption('-c, --config <file>', 'YAML config file')
  .version(VERSION_LINE)
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
program.parse();
const file = resolve(program.opts<{ config: string }>().config);

const loaded = loadConfigFile(file, { controlSides: ['listen'] });
if (loaded.warnings.length > 0) process.stderr.write(`${formatIssues(file, loaded.warnings, 'warning')}\n`);
if (!loaded.ok) fail(formatIssues(file, loaded.errors));
const config = loaded.config;
const baseDir = dirname(file);
let bootstrap: BootstrapConfig;
try {
  bootstrap = buildBootstrapConfig(config, { baseDir, sides: ['listen'] });
} catch (e) {
  fail(`spooky-control: ${(e as Error).message}`);
}
let log: Logger;
try {
  log = createLogger({
    level: resolveLogLevel(config.log.level),
    format: config.log.format,
    component: 'control',
    destination: bootstrap.logFile,
  });
} catch (e) {
  // Validation checks the directory; this is what it cannot see (permissions, a race).
  fail(`spooky-control: cannot open log.file ${bootstrap.logFile}: ${describeOpenError(e)}`);
}

// A root-started data plane drops to security.privileges: the socket must be reachable for it.
// The account is checked here, before anything is bound.
let dataplaneAccount: ServiceAccount | undefined;
const privileges = config.security.privileges;
if (privileges.enabled && process.getuid?.() === 0) {
  try {
    dataplaneAccount = resolveServiceAccount(privileges.user, privileges.group);
  } catch (e) {
    fail(`spooky-control: security.privileges: ${(e as Error).message}`);
  }
}
// control.socket is ours before state_dir is touched: a second instance on the same paths stops
// here, without writing anything.
const server = new SnapshotServer(bootstrap.control.socket, log);
try {
  await server.claim();
} catch (e) {
  fail(`spooky-control: cannot listen on control.socket ${bootstrap.control.socket}: ${(e as Error).message}`);
}
// Whatever way this process ends, its lock must not outlive it (a later start would still see
// it as stale, but a clean exit leaves nothing behind).
process.on('exit', () => server.releaseLock());
const store = new AppliedStore(bootstrap.control.stateDir);
try {
  store.init();
} catch (e) {
  fail(`spooky-control: cannot use control.state_dir ${bootstrap.control.stateDir}: ${(e as Error).message}`);
}
if (dataplaneAccount) {
  // The dropped data plane caches its snapshot there (as it does when both run as the service user).
  const shared = shareDirectoryWithGroup(bootstrap.control.stateDir, dataplaneAccount.gid);
  if (shared !== true)
    log.warn(
      { state_dir: bootstrap.control.stateDir, reason: shared },
      'the data plane cannot cache its snapshot here',
    );
}
const registry = new Registry();
const control = new ControlPlane({ store, server, log, registry });

const restored = control.restore();
if (restored) {
  log.info({ version: restored.version, applied_by: restored.appliedBy }, 'serving the last applied config');
} else {
  let text: string;
  try {
    text = readConfigFileText(file);
  } catch (e) {
    fail(`spooky-control: ${describeConfigReadError(file, e)}`);
  }
  const result = await control.applyYaml(text, `spooky-control start (${file})`, baseDir);
  if (result.kind === 'invalid') fail(formatIssues(file, result.errors));
  if (result.kind !== 'applied') fail(`spooky-control: cannot apply ${file}: ${result.kind}`);
}

try {
  await server.start(dataplaneAccount);
} catch (e) {
  fail(`spooky-control: cannot listen on control.socket ${bootstrap.control.socket}: ${(e as Error).message}`);
}

let controlPort: number | null = null;
const remote = bootstrap.control.listen;
if (remote) {
  try {
    controlPort = await server.listenTcp(remote);
  } catch (e) {
    fail(`spooky-control: cannot listen on control.listen ${remote.address}:${remote.port}: ${(e as Error).message}`);
  }
}

let api: RunningControlApi | null = null;
const apiConfig = config.observability.control_api;
if (apiConfig.enabled) {
  let token: string;
  try {
    const tokenFile = apiConfig.auth_token_file;
    const resolved = resolveApiToken(
      { ...apiConfig, auth_token_file: tokenFile === undefined ? undefined : resolve(baseDir, tokenFile) },
      bootstrap.control.stateDir,
      privileges.group,
    );
    token = resolved.token;
    if (resolved.path) log.info({ source: resolved.source, path: resolved.path }, 'control API token');
  } catch (e) {
    fail(`spooky-control: ${(e as Error).message}`);
  }
  try {
    api = await startControlApi({ address: apiConfig.address, port: apiConfig.port, token, handlers: control, log });
  } catch (e) {
    fail(`spooky-control: ${(e as Error).message}`);
  }
}
let metrics: RunningMetricsServer | null = null;
const metricsConfig = config.observability.metrics;
if (metricsConfig.enabled) {
  const series = ControlPlaneMetrics.for(registry);
  const { address, port, path } = metricsConfig;
  try {
    const dataplanes = () => server.dataplanes();
    const onScrape = () => series.update(server.dataplanes());
    const refresh = () => server.refreshStats(STATS_REPLY_TIMEOUT_MS);
    metrics = await startMetricsServer({ address, port, path, registry, dataplanes, refresh, onScrape, log });
  } catch (e) {
    fail(`spooky-control: cannot serve metrics on ${address}:${port}: ${(e as Error).message}`);
  }
  log.info({ address, port: metrics.port, path }, 'metrics listening');
}
log.info(
  {
    socket: bootstrap.control.socket,
    control_listen: remote && controlPort !== null ? `${remote.address}:${controlPort}` : 'disabled',
    api: api ? `${api.address}:${api.port}` : 'disabled',
    version: control.version,
  },
  'listening',
);

process.on('SIGHUP', () => {
  log.info({ file }, 'SIGHUP: re-reading the config file');
  let text: string;
  try {
    text = readConfigFileText(file);
  } catch (e) {
    log.error({ file, err: describeConfigReadError(file, e) }, 'cannot read the config file; nothing changed');
    return;
  }
  control.applyYaml(text, 'SIGHUP', baseDir).then(
    (r) => {
      if (r.kind === 'invalid') log.error({ errors: r.errors }, 'the config file is invalid; nothing changed');
      else if (r.kind !== 'applied') log.error({ result: r.kind }, 'the config file was not applied');
    },
    (e) => log.error({ err: (e as Error).message }, 'apply failed'),
  );
});

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) process.exit(1);
  stopping = true;
  log.info({ signal }, 'stopping');
  control.stop();
  await api?.close();
  await metrics?.close();
  await server.stop();
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
