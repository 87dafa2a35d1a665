/**
 * Issue #13, item 11 (first two points), with the real `spooky` CLI against a real control plane
 * and data plane:
 *  * `spooky bench -c N` was swallowed by the program's global `-c, --config`: every run used one
 *    connection, the README's own example included. The data plane's own count of accepted QUIC
 *    connections (spooky_connections_total) shows how many the run opened.
 *  * `spooky get URL | wc -c` stopped at 65,536 bytes: the CLI exited before the pipe took the
 *    rest of the body. The body of a >1 MiB response is counted as it comes out of a real pipe.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { DIST, run, tempDir } from './support/harness.js';
import { Observed } from './support/observe.js';

const CLI = join(DIST, 'cli', 'main.js');

/** Runs the CLI with stdout on a pipe; counts the bytes that come out (bounded by `timeoutMs`). */
function stdoutBytes(
  args: string[],
  timeoutMs = 30_000,
): Promise<{ code: number | null; bytes: number; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let bytes = 0;
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => {
      bytes += d.length;
    });
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, bytes, stderr });
    });
  });
}

describe('spooky CLI options and output against a running pair', () => {
  let backend: DemoBackend;
  let pair: Observed;

  before(async () => {
    backend = await startDemoBackend('a');
    pair = await Observed.start(`  web:\n    backends: [{ id: a, address: "${backend.origin}" }]\n`);
  });

  after(async () => {
    await pair?.stop();
    await backend?.close();
  });

  /** QUIC connections the data plane has accepted so far (its counter, through the control plane). */
  async function accepted(): Promise<number> {
    await pair.settle(); // figures taken after everything before this call
    return (await pair.metric('spooky_connections_total')) ?? 0;
  }

  for (const [label, flag] of [
    ['-c', '-c'],
    ['--connections', '--connections'],
  ] as const) {
    it(`bench ${label} 3 opens three connections`, async () => {
      const before = await accepted();
      const url = `https://localhost:${pair.port}/health`;
      // The README's form: the URL first, the options after it.
      const r = await run(process.execPath, [
        CLI,
        'bench',
        url,
        flag,
        '3',
        '-s',
        '2',
        '-d',
        '0.5',
        '-w',
        '0',
        '--json',
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(JSON.parse(r.stdout).requests > 0, r.stdout);
      // The counter reaches the control plane with the data plane's Stats: wait (bounded) for the
      // three, then check that no more came.
      const deadline = performance.now() + 10_000;
      while ((await accepted()) - before < 3 && performance.now() < deadline);
      assert.equal((await accepted()) - before, 3, 'connections the data plane accepted during the run');
    });
  }

  it('still takes the global --config before a subcommand, and the subcommand’s own after it', async () => {
    // The control API listens on an OS-chosen port, so --control names it; the API token comes
    // from the config file's state directory, so the call succeeds only if --config was read.
    const { file } = pair.setup;
    const control = ['--control', pair.cp.apiUrl];
    for (const args of [
      ['--config', file, 'status', ...control, '--json'],
      ['status', '--config', file, ...control, '--json'],
      ['status', ...control, '--json'],
    ]) {
      const r = await run(process.execPath, [CLI, ...args]);
      if (args.includes('--config')) assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      else assert.notEqual(r.code, 0, 'without the token the API refuses');
    }
  });

  it('get writes a 3 MiB body whole into a pipe', async () => {
    const size = 3 * 1024 * 1024 + 7;
    const r = await stdoutBytes(['get', '--insecure', `https://localhost:${pair.port}/bytes/${size}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.bytes, size);
  });

  it('validate --json writes a report far larger than a pipe holds whole, exit 1', async () => {
    // 3,000 backends with a bad weight: one error each, several hundred KiB of JSON.
    const n = 3000;
    const backends = Array.from(
      { length: n },
      (_, i) => `      - { id: b${i}, address: "10.0.0.1:${1000 + i}", weight: -1 }`,
    );
    const file = join(tempDir('spooky-cli-'), 'many-errors.yaml');
    writeFileSync(
      file,
      `listen:\n  tls: { cert: c.pem, key: k.pem }\nupstream:\n  web:\n    backends:\n${backends.join('\n')}\n`,
    );
    const p = spawn(process.execPath, [CLI, 'validate', '--json', '--no-file-checks', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => chunks.push(d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((resolve) => p.on('close', resolve));
    clearTimeout(timer);
    const text = Buffer.concat(chunks).toString();
    assert.ok(text.length > 256 * 1024, `a large report (${text.length} bytes)`);
    assert.equal(code, 1);
    const report = JSON.parse(text) as { errors: unknown[] };
    assert.equal(report.errors.length, n, 'every error arrived');
  });

  it('get still exits 1 when it cannot connect', async () => {
    const r = await stdoutBytes(['get', '--insecure', 'https://localhost:1/x']);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.bytes, 0);
    assert.match(r.stderr, /cannot connect to 127\.0\.0\.1:1/);
  });
});
