/**
 * Issue 13 item 4: the log settings of spooky-dataplane (format, level, access_log, file.enabled)
 * as an operator sees them on stdout and on disk (model/config/settings-coverage.ts names
 * this case).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { DAEMON_NODE_FLAGS } from '../lib/daemon-flags.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { DIST, dataplaneConfig, startDataplane, tempDir } from './support/harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether a fresh QUIC connection gets through the handshake and one 200. */
async function connects(port: number, handshakeTimeoutMs: number): Promise<boolean> {
  let c: H3ClientSession | undefined;
  try {
    c = await H3ClientSession.connect('127.0.0.1', port, {
      insecure: true,
      serverName: 'localhost',
      handshakeTimeoutMs,
    });
    return (await c.fetch({ path: '/x', authority: 'localhost' })).status === 200;
  } catch {
    return false;
  } finally {
    await c?.close().catch(() => {});
  }
}

describe('log settings (issue 13 item 4)', { timeout: 120_000 }, () => {
  let a: DemoBackend;
  before(async () => {
    a = await startDemoBackend('a');
  });
  after(async () => {
    await a?.close();
  });
  const oneBackend = (b: DemoBackend) => `  web:\n    backends: [{ id: ${b.name}, address: "${b.origin}" }]\n`;

  it('log: plain lines, nothing below log.level, access lines only with access_log, no file when log.file.enabled false', async () => {
    // plain at info: a readable listening line, and a readable access line.
    const plain = await spawnDataplane(dataplaneConfig(oneBackend(a)).replace('format: json', 'format: plain'));
    try {
      const line = await plain.waitFor(/ INFO {2}dataplane listening .*port=(\d+)/);
      const port = Number(line[1]);
      assert.equal(await connects(port, 3000), true);
      await plain.waitFor(/ INFO {2}access request .*path=\/x/);
      assert.doesNotMatch(plain.out(), /^\{/m, 'no JSON line');
    } finally {
      plain.kill();
    }
    // warn: the listening line and the access lines are info, so neither appears.
    const port = await freePort();
    const quiet = await spawnDataplane(
      dataplaneConfig(oneBackend(a)).replace('port: 0', `port: ${port}`).replace('level: info', 'level: warn'),
    );
    try {
      let served = false;
      for (let i = 0; i < 20 && !served; i++) {
        served = await connects(port, 1000);
        if (!served) await sleep(200);
      }
      assert.ok(served, `not serving on ${port}: ${quiet.err()}`);
      await sleep(200);
      const levels = quiet
        .out()
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { level: number }).level);
      assert.deepEqual(
        levels.filter((l) => l < 40),
        [],
        quiet.out(),
      );
    } finally {
      quiet.kill();
    }
    // access_log false, and a log.file that is not enabled: JSON on stdout, no access line, no file.
    const logFile = join(tempDir(), 'not-written.log');
    const config = dataplaneConfig(oneBackend(a)).replace(
      '  format: json\n',
      `  format: json\n  access_log: false\n  file: { enabled: false, path: ${logFile} }\n`,
    );
    const dp = await startDataplane(config);
    try {
      assert.equal(await connects(dp.port, 3000), true);
      await sleep(200);
      assert.deepEqual(
        dp.logs.filter((o) => o.access === true),
        [],
      );
      assert.equal(existsSync(logFile), false, 'log.file written though not enabled');
    } finally {
      await dp.stop();
    }
  });
});

/** A port free for both UDP and TCP on 127.0.0.1 right now (for a config whose log hides the port). */
async function freePort(): Promise<number> {
  for (let i = 0; i < 10; i++) {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const udp = dgram.createSocket('udp4');
    const ok = await new Promise<boolean>((r) => {
      udp.once('error', () => r(false));
      udp.bind(port, '127.0.0.1', () => r(true));
    });
    udp.close();
    await new Promise((r) => server.close(r));
    if (ok) return port;
  }
  throw new Error('no free port');
}

/** spooky-dataplane on `configText` with its raw stdout (any log format), killed by `kill()`. */
async function spawnDataplane(configText: string) {
  const file = join(tempDir(), 'spooky.yaml');
  writeFileSync(file, configText);
  const proc: ChildProcess = spawn(
    process.execPath,
    [...DAEMON_NODE_FLAGS, join(DIST, 'dataplane/main.js'), '--config', file],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d) => {
    out += d;
  });
  proc.stderr?.on('data', (d) => {
    err += d;
  });
  process.once('exit', () => proc.kill('SIGKILL'));
  return {
    out: () => out,
    err: () => err,
    kill: () => proc.kill('SIGKILL'),
    async waitFor(re: RegExp, ms = 15_000): Promise<RegExpMatchArray> {
      const deadline = Date.now() + ms;
      for (;;) {
        const m = re.exec(out);
        if (m) return m;
        if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`no ${re} in: ${out}${err}`);
        await sleep(50);
      }
    },
  };
}
