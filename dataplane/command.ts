/**
 * The `spooky-dataplane` command line (dataplane/main.ts loads it once the allocator is chosen).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { VERSION_LINE } from '../lib/node-runtime.js';
import { runDataPlane } from './process.js';

function statsInterval(value: string): number {
  const ms = Number(value);
  if (!/^\d+$/.test(value) || ms < 10 || ms > 3_600_000) {
    throw new InvalidArgumentError('expected whole milliseconds from 10 to 3600000');
  }
  return ms;
}

function workerSetting(value: string): 'auto' | number {
  if (value === 'auto') return value;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 256) throw new InvalidArgumentError('expected auto or 1 to 256');
  return n;
}

function wholeNumber(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number');
  return Number(value);
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
  .option(
    '--workers <n>',
    'data-plane worker processes (auto or 1-256), instead of performance.workers of the file and of every snapshot',
    workerSetting,
  )
  // Set by the supervisor when performance.workers is above 1 (dataplane/workers/supervisor.ts).
  .addOption(new Option('--worker-index <n>').argParser(wholeNumber).hideHelp())
  .addOption(new Option('--worker-count <n>').argParser(wholeNumber).hideHelp())
  .addOption(new Option('--worker-port <port>').argParser(wholeNumber).hideHelp())
  .version(VERSION_LINE)
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
program.parse();
const opts = program.opts<{
  config: string;
  statsIntervalMs: number;
  workerIndex?: number;
  workerCount?: number;
  workerPort?: number;
  workers?: 'auto' | number;
}>();
const { workerIndex: index, workerCount: count, workerPort: port } = opts;
const worker =
  index !== undefined && count !== undefined && port !== undefined && index < count
    ? { index, count, port }
    : undefined;
await runDataPlane(opts.config, { statsIntervalMs: opts.statsIntervalMs, worker, workers: opts.workers });
