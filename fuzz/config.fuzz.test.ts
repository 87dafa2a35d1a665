/**
 * Fuzzing the config loader (model/config/load.ts): arbitrary text, YAML token soup and
 * generated documents (the real keys of schema.ts with wrong types, typos, anchors, deep nesting)
 * always give a well-formed LoadResult, quickly. See fuzz/README.md.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { type ConfigIssue, type LoadResult, loadConfigText } from '../model/config/load.js';
import { LB_POLICIES, LOG_LEVELS } from '../model/config/schema.js';
import { check, testTimeoutMs, withinMs } from './support.js';

type Json = null | boolean | number | bigint | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

/** A valid config that sets every key of schema.ts. */
function fullConfig(): Obj {
  const healthCheck = {
    path: '/health',
    interval: 5000,
    timeout_ms: 1000,
    failure_threshold: 3,
    success_threshold: 2,
    cooldown_ms: 5000,
    method: 'GET',
    expected_status: '200-299,304',
  };
  return {
    version: 1,
    listen: {
      protocol: 'http3',
      address: '0.0.0.0',
      port: 443,
      tls: { cert: '/etc/spooky/cert.pem', key: '/etc/spooky/key.pem', client_auth: { enabled: false, require: true } },
      tcp: { enabled: true },
      alt_svc: { enabled: true, port: 443, max_age: 86_400 },
    },
    upstream: {
      api: {
        load_balancing: { type: 'consistent-hash', key: 'header:x-user' },
        route: { path_prefix: '/api', host: 'api.example.com' },
        backends: [
          { id: 'api-1', address: '10.0.10.10:8080', protocol: 'h2', weight: 100, health_check: healthCheck },
          { id: 'api-2', address: 'https://api2.internal:8443', protocol: 'http1', weight: 5 },
        ],
        timeouts: { backend_connect_timeout_ms: 1000, backend_timeout_ms: 30_000, backend_idle_timeout_ms: 60_000 },
      },
      default: { route: { path_prefix: '/' }, backends: [{ id: 'web-1', address: 'http://[::1]:8080' }] },
    },
    load_balancing: { type: 'round-robin' },
    upstream_tls: {
      verify: true,
      ca_file: '/etc/spooky/ca.pem',
      server_name: 'backend.internal',
      client_cert: '/etc/spooky/client.pem',
      client_key: '/etc/spooky/client-key.pem',
    },
    log: { level: 'info', format: 'json', access_log: true, file: { enabled: true, path: '/var/log/spooky.log' } },
    security: { privileges: { enabled: true, user: 'spooky', group: 'spooky' } },
    observability: {
      control_api: { enabled: true, address: '127.0.0.1', port: 9902, auth_token: 'a-token-of-enough-length' },
      metrics: { enabled: true, address: '127.0.0.1', port: 9090, path: '/metrics' },
    },
    performance: {
      quic_max_idle_timeout_ms: 30_000,
      quic_initial_max_data: 10_000_000,
      quic_initial_max_stream_data: 1_000_000,
      quic_initial_max_streams_bidi: 100,
      quic_initial_max_streams_uni: 100,
      quic_cc_algorithm: 'cubic',
      quic_retry: 'auto',
      quic_0rtt: false,
      early_data_methods: ['GET', 'HEAD'],
      new_connections_per_sec: 2000,
      new_connections_burst: 500,
      max_active_connections: 20_000,
      per_source_max_connections: 1000,
      per_source_new_connections_per_sec: 100,
      per_source_new_connections_burst: 200,
      tls_handshake_timeout_ms: 10_000,
      global_inflight_limit: 4096,
      per_upstream_inflight_limit: 1024,
      per_backend_inflight_limit: 256,
      backend_connect_timeout_ms: 1000,
      backend_timeout_ms: 30_000,
      backend_idle_timeout_ms: 60_000,
      max_request_body_bytes: 104_857_600,
      max_request_headers_count: 128,
      max_request_headers_bytes: 16_384,
      request_header_timeout_ms: 10_000,
      max_connection_age_ms: 3_600_000,
      memory_limit_mib: 0,
      shutdown_drain_timeout_ms: 10_000,
    },
    resilience: {
      retries: { attempts: 1, on: ['connect-failure', 'refused-stream'], budget_percent: 20 },
      circuit_breaker: { enabled: true, consecutive_failures: 5, open_ms: 10_000, half_open_probes: 1 },
      brownout: { enabled: false, trigger_percent: 90, recover_percent: 75, shed_percent: 10 },
      adaptive_admission: { enabled: false, min_limit: 64, max_limit: 4096, increase_step: 8, decrease_percent: 10 },
    },
    control: { socket: '/run/spooky/control.sock', state_dir: '/var/lib/spooky' },
  };
}

type Path = (string | number)[];

/** Every path of `value` (maps and lists), root first. */
function pathsOf(value: Json, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) pathsOf(v, [...prefix, i], out);
  } else if (isObj(value)) for (const [k, v] of Object.entries(value)) pathsOf(v, [...prefix, k], out);
  return out;
}
const BASE_PATHS = pathsOf(fullConfig()).filter((p) => p.length > 0);
const KEY_NAMES = [...new Set(BASE_PATHS.map((p) => p.at(-1)).filter((k): k is string => typeof k === 'string'))];

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Sets an own property, even `__proto__`. */
function setKey(obj: Obj, key: string, value: Json): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function parentOf(root: Obj, path: Path): { parent: Json; key: string | number } | undefined {
  let node: Json = root;
  for (const seg of path.slice(0, -1)) {
    if (Array.isArray(node) && typeof seg === 'number' && seg < node.length) node = node[seg];
    else if (isObj(node) && typeof seg === 'string' && Object.hasOwn(node, seg)) node = node[seg];
    else return undefined;
  }
  return { parent: node, key: path[path.length - 1] };
}

const specialNumber = fc.constantFrom(
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  -0,
  1e308,
  5e-324,
  2 ** 53,
  2 ** 53 + 2,
  -1,
  0.5,
  65_536,
  2 ** 40 + 1,
);
const scalar: fc.Arbitrary<Json> = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.constantFrom(
    '',
    ' ',
    '~',
    'null',
    'yes',
    'on',
    '0x1F',
    '1e999',
    '5s',
    '250 ms',
    '2xx',
    '/x y',
    '[]',
    '{}',
    '&a',
    '*a',
  ),
  fc.constantFrom(
    ...LB_POLICIES,
    ...LOG_LEVELS,
    'GET',
    'h3',
    'http3',
    'round_robin',
    '::1',
    '0.0.0.0',
    'a'.repeat(300),
  ),
  fc.integer(),
  fc.double(),
  specialNumber,
  fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }),
  fc.boolean(),
  fc.constant(null),
);
const anyValue: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...KEY_NAMES), fc.string({ maxLength: 8 })), tie('value'), { maxKeys: 4 }),
  ),
})).value;

const weirdKey = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'prototype', '<<', '', ' ', '0', 'null'),
  fc.constantFrom(...KEY_NAMES).map((k) => k.toUpperCase()),
  fc.constantFrom(...KEY_NAMES).chain((k) => fc.nat(k.length).map((i) => k.slice(0, i) + k.slice(i + 1))),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
);

/** Deeply nested lists and maps: `[[[...]]]` style values. */
const deep = fc.tuple(fc.integer({ min: 1, max: 400 }), fc.boolean(), scalar).map(([depth, maps, leaf]) => {
  let v: Json = leaf;
  for (let i = 0; i < depth; i++) v = maps ? { k: v } : [v];
  return v;
});

type Mutation =
  | { op: 'set'; at: number; value: Json }
  | { op: 'delete'; at: number }
  | { op: 'add'; at: number; key: string; value: Json }
  | { op: 'rename'; at: number; key: string }
  | { op: 'share'; at: number; from: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.oneof(scalar, anyValue, deep) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('add' as const), at: fc.nat(), key: weirdKey, value: anyValue }),
  fc.record({ op: fc.constant('rename' as const), at: fc.nat(), key: weirdKey }),
  // The same object at two places: yaml serialises it as an anchor and an alias.
  fc.record({ op: fc.constant('share' as const), at: fc.nat(), from: fc.nat() }),
);

function mutate(root: Obj, m: Mutation): void {
  const path = BASE_PATHS[m.at % BASE_PATHS.length];
  const where = parentOf(root, path);
  if (where === undefined) return;
  const { parent, key } = where;
  const container = Array.isArray(parent) ? parent : isObj(parent) ? parent : undefined;
  if (container === undefined) return;
  switch (m.op) {
    case 'set':
      if (Array.isArray(container)) container[key as number] = m.value;
      else setKey(container, String(key), m.value);
      break;
    case 'delete':
      if (Array.isArray(container)) container.splice(key as number, 1);
      else delete container[String(key)];
      break;
    case 'add': {
      const target = Array.isArray(container) ? container[key as number] : container[String(key)];
      if (isObj(target)) setKey(target, m.key, m.value);
      else if (Array.isArray(target)) target.push(m.value);
      break;
    }
    case 'rename':
      if (isObj(container) && Object.hasOwn(container, String(key))) {
        const v = container[String(key)];
        delete container[String(key)];
        setKey(container, m.key, v);
      }
      break;
    case 'share': {
      // Only share a subtree that is not an ancestor (no cycles).
      const fromPath = BASE_PATHS[m.from % BASE_PATHS.length];
      const src = parentOf(root, fromPath);
      if (src === undefined || fromPath.length === 0) return;
      const isAncestor = fromPath.length <= path.length && fromPath.every((s, i) => s === path[i]);
      if (isAncestor) return;
      const sp = src.parent;
      const value = Array.isArray(sp) ? sp[src.key as number] : isObj(sp) ? sp[String(src.key)] : undefined;
      if (value === undefined || (typeof value !== 'object' && !Array.isArray(value)) || value === null) return;
      if (Array.isArray(container)) container[key as number] = value;
      else setKey(container, String(key), value);
      break;
    }
  }
}

function lineCount(text: string): number {
  return text.split(/\r\n|\r|\n/).length;
}

function assertIssue(issue: ConfigIssue, text: string, what: string): void {
  const where = `${what} ${JSON.stringify(issue)}`;
  assert.equal(typeof issue.path, 'string', where);
  assert.equal(typeof issue.message, 'string', where);
  assert.ok(issue.message.length > 0, `empty message: ${where}`);
  if (issue.line !== undefined) {
    assert.ok(Number.isInteger(issue.line) && issue.line >= 1, `line: ${where}`);
    assert.ok(issue.line <= lineCount(text), `line past the end: ${where}`);
  }
  if (issue.column !== undefined) assert.ok(Number.isInteger(issue.column) && issue.column >= 1, `column: ${where}`);
}

/** The loader's contract, whatever the input. */
function assertWellFormed(result: LoadResult, text: string): void {
  assert.ok(result && typeof result === 'object');
  for (const w of result.warnings) assertIssue(w, text, 'warning');
  if (result.ok) {
    assert.ok(isObj(result.config), 'config is a map');
    assert.equal(result.config.version, 1);
  } else {
    assert.ok(Array.isArray(result.errors) && result.errors.length > 0, 'ok: false with no errors');
    for (const e of result.errors) assertIssue(e, text, 'error');
  }
  // The control API sends these as JSON.
  JSON.stringify(result.ok ? result.warnings : result.errors);
}

function load(text: string): LoadResult {
  const result = withinMs(() => loadConfigText(text, 'fuzz.yaml'), undefined, 'loadConfigText');
  assertWellFormed(result, text);
  return result;
}

const YAML_TOKENS = [
  ...KEY_NAMES.map((k) => `${k}:`),
  ' ',
  '  ',
  '\n',
  '\n  ',
  '\r\n',
  '\t',
  '- ',
  '[',
  ']',
  '{',
  '}',
  ', ',
  ': ',
  '? ',
  '&a ',
  '*a',
  '&b ',
  '*b',
  '<<: *a',
  '"',
  "'",
  '\\',
  '|',
  '>-',
  '# c',
  '!!int ',
  '!!str ',
  '!!binary ',
  '!!set ',
  '!!omap ',
  '!x ',
  '---\n',
  '...\n',
  '%YAML 1.2\n',
  '%TAG ! tag:x,2000:\n',
  '1',
  '0x1F',
  '1e999',
  '.nan',
  '-.inf',
  '~',
  'null',
  'true',
  'yes',
  '/path',
  '10.0.0.1:8080',
  '\u00a0',
  '\ufeff',
  '\0',
];
const yamlSoup = fc.array(fc.constantFrom(...YAML_TOKENS), { maxLength: 80, size: 'medium' }).map((t) => t.join(''));

const timeout = testTimeoutMs(100);

describe('fuzz: config loader (model/config/load.ts)', () => {
  it('the full base config is valid', () => {
    const r = load(stringify(fullConfig()));
    assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.errors));
  });

  it('arbitrary text gives a well-formed LoadResult', { timeout }, async () => {
    await check(
      'arbitrary text gives a well-formed LoadResult',
      fc.property(
        fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 200 }), yamlSoup),
        (text) => {
          load(text);
        },
      ),
    );
  });

  it('mutated configs give a well-formed LoadResult', { timeout }, async () => {
    await check(
      'mutated configs give a well-formed LoadResult',
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 6 }), fc.boolean(), (mutations, flow) => {
        const root = fullConfig();
        for (const m of mutations) mutate(root, m);
        const text = stringify(root, { collectionStyle: flow ? 'flow' : 'any' });
        load(text);
      }),
    );
  });

  it('anchors, merge keys, alias bombs and deep nesting stay bounded', { timeout }, async () => {
    const aliasBomb = fc
      .tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 12 }))
      .map(([levels, fan]) => {
        const lines = ['a0: &a0 [x]'];
        for (let i = 1; i <= levels; i++)
          lines.push(
            `a${i}: &a${i} [${Array(fan)
              .fill(`*a${i - 1}`)
              .join(', ')}]`,
          );
        return lines.join('\n');
      });
    const nested = fc
      .tuple(fc.integer({ min: 1, max: 5000 }), fc.constantFrom('[', '{k: ', '- '))
      .map(([depth, open]) =>
        open === '- '
          ? `listen:\n${Array.from({ length: Math.min(depth, 300) }, (_, i) => `${' '.repeat(2 * i + 2)}- `).join('\n')}x`
          : `upstream: ${open.repeat(depth)}1${(open === '[' ? ']' : '}').repeat(depth)}`,
      );
    const merge = fc
      .tuple(fc.constantFrom(...KEY_NAMES), anyValue, fc.boolean())
      .map(
        ([key, value, wrong]) =>
          `defaults: &d\n  ${key}: ${JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v)) ?? 'null'}\n` +
          `upstream:\n  api:\n    backends:\n      - <<: ${wrong ? '*nope' : '*d'}\n        id: a\n        address: 10.0.0.1:80\n`,
      );
    await check(
      'anchors, merge keys, alias bombs and deep nesting stay bounded',
      fc.property(fc.oneof(aliasBomb, nested, merge), (text) => {
        load(text);
      }),
    );
  });

  it('generated valid configs load and keep their pools and backends', { timeout }, async () => {
    const name = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,15}$/);
    const backend = fc.record({
      protocol: fc.constantFrom('h2', 'http1'),
      weight: fc.integer({ min: 1, max: 1000 }),
      port: fc.integer({ min: 1, max: 65535 }),
      health: fc.option(
        fc
          .tuple(fc.integer({ min: 100, max: 3_600_000 }), fc.nat(), fc.constantFrom('GET', 'HEAD', 'OPTIONS'))
          .map(([interval, t, method]) => ({ interval, timeout_ms: 1 + (t % (interval - 1)), method })),
        { nil: undefined },
      ),
    });
    const pool = fc.record({
      lb: fc.constantFrom(...LB_POLICIES),
      backends: fc.array(backend, { minLength: 1, maxLength: 4 }),
    });
    await check(
      'generated valid configs load and keep their pools and backends',
      fc.property(
        fc.uniqueArray(fc.tuple(name, pool), { selector: ([n]) => n, minLength: 1, maxLength: 5 }),
        (pools) => {
          const upstream: Obj = {};
          pools.forEach(([poolName, p], i) => {
            setKey(upstream, poolName, {
              load_balancing: { type: p.lb },
              route: { path_prefix: `/p${i}` },
              backends: p.backends.map((b, j) => ({
                id: `b${i}-${j}`,
                address: `10.${i}.${j}.1:${b.port}`,
                protocol: b.protocol,
                weight: b.weight,
                ...(b.health ? { health_check: b.health } : {}),
              })),
            });
          });
          const text = stringify({ listen: { tls: { cert: 'c.pem', key: 'k.pem' } }, upstream });
          const r = load(text);
          assert.ok(r.ok, r.ok ? '' : `${text}\n${JSON.stringify(r.errors)}`);
          // Integer-like names ("0") come first in a JS object, so compare as sets.
          assert.deepEqual(Object.keys(r.config.upstream).sort(), pools.map(([n]) => n).sort());
          pools.forEach(([poolName, p], i) => {
            const got = r.config.upstream[poolName];
            assert.equal(got.load_balancing?.type, p.lb);
            assert.deepEqual(
              got.backends.map((b) => [b.id, b.weight, b.protocol]),
              p.backends.map((b, j) => [`b${i}-${j}`, b.weight, b.protocol]),
            );
          });
        },
      ),
    );
  });
});
