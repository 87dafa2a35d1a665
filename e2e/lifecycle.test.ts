/** Process lifecycle of spooky-dataplane: clear refusal of bad configs, clean SIGTERM. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { startDemoBackend } from '../lib/demo-backend.js';
import { DIST, dataplaneConfig, type RunningDataplane, run, startDataplane, tempDir } from './support/harness.js';
import { RawQuicClient } from './support/raw-client.js';

describe('spooky-dataplane lifecycle', () => {
  it('refuses an invalid config with the path and line, exit 1, before binding', async () => {
    const file = join(tempDir(), 'bad.yaml');
    writeFileSync(
      file,
      dataplaneConfig(`  web:\n    backends:\n      - { id: w, address: "http://127.0.0.1:1", wieght: 5 }\n`),
    );
    const r = await run(process.execPath, [join(DIST, 'dataplane/main.js'), '--config', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /upstream\.web\.backends\[0\]/);
    assert.match(r.stderr, /weight/, 'suggests the key it meant');
    assert.doesNotMatch(r.stdout, /listening/);
  });

  it('refuses a missing certificate and optional mTLS (which QUIC cannot ask for), before binding', async () => {
    const dir = tempDir();
    const upstream = `  web:\n    backends:\n      - { id: w, address: "http://127.0.0.1:1" }\n`;
    const missing = join(dir, 'missing-cert.yaml');
    writeFileSync(missing, dataplaneConfig(upstream).replace(/cert: .*/, 'cert: /nonexistent/cert.pem'));
    let r = await run(process.execPath, [join(DIST, 'dataplane/main.js'), '--config', missing]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /missing-cert\.yaml:\d+:\d+: listen\.tls\.cert: .*no such file/);
    const mtls = join(dir, 'mtls.yaml');
    const config = dataplaneConfig(upstream);
    const certFile = /cert: (.*)/.exec(config)?.[1] ?? '';
    writeFileSync(
      mtls,
      config.replace(/(key: .*)/, `$1\n    client_auth: { enabled: true, ca_file: ${certFile}, require: false }`),
    );
    r = await run(process.execPath, [join(DIST, 'dataplane/main.js'), '--config', mtls]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /listen\.tls\.client_auth\.require: false is not supported/);
    assert.doesNotMatch(r.stdout, /listening/);
  });

  it('writes its log to log.file when configured', async () => {
    const dir = tempDir();
    const logFile = join(dir, 'spooky.log');
    const config = dataplaneConfig(`  web:\n    backends:\n      - { id: w, address: "http://127.0.0.1:1" }\n`).replace(
      '  format: json\n',
      `  format: json\n  file: { path: ${logFile} }\n`,
    );
    const file = join(dir, 'file-log.yaml');
    writeFileSync(file, config);
    const proc = spawn(process.execPath, [join(DIST, 'dataplane/main.js'), '--config', file], { stdio: 'ignore' });
    try {
      let text = '';
      for (let i = 0; i < 100 && !text.includes('"listening"'); i++) {
        await new Promise((r) => setTimeout(r, 50));
        text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
      }
      assert.match(text, /"msg":"listening"/);
    } finally {
      proc.kill('SIGKILL');
    }
    const bad = join(dir, 'bad-log.yaml');
    writeFileSync(bad, config.replace(logFile, join(dir, 'no-such-dir', 'x.log')));
    const r = await run(process.execPath, [join(DIST, 'dataplane/main.js'), '--config', bad]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /log\.file\.path: .*directory .*no-such-dir does not exist/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  it('warns at start about the UDP buffer ceiling and the open-file limit when they are low, with the fix', async () => {
    const backend = await startDemoBackend('w');
    const dp = await startDataplane(
      dataplaneConfig(`  web:\n    backends:\n      - { id: w, address: "${backend.origin}" }\n`),
    );
    try {
      const rmem = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
      const limits = readFileSync('/proc/self/limits', 'utf8').match(/^Max open files\s+(\S+)/m)?.[1] ?? '';
      const nofile = limits === 'unlimited' ? Number.POSITIVE_INFINITY : Number(limits);
      const warned = (check: string) => dp.logs.find((o) => o.check === check && o.level === 40);
      if (rmem < 64 * 1024 * 1024)
        assert.match(String(warned('rmem_max')?.msg), /sysctl -w net\.core\.rmem_max=67108864/);
      else assert.equal(warned('rmem_max'), undefined);
      if (nofile < 65536) assert.match(String(warned('nofile')?.msg), /LimitNOFILE=1048576/);
      else assert.equal(warned('nofile'), undefined);
    } finally {
      await dp.stop();
      await backend.close();
    }
  });

  it('exits 2 on a usage error', async () => {
    const r = await run(process.execPath, [join(DIST, 'dataplane/main.js')]);
    assert.equal(r.code, 2);
  });

  it('says clearly when the port is taken', async () => {
    const backend = await startDemoBackend('a');
    let first: RunningDataplane | undefined;
    try {
      first = await startDataplane(
        dataplaneConfig(`  web:\n    backends:\n      - { id: w, address: "${backend.origin}" }\n`),
      );
      const file = join(tempDir(), 'same-port.yaml');
      writeFileSync(
        file,
        dataplaneConfig(`  web:\n    backends:\n      - { id: w, address: "${backend.origin}" }\n`).replace(
          'port: 0',
          `port: ${first.port}`,
        ),
      );
      const r = await run(process.execPath, [join(DIST, 'dataplane/main.js'), '--config', file]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /already in use/);
    } finally {
      await first?.stop();
      await backend.close();
    }
  });

  it('closes idle connections after quic_max_idle_timeout_ms', async () => {
    const backend = await startDemoBackend('a');
    let dp: RunningDataplane | undefined;
    let c: RawQuicClient | undefined;
    try {
      dp = await startDataplane(
        dataplaneConfig(
          `  web:\n    backends:\n      - { id: w, address: "${backend.origin}" }\n`,
          'performance:\n  quic_max_idle_timeout_ms: 1000\n',
        ),
      );
      c = await RawQuicClient.connect(dp.port);
      assert.equal(c.isClosed, false);
      await c.waitClosed(8000);
      assert.equal(c.isClosed, true, 'the idle connection is gone');
    } finally {
      await c?.close();
      await dp?.stop();
      await backend.close();
    }
  });

  it('serves, forgets closed connections, then exits 0 on SIGTERM and logs stopped', async () => {
    const backend = await startDemoBackend('a');
    let dp: RunningDataplane | undefined;
    try {
      dp = await startDataplane(
        dataplaneConfig(
          `  web:\n    route: { path_prefix: /app }\n    backends:\n      - { id: w, address: "${backend.origin}" }\n`,
        ),
      );
      const c = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
      assert.equal((await c.fetch({ path: '/app', authority: 'localhost' })).status, 200);
      assert.equal((await c.fetch({ path: '/elsewhere', authority: 'localhost' })).status, 404);
      await c.close();
      // The client's CONNECTION_CLOSE lets the server forget the connection after draining
      // (a few PTOs on loopback), not after the 30 s idle timeout.
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await dp.stop('SIGTERM'), 0);
      const stopped = dp.logs.find((l) => l.msg === 'stopped');
      assert.ok(stopped, 'logs stopped');
      assert.equal(stopped.connections_at_stop, 0);
      // What the process answered in its life, by status class (with workers, one line each).
      const lines = dp.logs.filter((l) => l.msg === 'stopped') as Array<{
        requests: number;
        responses: Record<string, number>;
      }>;
      const responses: Record<string, number> = {};
      for (const l of lines) for (const [k, v] of Object.entries(l.responses)) responses[k] = (responses[k] ?? 0) + v;
      assert.equal(
        lines.reduce((n, l) => n + l.requests, 0),
        2,
      );
      assert.deepEqual(responses, { '2xx': 1, '4xx': 1 });
    } finally {
      await dp?.stop('SIGKILL');
      await backend.close();
    }
  });

  it('SIGTERM under load: GOAWAY, every in-flight request completes, new connections refused, exit 0', async () => {
    const backend = await startDemoBackend('drain');
    let dp: RunningDataplane | undefined;
    const clients: H3ClientSession[] = [];
    try {
      dp = await startDataplane(
        dataplaneConfig(
          `  web:\n    backends:\n      - { id: w, address: "${backend.origin}" }\n`,
          'performance: { shutdown_drain_timeout_ms: 5000 }\n',
        ),
      );
      const port = dp.port;
      for (let i = 0; i < 4; i++) {
        clients.push(await H3ClientSession.connect('127.0.0.1', port, { insecure: true, serverName: 'localhost' }));
      }
      // 16 requests in flight whose responses end 800 ms later, across the SIGTERM.
      const inFlight = clients.flatMap((c) =>
        Array.from({ length: 4 }, () => c.fetch({ path: '/late-end?ms=800', authority: 'localhost' })),
      );
      await new Promise((r) => setTimeout(r, 200));
      const exit = dp.stop('SIGTERM');
      await new Promise((r) => setTimeout(r, 100));
      // Meanwhile a new connection gets nowhere.
      const late = H3ClientSession.connect('127.0.0.1', port, {
        insecure: true,
        serverName: 'localhost',
        maxIdleTimeoutMs: 1500,
      }).then(
        async (c) => {
          const r = await c.fetch({ path: '/', authority: 'localhost' }).catch((e: Error) => e);
          await c.close();
          return r instanceof Error ? 'refused' : `served ${r.status}`;
        },
        () => 'refused',
      );
      const results = await Promise.all(inFlight);
      for (const r of results) {
        assert.equal(r.status, 200);
        assert.equal(r.body.toString(), 'first line\n');
      }
      assert.equal(await late, 'refused');
      assert.equal(await exit, 0);
      assert.ok(dp.logs.some((l) => l.msg === 'draining'));
      assert.ok(dp.logs.some((l) => l.msg === 'stopped'));
    } finally {
      for (const c of clients) await c.close().catch(() => {});
      await dp?.stop('SIGKILL');
      await backend.close();
    }
  });
});
