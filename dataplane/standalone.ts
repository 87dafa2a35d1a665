/**
 * Runs the data plane in this process from a YAML file until SIGTERM/SIGINT, as
 * `spooky-dataplane --config FILE` and `spooky run` do. Validation errors print and exit 1
 * before any port is bound.
 */
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { formatIssues, loadConfigFile } from '../controlplane/config/load.js';
import { buildRuntimeConfig } from '../controlplane/config/runtime.js';
import { createLogger } from '../lib/log.js';
import { DataPlane } from './dataplane.js';
import { checkFeatureSupport } from './feature-support.js';

export async function runStandalone(file: string): Promise<void> {
  const loaded = loadConfigFile(file);
  if (loaded.warnings.length > 0) process.stderr.write(`${formatIssues(file, loaded.warnings, 'warning')}\n`);
  if (!loaded.ok) {
    process.stderr.write(`${formatIssues(file, loaded.errors)}\n`);
    process.exit(1);
  }
  const runtime = buildRuntimeConfig(loaded.config, { baseDir: dirname(file) });
  let log: Logger;
  try {
    log = createLogger({
      level: runtime.log.level,
      format: runtime.log.format,
      component: 'dataplane',
      destination: runtime.log.file,
    });
  } catch (e) {
    process.stderr.write(`spooky-dataplane: cannot open log.file ${runtime.log.file}: ${(e as Error).message}\n`);
    process.exit(1);
  }
  const support = checkFeatureSupport(loaded.config, process.getuid?.() ?? -1);
  if (support.fatal.length > 0) {
    process.stderr.write(`${support.fatal.map((u) => `${file}: ${u}`).join('\n')}\n`);
    process.exit(1);
  }
  for (const w of support.warnings) log.warn(w);
  const dp = new DataPlane(runtime, log);
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
    process.stderr.write(`spooky-dataplane: cannot start: ${why}\n`);
    process.exit(1);
  }

  let signals = 0;
  const shutdown = (signal: string) => {
    // A second signal skips the drain.
    if (++signals > 1) process.exit(1);
    log.info({ signal }, 'draining');
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
