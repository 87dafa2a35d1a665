/**
 * Fuzzing the control API's HTTP layer (controlplane/api/server.ts) over real sockets: arbitrary
 * methods, paths, headers and bodies always get a JSON answer with a known status, a body reaches
 * the handler exactly when it should, and the server keeps serving. See fuzz/README.md.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import {
  type ApplyResult,
  type ControlApiHandlers,
  type RunningControlApi,
  startControlApi,
} from '../controlplane/api/server.js';
import type {
  AppliedConfigBody,
  BackendInfo,
  DataPlanesBody,
  ReadyBody,
  ValidateBody,
} from '../controlplane/api/types.js';
import { loadConfigText } from '../model/config/load.js';
import { check, fuzzRuns, testTimeoutMs, withinMsAsync } from './support.js';

const TOKEN = 'fuzz-token-0123456789-abcdefghij';
const MAX_BODY = 2048;
const KNOWN_STATUSES = new Set([200, 400, 401, 404, 405, 409, 413, 422, 500, 503]);
const REQUEST_MS = 5000;

const APPLY_RESULTS: ApplyResult[] = [
  { kind: 'applied', body: { version: 4, unchanged: false, dataplanes: [] } },
  { kind: 'invalid', errors: [{ path: 'x', message: 'bad', line: 1, column: 1 }] },
  { kind: 'rejected', version: 4, dataplanes: [{ node_id: 'dp-1', result: 'nack', error: 'no' }] },
  { kind: 'no_previous' },
  { kind: 'busy' },
  { kind: 'failed', message: 'disk full' },
];

/** Fake handlers; `mode` says how the next request's handler behaves. */
class Handlers implements ControlApiHandlers {
  mode = { throws: false, apply: APPLY_RESULTS[0], ready: true, applied: true as boolean };
  bodies: string[] = [];
  /** A handler threw or answered `failed`: a 500 is allowed. */
  failed = false;

  private enter(): void {
    if (this.mode.throws) {
      this.failed = true;
      throw new Error('handler exploded');
    }
  }
  appliedConfig(): AppliedConfigBody | null {
    this.enter();
    return this.mode.applied
      ? { version: 1, sha256: '00'.repeat(32), applied_at: 'now', applied_by: 'me', yaml: 'version: 1\n' }
      : null;
  }
  validate(yaml: string): ValidateBody {
    this.bodies.push(yaml);
    this.enter();
    const r = loadConfigText(yaml, 'request body');
    return { ok: r.ok, errors: r.ok ? [] : r.errors, warnings: r.warnings, diff: '' };
  }
  async apply(yaml: string): Promise<ApplyResult> {
    this.bodies.push(yaml);
    this.enter();
    if (this.mode.apply.kind === 'failed') this.failed = true;
    return this.mode.apply;
  }
  async reload(): Promise<ApplyResult> {
    return this.rollback();
  }
  async rollback(): Promise<ApplyResult> {
    this.enter();
    if (this.mode.apply.kind === 'failed') this.failed = true;
    return this.mode.apply;
  }
  async backends(): Promise<BackendInfo[]> {
    this.enter();
    return [];
  }
  setDrained(id: string): boolean {
    this.enter();
    return id === 'api-1';
  }
  dataplanes(): DataPlanesBody {
    this.enter();
    return { current_version: 1, dataplanes: [] };
  }
  ready(): ReadyBody {
    this.enter();
    return this.mode.ready ? { ready: true, reasons: [] } : { ready: false, reasons: ['fuzz'] };
  }
}

const logLines: string[] = [];
const handlers = new Handlers();
let api: RunningControlApi;

before(async () => {
  api = await startControlApi({
    address: '127.0.0.1',
    port: 0,
    token: TOKEN,
    handlers,
    log: pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) }),
    maxBodyBytes: MAX_BODY,
  });
});
after(async () => {
  await api.close();
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Uint8Array | undefined;
  /** Send the body in these pieces with chunked transfer encoding (else Content-Length). */
  chunked: number[] | undefined;
}

/** One request on its own connection. */
function send(r: Req): Promise<Reply> {
  return withinMsAsync(
    () =>
      new Promise<Reply>((resolve, reject) => {
        const headers: Record<string, string> = { ...r.headers };
        // Explicit framing: node:http sends a GET body unframed unless told to chunk it.
        if (r.body !== undefined) {
          if (r.chunked === undefined) headers['content-length'] = String(r.body.length);
          else headers['transfer-encoding'] = 'chunked';
        }
        const req = request(
          { host: '127.0.0.1', port: api.port, method: r.method, path: r.path, headers, agent: false },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
            );
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        if (r.body !== undefined && r.chunked !== undefined) {
          let off = 0;
          for (const n of r.chunked) {
            req.write(r.body.subarray(off, off + n));
            off += n;
          }
          if (off < r.body.length) req.write(r.body.subarray(off));
        } else if (r.body !== undefined && r.body.length > 0) {
          req.write(r.body);
        }
        req.end();
      }),
    REQUEST_MS,
    `${r.method} ${r.path}`,
  );
}

async function health(): Promise<void> {
  const saved = handlers.mode.throws;
  handlers.mode.throws = false;
  try {
    const r = await send({ method: 'GET', path: '/health', headers: {}, body: undefined, chunked: undefined });
    assert.equal(r.status, 200, 'GET /health after the fuzzed request');
    assert.equal(JSON.parse(r.body.toString()).status, 'ok');
  } finally {
    handlers.mode.throws = saved;
  }
}

// ------------------------------------------------------------------ the model of the routes

const ROUTES: Array<{ re: RegExp; open?: boolean; needsBody?: boolean; methods: string[] }> = [
  { re: /^\/health$/, open: true, methods: ['GET'] },
  { re: /^\/ready$/, open: true, methods: ['GET'] },
  { re: /^\/v1\/config$/, needsBody: true, methods: ['GET', 'POST'] },
  { re: /^\/v1\/config\/validate$/, needsBody: true, methods: ['POST'] },
  { re: /^\/v1\/config\/rollback$/, methods: ['POST'] },
  { re: /^\/v1\/config\/reload$/, methods: ['POST'] },
  { re: /^\/v1\/backends$/, methods: ['GET'] },
  { re: /^\/v1\/backends\/([^/]+)\/drain$/, methods: ['POST'] },
  { re: /^\/v1\/backends\/([^/]+)\/undrain$/, methods: ['POST'] },
  { re: /^\/v1\/dataplanes$/, methods: ['GET'] },
];

function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * The status the request must get up to the handler, or undefined when the handler decides.
 * Returns also whether the handler may receive the body.
 */
function expectedBeforeHandler(r: Req): { status?: number; reachesHandler: boolean } {
  const path = r.path.split('?')[0];
  const route = ROUTES.find((x) => x.re.test(path));
  if (!route) return { status: 404, reachesHandler: false };
  const auth = r.headers.authorization;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth ?? '');
  if (!route.open && (!m || m[1] !== TOKEN)) return { status: 401, reachesHandler: false };
  const method = r.method === 'HEAD' ? 'GET' : r.method;
  if (!route.methods.includes(method)) return { status: 405, reachesHandler: false };
  if (method !== 'POST') return { reachesHandler: true };
  const body = r.body ?? new Uint8Array(0);
  if (body.length > MAX_BODY) return { status: 413, reachesHandler: false };
  if (!isUtf8(body)) return { status: 400, reachesHandler: false };
  if (route.needsBody && body.length === 0) return { status: 400, reachesHandler: false };
  return { reachesHandler: true };
}

// ------------------------------------------------------------------ generators

const visible = (maxLength: number) =>
  fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength });
const pathSegment = fc.oneof(
  fc.constantFrom('api-1', 'nope', 'a%2Fb', '%', '%zz', '%E0%A4%A', '%ff', '%00', '..', '.', '%2e%2e'),
  visible(12).filter((s) => s.length > 0 && !s.includes('/') && !s.includes('?')),
);
const pathArb = fc
  .tuple(
    fc.oneof(
      {
        arbitrary: fc.constantFrom(
          '/health',
          '/ready',
          '/v1/config',
          '/v1/config/validate',
          '/v1/config/rollback',
          '/v1/config/reload',
        ),
        weight: 6,
      },
      { arbitrary: fc.constantFrom('/v1/config', '/v1/config/validate'), weight: 4 },
      { arbitrary: fc.constantFrom('/v1/backends', '/v1/dataplanes'), weight: 2 },
      { arbitrary: pathSegment.map((id) => `/v1/backends/${id}/drain`), weight: 2 },
      { arbitrary: pathSegment.map((id) => `/v1/backends/${id}/undrain`), weight: 1 },
      { arbitrary: fc.constantFrom('/', '/v1', '/v1/', '/health/', '//health', '/HEALTH', '*'), weight: 1 },
      { arbitrary: visible(40).map((p) => `/${p}`), weight: 1 },
    ),
    fc.option(visible(20), { nil: undefined, freq: 4 }),
  )
  .map(([p, q]) => (q === undefined ? p : `${p}?${q}`));
const methodArb = fc.oneof(
  { arbitrary: fc.constant('POST'), weight: 5 },
  { arbitrary: fc.constant('GET'), weight: 3 },
  { arbitrary: fc.constantFrom('HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'), weight: 1 },
);
const authArb = fc.oneof(
  { arbitrary: fc.constant(`Bearer ${TOKEN}`), weight: 8 },
  { arbitrary: fc.constant(`bearer \t${TOKEN}  `), weight: 1 },
  {
    arbitrary: fc.constantFrom(
      '',
      'Bearer',
      'Bearer ',
      `Basic ${TOKEN}`,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(1)}`,
      `Bearer ${TOKEN} x`,
    ),
    weight: 1,
  },
  { arbitrary: visible(60), weight: 1 },
);
// What node:http lets a client send in a header value: SP, visible ASCII and obs-text (no DEL).
const headerValue = fc
  .string({
    unit: fc.integer({ min: 0x20, max: 0xfe }).map((c) => String.fromCharCode(c === 0x7f ? 0xff : c)),
    maxLength: 60,
  })
  .map((s) => s.trim());
const extraHeaders = fc.dictionary(
  fc
    .string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz-0123456789'), minLength: 1, maxLength: 12 })
    .filter(
      (n) =>
        !['content-length', 'transfer-encoding', 'connection', 'host', 'expect', 'upgrade', 'authorization'].includes(
          n,
        ),
    ),
  headerValue,
  { maxKeys: 5 },
);
const VALID_YAML =
  'listen:\n  tls: {cert: c.pem, key: k.pem}\nupstream:\n  api:\n    backends: [{id: a, address: "10.0.0.1:80"}]\n';
const bodyArb: fc.Arbitrary<Uint8Array | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constant(new Uint8Array(0)),
  fc.uint8Array({ maxLength: 300, size: 'medium' }),
  fc.string({ unit: 'grapheme', maxLength: 200 }).map((s) => new Uint8Array(Buffer.from(s))),
  fc.constantFrom(VALID_YAML, 'version: 1\n', 'x: [', '\ufeffversion: 1').map((s) => new Uint8Array(Buffer.from(s))),
  // Invalid UTF-8: lone continuation bytes, overlongs, surrogates, truncated sequences.
  fc
    .tuple(
      fc.string({ maxLength: 40 }),
      fc.constantFrom([0xff], [0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82]),
    )
    .map(([s, bad]) => new Uint8Array([...Buffer.from(s), ...bad])),
  // Around and over the cap.
  fc.integer({ min: MAX_BODY - 2, max: MAX_BODY + 2 }).map((n) => new Uint8Array(n).fill(0x61)),
  fc.integer({ min: MAX_BODY, max: MAX_BODY * 64 }).map((n) => new Uint8Array(n).fill(0x62)),
);
const reqArb: fc.Arbitrary<Req> = fc
  .record({
    method: methodArb,
    path: pathArb,
    auth: fc.option(authArb, { nil: undefined, freq: 10 }),
    ua: fc.option(headerValue, { nil: undefined }),
    extra: extraHeaders,
    body: bodyArb,
    chunked: fc.option(fc.array(fc.nat(MAX_BODY), { maxLength: 4 }), { nil: undefined }),
  })
  .map(({ method, path, auth, ua, extra, body, chunked }) => {
    const headers: Record<string, string> = { ...extra };
    if (auth !== undefined) headers.authorization = auth;
    if (ua !== undefined) headers['user-agent'] = ua;
    return { method, path, headers, body, chunked: body === undefined ? undefined : chunked };
  });
const modeArb = fc.record({
  // One request in ten meets a throwing handler.
  throws: fc.nat(9).map((n) => n === 0),
  apply: fc.constantFrom(...APPLY_RESULTS),
  ready: fc.boolean(),
  applied: fc.boolean(),
});

const timeout = testTimeoutMs(200);
// Real sockets are slow: 100 runs in CI, a twentieth of FUZZ_RUNS in long runs.
const numRuns = Math.max(Math.min(fuzzRuns(), 100), Math.floor(fuzzRuns() / 20));

describe('fuzz: control API (controlplane/api/server.ts)', () => {
  it('any request gets a JSON answer with a known status', { timeout }, async () => {
    await check(
      'any request gets a JSON answer with a known status',
      fc.asyncProperty(reqArb, modeArb, async (r, mode) => {
        handlers.mode = mode;
        handlers.failed = false;
        handlers.bodies = [];
        const logged = logLines.length;
        const res = await send(r);
        const expected = expectedBeforeHandler(r);
        assert.ok(KNOWN_STATUSES.has(res.status), `status ${res.status}`);
        if (expected.status !== undefined) assert.equal(res.status, expected.status, 'status before the handler');
        if (res.status === 500) assert.ok(handlers.failed, '500 without a failing handler');
        if (r.method !== 'HEAD') {
          assert.equal(res.headers['content-type'], 'application/json');
          const text = res.body.toString('utf8');
          assert.ok(text.endsWith('\n'));
          const json = JSON.parse(text) as Record<string, unknown>;
          if (res.status >= 400 && res.status !== 503) {
            assert.equal(typeof json.error, 'string');
            assert.ok((json.error as string).length > 0);
          }
        } else {
          assert.equal(res.body.length, 0);
        }
        // The body reaches the handler exactly, or not at all.
        if (!expected.reachesHandler) assert.deepEqual(handlers.bodies, []);
        // (A leading UTF-8 BOM is dropped, as TextDecoder does by default.)
        const sent = new TextDecoder().decode(r.body ?? new Uint8Array(0));
        for (const b of handlers.bodies) assert.equal(b, sent);
        // Nothing escaped the request handler.
        for (const line of logLines.slice(logged)) assert.ok(!line.includes('request failed'), line);
        for (const line of logLines.slice(logged)) assert.ok(!line.includes(TOKEN), 'token logged');
      }),
      { numRuns },
    );
    await health();
  });

  it('raw bytes on the socket never take the server down', { timeout }, async () => {
    const requestLine = fc
      .tuple(methodArb, pathArb, fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1 ', 'http/1.1'))
      .map(([m, p, v]) => `${m} ${p} ${v}\r\n`);
    const rawArb = fc.oneof(
      fc.uint8Array({ maxLength: 400, size: 'medium' }),
      fc
        .tuple(
          requestLine,
          fc.array(fc.tuple(visible(12), fc.string({ unit: 'binary', maxLength: 30 })), { maxLength: 6 }),
          fc.constantFrom('', `Authorization: Bearer ${TOKEN}\r\n`),
          fc.constantFrom('', 'Content-Length: 5\r\n', 'Content-Length: -1\r\n', 'Content-Length: 99999999999\r\n'),
          fc.constantFrom('', 'Transfer-Encoding: chunked\r\n', 'Transfer-Encoding: chunked\r\nContent-Length: 3\r\n'),
          fc.uint8Array({ maxLength: 100 }),
        )
        .map(([line, hs, auth, cl, te, body]) => {
          const head = line + hs.map(([n, v]) => `${n}: ${v}\r\n`).join('') + auth + cl + te + '\r\n';
          return new Uint8Array([...Buffer.from(head, 'latin1'), ...body]);
        }),
    );
    await check(
      'raw bytes on the socket never take the server down',
      fc.asyncProperty(rawArb, async (bytes) => {
        handlers.mode = { throws: false, apply: APPLY_RESULTS[0], ready: true, applied: true };
        const logged = logLines.length;
        const answer = await rawExchange(bytes);
        if (answer.length > 0) {
          assert.match(answer.toString('latin1'), /^HTTP\/1\.1 \d{3} /, 'a well-formed status line');
          const status = Number(answer.toString('latin1').slice(9, 12));
          // Node itself answers unparseable requests (400, 431, 505, ...); the app answers the rest.
          assert.ok(status >= 200 && status < 600, `status ${status}`);
          if (status === 500) assert.fail(`500 for ${JSON.stringify(Buffer.from(bytes).toString('latin1'))}`);
        }
        for (const line of logLines.slice(logged)) assert.ok(!line.includes('request failed'), line);
        await health();
      }),
      { numRuns },
    );
  });
});

/** Writes `bytes`, half-closes, and collects what comes back until the server closes (or 2 s). */
function rawExchange(bytes: Uint8Array): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect(api.port, '127.0.0.1');
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks));
    };
    const timer = setTimeout(done, 2000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', done);
    socket.on('close', done);
    socket.on('connect', () => {
      socket.write(bytes);
      socket.end();
    });
  });
}
