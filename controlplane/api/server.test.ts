import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { VERSION } from '../../lib/version.js';
import { type ApplyResult, type ControlApiHandlers, type RunningControlApi, startControlApi } from './server.js';
import type { AppliedConfigBody, BackendInfo, DataPlanesBody, ReadyBody, ValidateBody } from './types.js';

const TOKEN = 'test-token-0123456789-abcdefghij';
const WRONG = 'wrong-token-9876543210-zyxwvutsrq';
const MAX_BODY = 64;

const BACKEND: BackendInfo = {
  id: 'api-1',
  pool: 'api',
  origin: 'http://127.0.0.1:8081',
  state: 'healthy',
  since: '2026-01-01T00:00:00.000Z',
  last_probe: { ok: true, status: 200, latency_ms: 3, at: '2026-01-01T00:00:01.000Z' },
  in_flight: 0,
  drained: false,
};
const APPLIED: AppliedConfigBody = {
  version: 3,
  sha256: 'ab'.repeat(32),
  applied_at: '2026-01-01T00:00:00.000Z',
  applied_by: 'token@127.0.0.1',
  yaml: 'version: 1\n',
};
const DATAPLANES: DataPlanesBody = { current_version: 3, dataplanes: [] };

interface Call {
  name: string;
  args: unknown[];
}

/** A fake control plane: records every call, answers what the test sets. */
class FakeHandlers implements ControlApiHandlers {
  calls: Call[] = [];
  applied: AppliedConfigBody | null = APPLIED;
  readyBody: ReadyBody = { ready: true, reasons: [] };
  applyResult: ApplyResult = { kind: 'applied', body: { version: 4, unchanged: false, dataplanes: [] } };
  rollbackResult: ApplyResult = { kind: 'applied', body: { version: 2, unchanged: false, dataplanes: [] } };
  throwOn = '';

  private rec(name: string, ...args: unknown[]): void {
    this.calls.push({ name, args });
    if (this.throwOn === name) throw new Error(`${name} exploded`);
  }
  appliedConfig(): AppliedConfigBody | null {
    this.rec('appliedConfig');
    return this.applied;
  }
  validate(yaml: string): ValidateBody {
    this.rec('validate', yaml);
    return { ok: true, errors: [], warnings: [], diff: '', summary: '1 pool' };
  }
  async apply(yaml: string, by: string): Promise<ApplyResult> {
    this.rec('apply', yaml, by);
    return this.applyResult;
  }
  async reload(by: string): Promise<ApplyResult> {
    this.rec('reload', by);
    return this.rollbackResult;
  }
  async rollback(by: string): Promise<ApplyResult> {
    this.rec('rollback', by);
    return this.rollbackResult;
  }
  async backends(): Promise<BackendInfo[]> {
    this.rec('backends');
    return [BACKEND];
  }
  setDrained(id: string, drained: boolean, by: string): boolean {
    this.rec('setDrained', id, drained, by);
    return id === 'api-1' || id === 'a/b c';
  }
  dataplanes(): DataPlanesBody {
    this.rec('dataplanes');
    return DATAPLANES;
  }
  ready(): ReadyBody {
    this.rec('ready');
    return this.readyBody;
  }
}

const logLines: string[] = [];
const log = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
let h: FakeHandlers;
let api: RunningControlApi;
let base: string;

before(async () => {
  h = new FakeHandlers();
  api = await startControlApi({
    address: '127.0.0.1',
    port: 0,
    token: TOKEN,
    handlers: h,
    log,
    maxBodyBytes: MAX_BODY,
  });
  base = `http://127.0.0.1:${api.port}`;
});
after(async () => {
  await api.close();
});
beforeEach(() => {
  h.calls = [];
  h.throwOn = '';
});

async function call(
  method: string,
  path: string,
  opts: { token?: string | null; body?: string | Uint8Array<ArrayBuffer>; ua?: string } = {},
): Promise<{ status: number; headers: Headers; text: string; json: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  const token = opts.token === undefined ? TOKEN : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (opts.ua) headers['user-agent'] = opts.ua;
  const res = await fetch(base + path, { method, headers, body: opts.body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: text ? JSON.parse(text) : {} };
}

/** Raw http.request, for chunked bodies that fetch would size up front. */
function rawPost(path: string, chunks: Buffer[]): Promise<{ status: number; body: string; connection?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'transfer-encoding': 'chunked' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
      },
    );
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

describe('open endpoints', () => {
  it('GET /health without a token', async () => {
    const r = await call('GET', '/health', { token: null });
    assert.equal(r.status, 200);
    assert.equal(r.json.status, 'ok');
    assert.equal(r.json.version, VERSION);
    assert.equal(typeof r.json.uptime_ms, 'number');
    assert.equal(r.headers.get('content-type'), 'application/json');
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.ok(r.text.endsWith('}\n'));
  });

  it('GET /ready: 200 when ready, 503 with reasons otherwise', async () => {
    const ok = await call('GET', '/ready', { token: null });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json, { ready: true, reasons: [] });
    h.readyBody = { ready: false, reasons: ['no data plane has ACKed version 3'] };
    try {
      const no = await call('GET', '/ready', { token: null });
      assert.equal(no.status, 503);
      assert.deepEqual(no.json, h.readyBody);
    } finally {
      h.readyBody = { ready: true, reasons: [] };
    }
  });
});

describe('auth', () => {
  for (const [what, token] of [
    ['no token', null],
    ['a wrong token', WRONG],
    ['a token prefix', TOKEN.slice(0, 10)],
  ] as const) {
    it(`401 with ${what}`, async () => {
      for (const [method, path] of [
        ['GET', '/v1/config'],
        ['POST', '/v1/config/rollback'],
        ['GET', '/v1/backends'],
      ]) {
        const r = await call(method, path, { token });
        assert.equal(r.status, 401, `${method} ${path}`);
        assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="spooky"');
        assert.equal(typeof r.json.error, 'string');
      }
      assert.deepEqual(h.calls, [], 'no handler runs without a valid token');
    });
  }

  it('401 for a non-Bearer scheme', async () => {
    const res = await fetch(`${base}/v1/backends`, { headers: { authorization: `Basic ${TOKEN}` } });
    assert.equal(res.status, 401);
    await res.text();
  });
});

describe('routes', () => {
  it('GET /v1/config: the applied config, 404 when none', async () => {
    const r = await call('GET', '/v1/config');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, APPLIED);
    h.applied = null;
    try {
      const none = await call('GET', '/v1/config');
      assert.equal(none.status, 404);
      assert.deepEqual(none.json, { error: 'no config applied yet' });
    } finally {
      h.applied = APPLIED;
    }
  });

  it('POST /v1/config/validate passes the YAML through', async () => {
    const r = await call('POST', '/v1/config/validate', { body: 'version: 1\n' });
    assert.equal(r.status, 200);
    assert.equal(r.json.ok, true);
    assert.deepEqual(h.calls, [{ name: 'validate', args: ['version: 1\n'] }]);
  });

  it('POST /v1/config: 200 with ApplyBody and the caller as `by`', async () => {
    const r = await call('POST', '/v1/config', { body: 'version: 1\n', ua: 'spooky-cli/0.1.0' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { version: 4, unchanged: false, dataplanes: [] });
    assert.equal(h.calls[0].name, 'apply');
    assert.equal(h.calls[0].args[0], 'version: 1\n');
    const by = String(h.calls[0].args[1]);
    assert.match(by, /^token@(::ffff:)?127\.0\.0\.1 \(spooky-cli\/0\.1\.0\)$/);
    assert.ok(!by.includes(TOKEN));
  });

  it('POST /v1/config: 400 for an empty body', async () => {
    const r = await call('POST', '/v1/config', { body: '' });
    assert.equal(r.status, 400);
    assert.deepEqual(h.calls, []);
  });

  it('POST /v1/config: 422 with every error', async () => {
    const errors = [
      { path: 'listen.port', line: 3, column: 9, message: 'expected a port' },
      { path: 'upstream', message: 'expected at least one pool' },
    ];
    h.applyResult = { kind: 'invalid', errors };
    const r = await call('POST', '/v1/config', { body: 'x: 1\n' });
    assert.equal(r.status, 422);
    assert.equal(typeof r.json.error, 'string');
    assert.deepEqual(r.json.errors, errors);
  });

  it('POST /v1/config: 409 when data planes reject (NACK)', async () => {
    const dataplanes = [
      { node_id: 'dp-1', result: 'nack' as const, error: 'cannot bind :443' },
      { node_id: 'dp-2', result: 'ack' as const },
    ];
    h.applyResult = { kind: 'rejected', version: 5, dataplanes };
    const r = await call('POST', '/v1/config', { body: 'version: 1\n' });
    assert.equal(r.status, 409);
    assert.match(String(r.json.error), /dp-1: cannot bind :443/);
    assert.deepEqual(r.json.dataplanes, dataplanes);
  });

  it('POST /v1/config: 409 busy', async () => {
    h.applyResult = { kind: 'busy' };
    const r = await call('POST', '/v1/config', { body: 'version: 1\n' });
    assert.equal(r.status, 409);
    assert.deepEqual(r.json, { error: 'another apply is in progress' });
  });

  it('POST /v1/config/rollback: 200, then 409 without a previous config', async () => {
    const ok = await call('POST', '/v1/config/rollback');
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json, { version: 2, unchanged: false, dataplanes: [] });
    assert.equal(h.calls[0].name, 'rollback');
    assert.match(String(h.calls[0].args[0]), /^token@/);
    h.rollbackResult = { kind: 'no_previous' };
    const none = await call('POST', '/v1/config/rollback');
    assert.equal(none.status, 409);
    assert.deepEqual(none.json, { error: 'no previous config to roll back to' });
  });

  it('POST /v1/config/reload: 200, then 409 before any config', async () => {
    h.rollbackResult = { kind: 'applied', body: { version: 3, unchanged: false, dataplanes: [] } };
    const ok = await call('POST', '/v1/config/reload');
    assert.equal(ok.status, 200);
    assert.equal(h.calls[0].name, 'reload');
    assert.match(String(h.calls[0].args[0]), /^token@/);
    h.rollbackResult = { kind: 'nothing_applied' };
    const none = await call('POST', '/v1/config/reload');
    assert.equal(none.status, 409);
    assert.deepEqual(none.json, { error: 'no config applied yet: nothing to reload' });
  });

  it('GET /v1/backends and /v1/dataplanes', async () => {
    const b = await call('GET', '/v1/backends');
    assert.equal(b.status, 200);
    assert.deepEqual(b.json, { backends: [BACKEND] });
    const d = await call('GET', '/v1/dataplanes');
    assert.equal(d.status, 200);
    assert.deepEqual(d.json, DATAPLANES);
  });

  it('drain and undrain, with URL-decoded ids', async () => {
    const d = await call('POST', '/v1/backends/api-1/drain');
    assert.equal(d.status, 200);
    assert.deepEqual(d.json, { id: 'api-1', drained: true });
    const u = await call('POST', '/v1/backends/a%2Fb%20c/undrain');
    assert.equal(u.status, 200);
    assert.deepEqual(u.json, { id: 'a/b c', drained: false });
    assert.deepEqual(
      h.calls.map((c) => c.args.slice(0, 2)),
      [
        ['api-1', true],
        ['a/b c', false],
      ],
    );
  });

  it('404 for an unknown backend, 400 for a malformed id', async () => {
    const r = await call('POST', '/v1/backends/nope/drain');
    assert.equal(r.status, 404);
    assert.match(String(r.json.error), /unknown backend "nope"/);
    const bad = await call('POST', '/v1/backends/%E0%A4%A/drain');
    assert.equal(bad.status, 400);
  });

  it('404 JSON for unknown paths', async () => {
    for (const path of ['/', '/v1', '/v1/config/', '/v1/backends/x', '/nope?x=1']) {
      const r = await call('GET', path);
      assert.equal(r.status, 404, path);
      assert.equal(r.headers.get('content-type'), 'application/json');
      assert.equal(typeof r.json.error, 'string');
    }
  });

  it('405 with Allow for a wrong method', async () => {
    const cases: [string, string, string][] = [
      ['DELETE', '/v1/config', 'GET, HEAD, POST'],
      ['GET', '/v1/config/rollback', 'POST'],
      ['POST', '/v1/backends', 'GET, HEAD'],
      ['GET', '/v1/backends/api-1/drain', 'POST'],
      ['POST', '/health', 'GET, HEAD'],
    ];
    for (const [method, path, allow] of cases) {
      const r = await call(method, path);
      assert.equal(r.status, 405, `${method} ${path}`);
      assert.equal(r.headers.get('allow'), allow);
      assert.equal(typeof r.json.error, 'string');
    }
    assert.deepEqual(h.calls, []);
  });

  it('HEAD on a GET route', async () => {
    const res = await fetch(`${base}/health`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '');
  });
});

describe('bodies', () => {
  it('413 for a body over the cap (Content-Length)', async () => {
    const r = await call('POST', '/v1/config', { body: 'x'.repeat(MAX_BODY + 1) });
    assert.equal(r.status, 413);
    assert.match(String(r.json.error), /exceeds 64 bytes/);
    assert.deepEqual(h.calls, []);
  });

  it('413 for a chunked body that grows over the cap, and the connection closes', async () => {
    const r = await rawPost('/v1/config/validate', [Buffer.alloc(40, 'a'), Buffer.alloc(40, 'b')]);
    assert.equal(r.status, 413);
    assert.equal(r.connection, 'close');
    assert.deepEqual(h.calls, []);
  });

  it('a body exactly at the cap is accepted', async () => {
    const r = await rawPost('/v1/config/validate', [Buffer.alloc(MAX_BODY, 'a')]);
    assert.equal(r.status, 200);
  });

  it('400 for a body that is not UTF-8', async () => {
    const r = await call('POST', '/v1/config', { body: new Uint8Array([0x76, 0x3a, 0xff, 0xfe, 0x0a]) });
    assert.equal(r.status, 400);
    assert.match(String(r.json.error), /UTF-8/);
    assert.deepEqual(h.calls, []);
  });
});

describe('failures and logs', () => {
  it('500 when a handler throws, and the server keeps serving', async () => {
    for (const [name, method, path, body] of [
      ['backends', 'GET', '/v1/backends', undefined],
      ['apply', 'POST', '/v1/config', 'version: 1\n'],
      ['setDrained', 'POST', '/v1/backends/api-1/drain', undefined],
    ] as const) {
      h.throwOn = name;
      const r = await call(method, path, { body });
      assert.equal(r.status, 500, name);
      assert.match(String(r.json.error), new RegExp(`${name} exploded`));
    }
    h.throwOn = '';
    assert.equal((await call('GET', '/v1/backends')).status, 200);
    assert.ok(logLines.some((l) => JSON.parse(l).level === 50 && l.includes('exploded')));
  });

  it('logs every mutating call with its outcome, never the token', async () => {
    logLines.length = 0;
    h.applyResult = { kind: 'applied', body: { version: 7, unchanged: false, dataplanes: [] } };
    await call('POST', '/v1/config', { body: 'version: 1\n', ua: 'test-agent' });
    await call('POST', '/v1/backends/api-1/drain');
    await call('POST', '/v1/backends/nope/undrain');
    await call('POST', '/v1/config/rollback', { token: WRONG });
    await call('GET', '/v1/config', { token: WRONG });
    const entries = logLines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const audit = entries.filter((e) => e.msg === 'control api call');
    assert.deepEqual(
      audit.map((e) => [e.method, e.path, e.outcome, e.status, e.level]),
      [
        ['POST', '/v1/config', 'applied v7', 200, 30],
        ['POST', '/v1/backends/api-1/drain', 'drained', 200, 30],
        ['POST', '/v1/backends/nope/undrain', 'unknown_backend', 404, 30],
      ],
    );
    assert.match(String(audit[0].by), /^token@.* \(test-agent\)$/);
    assert.ok(
      entries.some((e) => e.level === 40 && e.path === '/v1/config/rollback'),
      'unauthorized attempt logged',
    );
    for (const line of logLines) {
      assert.ok(!line.includes(TOKEN), `token leaked: ${line}`);
      assert.ok(!line.includes(WRONG), `presented token leaked: ${line}`);
      assert.ok(!/bearer/i.test(line), `authorization leaked: ${line}`);
    }
  });
});

describe('close', () => {
  it('close() ends idle keep-alive connections and resolves', async () => {
    const other = await startControlApi({ address: '127.0.0.1', port: 0, token: TOKEN, handlers: h, log });
    const res = await fetch(`http://127.0.0.1:${other.port}/health`);
    await res.text();
    await other.close();
    await assert.rejects(fetch(`http://127.0.0.1:${other.port}/health`));
  });

  it('a busy port gives a clear error', async () => {
    await assert.rejects(
      startControlApi({ address: '127.0.0.1', port: api.port, token: TOKEN, handlers: h, log }),
      /control API cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/,
    );
  });
});
