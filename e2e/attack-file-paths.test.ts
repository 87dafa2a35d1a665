/**
 * Issue #12 item 6: a certificate, key or CA path that names a FIFO, a device or a huge file.
 * readFileSync on a FIFO blocked spooky-control's event loop forever (API, health and the data
 * plane stream all stopped); /dev/zero grew `spooky validate` to gigabytes. Each entry point that
 * reads such a path (validate, spooky-control at start, on SIGHUP and on apply through the API,
 * spooky-dataplane, doctor) must answer with a clear error at once and keep serving.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DIST, type RunningControl, run, startControl } from './support/harness.js';
import { config, newSetup, type Setup } from './support/pair.js';

const CLI = join(DIST, 'cli', 'main.js');
/** Far more than any answer needs; a process still running then was blocked (and is killed). */
const HARD_LIMIT_MS = 15_000;

const POOLS = '  web:\n    backends: [{ id: a, address: "http://127.0.0.1:9" }]\n';

/** A config file in the setup's folder whose cert or key is `path`. */
function configWith(s: Setup, name: string, what: 'cert' | 'key', path: string): string {
  const cert = what === 'cert' ? { certFile: path, keyFile: s.certs.keyFile } : { ...s.certs, keyFile: path };
  const file = join(s.dir, name);
  writeFileSync(file, config(s, POOLS, { cert }));
  return file;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: Math.round(performance.now() - t0) };
}

describe('a certificate or key path that is a FIFO, a device or too large', () => {
  let s: Setup;
  let fifo: string;
  let large: string;
  let cp: RunningControl | null = null;

  before(() => {
    s = newSetup();
    fifo = join(s.dir, 'cert-fifo.pem');
    execFileSync('mkfifo', [fifo]);
    large = join(s.dir, 'large.pem');
    // A real certificate followed by 2 MiB of padding: over the 1 MiB cap for PEM files.
    writeFileSync(large, Buffer.concat([readFileSync(s.certs.certFile), Buffer.alloc(2 * 1024 * 1024, 0x0a)]));
    writeFileSync(s.file, config(s, POOLS));
  });

  after(async () => {
    await cp?.stop();
  });

  for (const c of [
    {
      label: 'cert is a FIFO',
      what: 'cert' as const,
      path: () => fifo,
      expect: /cert-fifo\.pem is a FIFO \(named pipe\), not a regular file/,
    },
    {
      label: 'key is /dev/zero',
      what: 'key' as const,
      path: () => '/dev/zero',
      expect: /\/dev\/zero is a character device, not a regular file/,
    },
    {
      label: 'cert is a 2 MiB file',
      what: 'cert' as const,
      path: () => large,
      expect: /large\.pem is 2 MiB, over the 1 MiB limit/,
    },
  ]) {
    it(`spooky validate when the ${c.label}: exit 1 with the reason`, async (t) => {
      const file = configWith(s, `validate-${c.what}.yaml`, c.what, c.path());
      const { value: r, ms } = await timed(() => run(process.execPath, [CLI, 'validate', file], HARD_LIMIT_MS));
      t.diagnostic(`${ms} ms: ${r.stderr.trim()}`);
      assert.equal(r.code, 1, `exit 1 (null: killed after ${HARD_LIMIT_MS} ms, it hung): ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`listen\\.tls\\.${c.what}: `));
      assert.match(r.stderr, c.expect);
    });
  }

  it('spooky-control refuses to start on a FIFO certificate, with the reason', async () => {
    const file = configWith(s, 'start-fifo.yaml', 'cert', fifo);
    const r = await run(process.execPath, [join(DIST, 'controlplane', 'main.js'), '--config', file], HARD_LIMIT_MS);
    assert.equal(r.code, 1, `exit 1 (null: it hung): ${r.stderr}`);
    assert.match(r.stderr, /FIFO \(named pipe\), not a regular file/);
  });

  it('spooky-dataplane refuses to start on /dev/zero as its key, with the reason', async () => {
    const file = configWith(s, 'dp-zero.yaml', 'key', '/dev/zero');
    const r = await run(process.execPath, [join(DIST, 'dataplane', 'main.js'), '--config', file], HARD_LIMIT_MS);
    assert.equal(r.code, 1, `exit 1 (null: it hung): ${r.stderr}`);
    assert.match(r.stderr, /\/dev\/zero is a character device/);
  });

  it('spooky doctor reports the FIFO certificate and finishes', async () => {
    const file = configWith(s, 'doctor-fifo.yaml', 'cert', fifo);
    const r = await run(process.execPath, [CLI, 'doctor', '--config', file, '--json'], 60_000);
    assert.notEqual(r.code, null, 'doctor finished');
    const body = JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string; detail: string }> };
    const trusted = body.checks.find((ch) => ch.id === 'tls-trusted');
    assert.equal(trusted?.status, 'fail');
    assert.match(trusted?.detail ?? '', /FIFO \(named pipe\), not a regular file/);
    const valid = body.checks.find((ch) => ch.id === 'config-valid');
    assert.equal(valid?.status, 'fail');
    assert.match(valid?.detail ?? '', /FIFO/);
  });

  describe('a running spooky-control', () => {
    let token: string;

    before(async () => {
      cp = await startControl(s.file);
      token = readFileSync(join(s.dir, 'state', 'control.token'), 'utf8').trim();
    });

    const api = (path: string, init: RequestInit = {}) =>
      fetch(`${cp?.apiUrl}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(HARD_LIMIT_MS),
      });

    for (const c of [
      { what: 'cert' as const, path: () => fifo, expect: /FIFO \(named pipe\), not a regular file/ },
      { what: 'key' as const, path: () => '/dev/zero', expect: /\/dev\/zero is a character device/ },
    ]) {
      it(`answers an apply whose ${c.what} is ${c.what === 'cert' ? 'a FIFO' : '/dev/zero'} with 422, and keeps answering`, async (t) => {
        const yaml = readFileSync(configWith(s, `api-${c.what}.yaml`, c.what, c.path()), 'utf8');
        const { value: res, ms } = await timed(() => api('/v1/config', { method: 'POST', body: yaml }));
        const body = (await res.json()) as { errors?: Array<{ path: string; message: string }> };
        t.diagnostic(`${ms} ms: ${res.status} ${JSON.stringify(body.errors)}`);
        assert.equal(res.status, 422);
        assert.ok(
          body.errors?.some((e) => e.path === `listen.tls.${c.what}` && c.expect.test(e.message)),
          JSON.stringify(body.errors),
        );
        assert.equal((await api('/health')).status, 200);
        const applied = (await (await api('/v1/config')).json()) as { version: number };
        assert.equal(applied.version, 1, 'the running config did not change');
      });
    }

    it('on SIGHUP with the file pointing at a FIFO: logs why, changes nothing, keeps answering', async () => {
      const original = readFileSync(s.file, 'utf8');
      writeFileSync(s.file, config(s, POOLS, { cert: { certFile: fifo, keyFile: s.certs.keyFile } }));
      try {
        const control = cp as RunningControl;
        const logged = control.logs.length;
        control.proc.kill('SIGHUP');
        const deadline = performance.now() + HARD_LIMIT_MS;
        let line: Record<string, unknown> | undefined;
        while (!line && performance.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50));
          line = control.logs.slice(logged).find((o) => o.msg === 'the config file is invalid; nothing changed');
        }
        assert.ok(line, `logged the refusal: ${JSON.stringify(control.logs.slice(logged))}`);
        assert.match(JSON.stringify(line.errors), /FIFO \(named pipe\), not a regular file/);
        assert.equal((await api('/health')).status, 200);
      } finally {
        writeFileSync(s.file, original);
      }
    });
  });
});
