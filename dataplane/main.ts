#!/usr/bin/env -S node --max-semi-space-size=16
/** `spooky-dataplane --config FILE`: the data plane; it follows spooky-control over `control.socket`. */
import '../lib/node-floor.js';
import { Command } from 'commander';
import { VERSION_LINE } from '../lib/node-runtime.js';
import { runDataPlane } from './process.js';

const program = new Command('spooky-dataplane')
  .description('Spooky data plane: terminates HTTP/3 and forwards to HTTP/2 backends')
  .requiredOption('-c, --config <file>', 'YAML config file')
  .version(VERSION_LINE)
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
program.parse();
await runDataPlane(program.opts<{ config: string }>().config);
