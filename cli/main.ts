#!/usr/bin/env node
/**
 * The `spooky` command. Exit codes: 0 ok, 1 failure, 2 usage error; errors are one sentence on stderr.
 */
import { Command, CommanderError } from 'commander';
import { VERSION_LINE } from '../lib/node-runtime.js';
import { configJsonSchemaText } from '../model/config/json-schema.js';
import { runBench } from './bench.js';
import { generateSelfSigned } from './certs.js';
import { registerControlCommands } from './control-commands.js';
import { runDemo } from './demo.js';
import { registerDoctorCommand } from './doctor.js';
import { exitAfterOutput } from './exit.js';
import { runGet } from './get.js';
import { runDaemons } from './run.js';
import { runValidate } from './validate.js';

const program = new Command('spooky')
  .description('Spooky: an HTTP/3 edge proxy in front of HTTP/2 backends')
  .version(VERSION_LINE)
  .option('-c, --config <file>', 'same as `spooky run --config FILE`')
  // Options after a subcommand are the subcommand's: `spooky bench URL -c 4` means 4 connections,
  // not a config file (the root's -c used to take it wherever it stood). `spooky --config FILE`
  // (the seed page's form) still works before a subcommand.
  .enablePositionalOptions()
  .showHelpAfterError()
  .exitOverride();

program
  .command('run')
  .description('run spooky-control and spooky-dataplane in the foreground from one config file')
  .option('-c, --config <file>', 'YAML config file (required)')
  // `spooky --config FILE run` gives it to the root program: read both.
  .action(async (_o: unknown, cmd: Command) => {
    const { config } = cmd.optsWithGlobals<{ config?: string }>();
    if (!config) {
      process.stderr.write('spooky run: --config FILE is required\n');
      process.exit(2);
    }
    await runDaemons(config);
  });

program
  .command('validate')
  .description('check a config file and print every problem with its line and column')
  .argument('<file>', 'YAML config file')
  .option('--json', 'machine-readable output')
  .option('--no-file-checks', 'skip the certificate, key, CA and token file checks (e.g. on a build machine)')
  .action((file: string, o: { json?: boolean; fileChecks: boolean }) =>
    exitAfterOutput(runValidate(file, { json: o.json ?? false, checkFiles: o.fileChecks })),
  );

registerControlCommands(program);
registerDoctorCommand(program);

program
  .command('schema')
  .description('print the JSON Schema of the config file (for editors and CI checks)')
  .action(() => {
    process.stdout.write(configJsonSchemaText());
  });

program
  .command('get')
  .description("send HTTP/3 requests with Spooky's own client and print the response")
  .argument('<url>', 'https://host:port/path')
  .option('-k, --insecure', 'do not verify the server certificate')
  .option('-n, --requests <n>', 'send N requests concurrently on one connection', '1')
  .option('-d, --data <file>', 'send the file as the request body (POST unless -X is given)')
  .option('-X, --method <method>', 'request method')
  .option('-H, --header <header...>', 'extra request header "name: value"')
  .option('-i, --include', 'print the response status and headers')
  .option('--connect-to <host:port>', "connect here instead of the URL's host and port")
  .action(async (url: string, o) => exitAfterOutput(await runGet(url, o)));

program
  .command('bench')
  .description('HTTP/3 load: C connections × S streams for a duration, closed or open loop (--rate)')
  .argument('<url>', 'https://host:port/path')
  .option('-c, --connections <n>', 'connections', '1')
  .option('-s, --streams <n>', 'concurrent streams per connection', '1')
  .option('-d, --duration <seconds>', 'measured duration', '10')
  .option('-w, --warmup <seconds>', 'warm-up, excluded from the figures', '1')
  .option('-r, --rate <req/s>', 'open loop: total requests per second')
  .option('--new-connections', 'one request per connection (handshake rate)')
  .option('--data <file>', 'POST this file as the body')
  .option('-p, --processes <n>', 'load-generator processes', '1')
  .option('--connect-to <host:port>', "connect here instead of the URL's host and port")
  .option('--json', 'machine-readable output')
  .action(async (url: string, o) => exitAfterOutput(await runBench(url, o)));

program
  .command('demo')
  .description('run a self-contained demo: self-signed certificate, two HTTP/2 backends, Spooky on 127.0.0.1:9889')
  .option('-p, --port <port>', 'UDP port for HTTP/3', '9889')
  .action(async (o: { port: string }) => runDemo(Number(o.port)));

const certs = program.command('certs').description('certificate helpers');
certs
  .command('self-signed')
  .description('write a self-signed development certificate (cert.pem, key.pem) for localhost')
  .requiredOption('--out <dir>', 'output directory')
  .action((o: { out: string }) => {
    const c = generateSelfSigned(o.out);
    process.stdout.write(`${c.certFile}\n${c.keyFile}\nspki sha256: ${c.spkiSha256}\n`);
  });

// The seed page starts Spooky as `spooky --config FILE`.
program.action(async () => {
  const { config } = program.opts<{ config?: string }>();
  if (!config) {
    program.outputHelp();
    process.exit(2);
  }
  await runDaemons(config);
});

try {
  await program.parseAsync();
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : 2);
  process.stderr.write(`spooky: ${(e as Error).message}\n`);
  process.exit(1);
}
