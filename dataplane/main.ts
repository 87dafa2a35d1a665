#!/usr/bin/env node
/** `spooky-dataplane --config FILE`: the data plane on its own (the control plane joins later). */
import { Command } from 'commander';
import { VERSION } from '../lib/version.js';
import { runStandalone } from './standalone.js';

const program = new Command('spooky-dataplane')
  .description('Spooky data plane: terminates HTTP/3 and forwards to HTTP/2 backends')
  .requiredOption('-c, --config <file>', 'YAML config file')
  .version(VERSION)
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
program.parse();
await runStandalone(program.opts<{ config: string }>().config);
