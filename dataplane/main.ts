#!/usr/bin/env -S node --max-semi-space-size=16
/**
 * `spooky-dataplane --config FILE [--stats-interval-ms MS]`: the data plane; it follows
 * spooky-control over `control.socket`.
 */
import '../lib/node-floor.js';
import { Command, InvalidArgumentError } from 'commander';
import { VERSION_LINE } from '../lib/node-runtime.js';
import { runDataPlane } from './process.js';

function statsInterval(value: string): number {
  const ms = Number(value);
  if (!/^\d+$/.test(value) || ms < 10 || ms > 3_600_000) {
    throw new InvalidArgumentError('expected whole milliseconds from 10 to 3600000');
  }
  return ms;
}

const program = new Command('spooky-dataplane')
  .description('Spooky data plane: terminates HTTP/3 and forwards to HTTP/2 and HTTP/1.1 backends')
  .requiredOption('-c, --config <file>', 'YAML config file')
  .option(
    '--stats-interval-ms <ms>',
    'how often Stats go to the control plane (its status views and gauges); tests shorten it',
    statsInterval,
    5000,
  )
  .version(VERSION_LINE)
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
program.parse();
const opts = program.opts<{ config: string; statsIntervalMs: number }>();
await runDataPlane(opts.config, { statsIntervalMs: opts.statsIntervalMs });
