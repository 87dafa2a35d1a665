import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fixturePath } from './fixtures/fixtures.js';
import { formatIssues, loadConfigFile, loadConfigText } from './load.js';
import { buildBootstrapConfig, buildRuntimeConfig, resolveLogLevel } from './runtime.js';
import type { Config } from './schema.js';

/** Stands in for reading PEM files: the text names the file, so tests see which was read. */
const readPem = (path: string) => `PEM ${path}`;

function load(text: string): Config {
  const result = loadConfigText(text, 'test.yaml');
  if (!result.ok) assert.fail(formatIssues('test.yaml', result.errors));
  return result.config;
}

describe('buildRuntimeConfig', () => {
  it('builds the seed config', () => {
    const result = loadConfigFile(fixturePath('seed.yaml'), { checkFiles: false });
    assert.ok(result.ok);
    const rt = buildRuntimeConfig(result.config, { baseDir: '/etc/spooky', readPem });
    assert.deepEqual(rt.listen, {
      address: '0.0.0.0',
      port: 443,
      certPem: 'PEM /etc/spooky/certs/fullchain.pem',
      keyPem: 'PEM /etc/spooky/certs/privkey.pem',
      clientAuth: null,
      tcp: true,
      altSvc: { port: null, maxAge: 86_400 },
    });
    assert.deepEqual(rt.upstreamTls, { verify: true });
    assert.deepEqual(buildBootstrapConfig(result.config, { baseDir: '/etc/spooky' }), {
      logFile: undefined,
      control: { socket: '/run/spooky/control.sock', stateDir: '/var/lib/spooky', listen: null, server: null },
    });
    assert.deepEqual([...rt.pools.keys()], ['api', 'default']);
    assert.deepEqual(rt.pools.get('api'), {
      name: 'api',
      policy: 'round-robin',
      backends: [
        {
          id: 'api-1',
          pool: 'api',
          origin: 'https://10.0.10.10:8080',
          tls: true,
          host: '10.0.10.10',
          port: 8080,
          protocol: 'h2',
          weight: 100,
        },
        {
          id: 'api-2',
          pool: 'api',
          origin: 'https://10.0.10.11:8080',
          tls: true,
          host: '10.0.10.11',
          port: 8080,
          protocol: 'h2',
          weight: 100,
        },
      ],
      route: { pathPrefix: '/api' },
      timeouts: { connectMs: 1000, headersMs: 30000, idleMs: 60000 },
    });
    assert.equal(rt.routes.match('example.com', '/api/v1/users'), 'api');
    assert.equal(rt.routes.match('example.com', '/apis'), 'default');
    assert.equal(rt.routes.match(undefined, '/'), 'default');
    assert.deepEqual(rt.log, { level: 'info', format: 'json', accessLog: true });
    assert.equal(rt.performance.max_request_body_bytes, 104857600);
    assert.equal(rt.performance.quic_cc_algorithm, 'cubic');
    assert.deepEqual(rt.performance.early_data_methods, ['GET', 'HEAD']);
  });

  it('is deeply frozen', () => {
    const result = loadConfigFile(fixturePath('seed.yaml'), { checkFiles: false });
    assert.ok(result.ok);
    const rt = buildRuntimeConfig(result.config, { baseDir: '/', readPem });
    assert.ok(Object.isFrozen(rt));
    assert.ok(Object.isFrozen(rt.listen));
    assert.ok(Object.isFrozen(rt.performance));
    assert.ok(Object.isFrozen(rt.performance.early_data_methods));
    const pool = rt.pools.get('api');
    assert.ok(pool !== undefined && Object.isFrozen(pool) && Object.isFrozen(pool.backends));
    assert.ok(Object.isFrozen(pool.backends[0]) && Object.isFrozen(pool.timeouts));
    assert.equal((rt.pools as unknown as { set?: unknown }).set, undefined);
    assert.throws(() => {
      (rt.log as { level: string }).level = 'debug';
    }, TypeError);
  });

  it('resolves files, fallbacks, overrides and aliases', () => {
    const config = load(`listen:
  port: 0
  tls: {cert: certs/cert.pem, key: /abs/key.pem}
load_balancing:
  type: consistent-hash
upstream:
  hashed:
    route: {host: "*.Example.com"}
    timeouts: {backend_timeout_ms: 5000}
    backends:
      - {id: h1, address: "http://[::1]:8080", protocol: http1, weight: 3}
  keyed:
    load_balancing: {type: consistent-hash, key: "header:x-user"}
    route: {path_prefix: /k}
    backends: [{id: k1, address: "https://k.internal"}]
  plain:
    load_balancing: {type: least-connections}
    backends: [{id: p1, address: "p.internal:9000"}]
log:
  level: silence
  file: {path: logs/spooky.log}
performance:
  backend_connect_timeout_ms: 250
`);
    const rt = buildRuntimeConfig(config, { baseDir: '/etc/spooky', readPem });
    assert.equal(rt.listen.port, 0);
    assert.equal(rt.listen.certPem, 'PEM /etc/spooky/certs/cert.pem');
    assert.equal(rt.listen.keyPem, 'PEM /abs/key.pem');
    const hashed = rt.pools.get('hashed');
    assert.equal(hashed?.policy, 'consistent-hash');
    assert.equal(hashed?.hashKey, 'authority');
    assert.deepEqual(hashed?.timeouts, { connectMs: 250, headersMs: 5000, idleMs: 60000 });
    assert.deepEqual(hashed?.backends[0], {
      id: 'h1',
      pool: 'hashed',
      origin: 'http://[::1]:8080',
      tls: false,
      host: '::1',
      port: 8080,
      protocol: 'http1',
      weight: 3,
    });
    assert.equal(rt.pools.get('keyed')?.hashKey, 'header:x-user');
    assert.equal(rt.pools.get('plain')?.policy, 'least-connections');
    assert.ok(!('hashKey' in (rt.pools.get('plain') ?? {})));
    assert.equal(rt.routes.match('www.example.com', '/x'), 'hashed');
    assert.equal(rt.routes.match('example.com', '/k/1'), 'keyed');
    assert.equal(rt.routes.match('example.com', '/x'), 'plain');
    assert.deepEqual(rt.log, { level: 'silent', format: 'plain', accessLog: true });
    assert.equal(buildBootstrapConfig(config, { baseDir: '/etc/spooky' }).logFile, '/etc/spooky/logs/spooky.log');
  });

  it('maps every log level alias', () => {
    const cases = [
      ['whisper', 'trace'],
      ['haunt', 'debug'],
      ['spooky', 'info'],
      ['scream', 'warn'],
      ['poltergeist', 'error'],
      ['silence', 'silent'],
      ['off', 'silent'],
      ['debug', 'debug'],
    ] as const;
    for (const [level, expected] of cases) assert.equal(resolveLogLevel(level), expected);
  });

  it('resolves mTLS, alt-svc and backend TLS settings, files against the config directory', () => {
    const rt = buildRuntimeConfig(
      load(`listen:
  port: 8443
  tls:
    cert: c.pem
    key: k.pem
    client_auth: { enabled: true, ca_file: clients.pem, require: true }
  tcp: { enabled: false }
  alt_svc: { port: 443, max_age: 60 }
upstream:
  web:
    backends: [{ id: w, address: "backends.internal:8443" }]
upstream_tls:
  ca_file: certs/backends.pem
  server_name: backends.internal
  client_cert: certs/me.pem
  client_key: certs/me.key
resilience:
  retries: { attempts: 2, on: [connect-failure] }
`),
      { baseDir: '/srv/spooky', readPem },
    );
    assert.deepEqual(rt.listen.clientAuth, { caPem: 'PEM /srv/spooky/clients.pem', require: true });
    assert.equal(rt.listen.tcp, false);
    assert.deepEqual(rt.listen.altSvc, { port: 443, maxAge: 60 });
    assert.deepEqual(rt.upstreamTls, {
      verify: true,
      caPem: 'PEM /srv/spooky/certs/backends.pem',
      serverName: 'backends.internal',
      clientCertPem: 'PEM /srv/spooky/certs/me.pem',
      clientKeyPem: 'PEM /srv/spooky/certs/me.key',
    });
    assert.deepEqual(rt.resilience.retries, { attempts: 2, on: ['connect-failure'], budget_percent: 20 });
    assert.ok(Object.isFrozen(rt.resilience.retries.on));
  });

  it('turns alt-svc off when disabled', () => {
    const rt = buildRuntimeConfig(
      load(`listen:
  tls: { cert: c.pem, key: k.pem }
  alt_svc: { enabled: false }
upstream:
  web:
    backends: [{ id: w, address: "http://127.0.0.1:8080" }]
`),
      { baseDir: '/', readPem },
    );
    assert.equal(rt.listen.altSvc, null);
  });
});
