import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fixturePath, readFixture } from './fixtures/fixtures.js';
import { type ConfigIssue, editDistance, formatIssues, loadConfigFile, loadConfigText } from './load.js';

function errorsOf(text: string): ConfigIssue[] {
  const result = loadConfigText(text, 'config.yaml');
  assert.equal(result.ok, false, 'expected the config to be rejected');
  return result.ok ? [] : result.errors;
}

const HEAD = `listen:
  tls:
    cert: cert.pem
    key: key.pem
upstream:
  api:
    route:
      path_prefix: /api
    backends:
`;

describe('loadConfigFile on the seed config', () => {
  it('loads unchanged and means what its comments say', () => {
    const result = loadConfigFile(fixturePath('seed.yaml'), { checkFiles: false });
    assert.ok(result.ok, result.ok ? '' : formatIssues('seed.yaml', result.errors));
    const c = result.config;
    assert.equal(c.version, 1);
    assert.deepEqual(c.listen, {
      protocol: 'http3',
      address: '0.0.0.0',
      port: 443,
      tls: {
        cert: '/etc/spooky/certs/fullchain.pem',
        key: '/etc/spooky/certs/privkey.pem',
        client_auth: { enabled: false, require: true },
      },
      tcp: { enabled: true },
      alt_svc: { enabled: true, max_age: 86_400 },
    });
    assert.deepEqual(Object.keys(c.upstream), ['api', 'default']);
    assert.deepEqual(c.upstream.api.route, { path_prefix: '/api' });
    assert.deepEqual(c.upstream.default.route, { path_prefix: '/' });
    assert.deepEqual(c.upstream.api.load_balancing, { type: 'round-robin' });
    assert.deepEqual(
      c.upstream.api.backends.map((b) => [b.id, b.address, b.protocol, b.weight]),
      [
        ['api-1', '10.0.10.10:8080', 'h2', 100],
        ['api-2', '10.0.10.11:8080', 'h2', 100],
      ],
    );
    assert.deepEqual(c.upstream.api.backends[0].health_check, {
      path: '/health',
      interval: 5000,
      timeout_ms: 2000,
      failure_threshold: 3,
      success_threshold: 2,
      cooldown_ms: 10000,
      method: 'GET',
      expected_status: '2xx',
    });
    assert.equal(c.upstream.default.backends[0].health_check?.interval, 10000);
    assert.deepEqual(c.log, { level: 'info', format: 'json', access_log: true });
    assert.deepEqual(c.security.privileges, { enabled: true, user: 'spooky', group: 'spooky' });
    assert.deepEqual(c.observability.control_api, { enabled: true, address: '127.0.0.1', port: 9902 });
    assert.deepEqual(c.observability.metrics, { enabled: true, address: '127.0.0.1', port: 9090, path: '/metrics' });
    assert.deepEqual(c.control, {
      socket: '/run/spooky/control.sock',
      state_dir: '/var/lib/spooky',
      // The fleet's TCP control connection is off on both sides unless asked for.
      listen: { enabled: false, address: '0.0.0.0', port: 9903 },
      server: { enabled: false, port: 9903 },
    });
    assert.deepEqual(c.performance, {
      quic_max_idle_timeout_ms: 30000,
      quic_initial_max_data: 10000000,
      quic_initial_max_stream_data: 1000000,
      quic_initial_max_streams_bidi: 100,
      quic_initial_max_streams_uni: 100,
      quic_cc_algorithm: 'cubic',
      quic_retry: 'auto',
      quic_0rtt: false,
      early_data_methods: ['GET', 'HEAD'],
      new_connections_per_sec: 2000,
      new_connections_burst: 500,
      max_active_connections: 20000,
      per_source_max_connections: 1000,
      per_source_new_connections_per_sec: 100,
      per_source_new_connections_burst: 200,
      tls_handshake_timeout_ms: 10000,
      global_inflight_limit: 4096,
      per_upstream_inflight_limit: 1024,
      per_backend_inflight_limit: 256,
      backend_connect_timeout_ms: 1000,
      backend_timeout_ms: 30000,
      backend_idle_timeout_ms: 60000,
      max_request_body_bytes: 104857600,
      max_request_headers_count: 128,
      max_request_headers_bytes: 16384,
      request_header_timeout_ms: 10000,
      max_connection_age_ms: 3600000,
      memory_limit_mib: 0,
      shutdown_drain_timeout_ms: 10000,
      workers: 'auto',
    });
  });

  it('is the YAML of the seed page', () => {
    const text = readFixture('seed.yaml');
    assert.match(text, /^# \/etc\/spooky\/config\.yaml\nversion: 1\n/);
    assert.match(text, /cooldown_ms: 10000 {9}# Wait 10 s before retrying a failed backend/);
  });
});

describe('loadConfigText errors', () => {
  it('points at an unknown key and suggests the close one', () => {
    const errors = errorsOf(`${HEAD}      - id: api-1
        address: 10.0.0.1:8080
        helth_check:
          path: /health
`);
    assert.deepEqual(errors, [
      {
        path: 'upstream.api.backends[0].helth_check',
        line: 12,
        column: 9,
        message: 'unknown key "helth_check"; did you mean health_check?',
      },
    ]);
  });

  it('lists the allowed keys when nothing is close', () => {
    const [issue] = errorsOf(`${HEAD}      - id: api-1\n        address: h:1\nbogus: 1\n`);
    assert.equal(issue.path, 'bogus');
    assert.equal(issue.line, 12);
    assert.match(issue.message, /^unknown key "bogus"; expected one of version, listen, upstream, /);
  });

  it('reports every mistake at once, in file order, with positions', () => {
    const text = `version: 1
listen:
  port: 70000
  tls:
    cert: cert.pem
upstream:
  api:
    route:
      path_prefix: api
    backends:
      - id: api-1
        address: backend.local
        weight: 0
      - id: api-1
        address: https://10.0.0.1/health
        protocol: h3
log:
  level: loud
  formt: json
`;
    const errors = errorsOf(text);
    assert.deepEqual(
      errors.map((e) => `${e.line}:${e.column} ${e.path}`),
      [
        '3:3 listen.port',
        '4:3 listen.tls.key',
        '9:7 upstream.api.route.path_prefix',
        '12:9 upstream.api.backends[0].address',
        '13:9 upstream.api.backends[0].weight',
        '14:9 upstream.api.backends[1].id',
        '15:9 upstream.api.backends[1].address',
        '16:9 upstream.api.backends[1].protocol',
        '18:3 log.level',
        '19:3 log.formt',
      ],
    );
    const byPath = new Map(errors.map((e) => [e.path, e.message]));
    assert.equal(byPath.get('listen.port'), 'expected an integer from 0 to 65535, got 70000');
    assert.equal(byPath.get('listen.tls.key'), 'required key is missing; add key: the path of the PEM private key');
    assert.match(byPath.get('upstream.api.backends[0].address') ?? '', /"backend\.local": missing port/);
    assert.equal(byPath.get('upstream.api.backends[0].weight'), 'expected an integer from 1 to 1000, got 0');
    assert.match(byPath.get('upstream.api.backends[1].id') ?? '', /duplicate backend id "api-1"/);
    assert.match(byPath.get('upstream.api.backends[1].address') ?? '', /must not contain a path/);
    assert.equal(byPath.get('upstream.api.backends[1].protocol'), 'expected one of h2, http1, got "h3"');
    assert.match(byPath.get('log.level') ?? '', /^expected one of trace, .*silence, got "loud"$/);
    assert.equal(byPath.get('log.formt'), 'unknown key "formt"; did you mean format?');
  });

  it('still reports cross-field problems when a field aborted parsing', () => {
    const errors = errorsOf(`${HEAD}      - id: a
        address: h1:1
        weight: 1.5
      - id: a
        address: h1:1
`);
    assert.deepEqual(
      errors.map((e) => e.path),
      ['upstream.api.backends[0].weight', 'upstream.api.backends[1].id', 'upstream.api.backends[1].address'],
    );
  });

  it('rejects version 2 on line 1', () => {
    const errors = errorsOf(`version: 2\n${HEAD}      - id: a\n        address: h:1\n`);
    assert.deepEqual(errors, [
      { path: 'version', line: 1, column: 1, message: 'unsupported config version 2; supported: 1' },
    ]);
  });

  it('reports duplicate ids and duplicate routes with the later occurrence', () => {
    const errors = errorsOf(`${HEAD}      - id: a
        address: h1:1
  other:
    route:
      path_prefix: /api
    backends:
      - id: a
        address: h2:1
`);
    assert.deepEqual(
      errors.map((e) => [e.path, e.line, e.column]),
      [
        ['upstream.other.route', 13, 5],
        ['upstream.other.backends[0].id', 16, 9],
      ],
    );
  });

  it('turns YAML syntax errors into issues with a line', () => {
    const errors = errorsOf('listen:\n  tls: [cert\nupstream: {}\n');
    assert.ok(errors.length >= 1);
    assert.ok(errors.every((e) => e.line !== undefined && e.message.startsWith('YAML: ')));
    const dup = errorsOf('listen: {}\nlisten: {}\n');
    assert.equal(dup[0].line, 2);
    assert.equal(dup[0].message, 'YAML: key "listen" appears twice in the same map; keep one');
  });

  it('handles an empty file and a non-map document', () => {
    assert.deepEqual(errorsOf(''), [
      {
        path: '',
        line: 1,
        column: 1,
        message: 'config.yaml is empty; expected a map with at least listen and upstream',
      },
    ]);
    assert.equal(
      errorsOf('- a\n- b\n')[0].message,
      'expected the file to be a map with at least listen and upstream, got a list',
    );
  });

  it('places missing required keys at the nearest existing parent', () => {
    const errors = errorsOf('listen:\n  port: 443\n');
    assert.deepEqual(
      errors.map((e) => [e.path, e.line, e.column, e.message]),
      [
        [
          'listen.tls',
          1,
          1,
          'required key is missing; add tls: with cert (the PEM certificate chain, leaf first) and key (the PEM private key)',
        ],
        ['upstream', 1, 1, 'required key is missing; add upstream: with at least one pool (name: { backends: [...] })'],
      ],
    );
  });

  it('reports an unreadable file', () => {
    const result = loadConfigFile('/nonexistent/spooky.yaml');
    assert.deepEqual(result, {
      ok: false,
      errors: [{ path: '', message: 'cannot read /nonexistent/spooky.yaml: no such file' }],
      warnings: [],
    });
  });
});

describe('control.* TLS files', () => {
  // Relative names that do not exist in the fixture directory; the listener's files are the seed's.
  const shared = `${readFixture('seed.yaml')}
control:
  listen: { enabled: true, tls: { cert: no-control.crt, key: no-control.key, client_ca: no-ca.crt } }
  server: { enabled: true, address: control.example, tls: { ca: no-ca.crt, cert: no-node.crt, key: no-node.key } }
`;
  const paths = (sides?: Array<'listen' | 'server'>) => {
    const r = loadConfigText(shared, 'shared.yaml', { baseDir: '/nonexistent', controlSides: sides });
    return (r.ok ? [] : r.errors)
      .map((e) => e.path)
      .filter((p) => p.startsWith('control.'))
      .sort();
  };

  it('are checked for the side that reads them: one file can serve spooky-control and every edge host', () => {
    assert.deepEqual(paths(['server']), ['control.server.tls.ca', 'control.server.tls.cert', 'control.server.tls.key']);
    assert.deepEqual(paths(['listen']), [
      'control.listen.tls.cert',
      'control.listen.tls.client_ca',
      'control.listen.tls.key',
    ]);
    assert.deepEqual(paths([]), [], 'an applied config: control.* come from each daemon’s own file');
    assert.equal(paths().length, 6, 'spooky validate checks both');
  });
});

describe('formatIssues', () => {
  it('prints file:line:column: path: message', () => {
    const errors = errorsOf(`${HEAD}      - id: api-1
        address: 10.0.0.1:8080
      - id: api-2
        address: 10.0.0.2:8080
        weight: 0
`);
    assert.equal(
      formatIssues('config.yaml', errors),
      'config.yaml:14:9: upstream.api.backends[1].weight: expected an integer from 1 to 1000, got 0',
    );
    assert.equal(
      formatIssues('c.yaml', [
        { path: '', message: 'cannot read' },
        { path: 'upstream["my pool"]', line: 2, column: 3, message: 'x' },
      ]),
      'c.yaml: cannot read\nc.yaml:2:3: upstream["my pool"]: x',
    );
  });
});

describe('editDistance', () => {
  it('counts transpositions as one edit', () => {
    assert.equal(editDistance('helth_check', 'health_check'), 1);
    assert.equal(editDistance('wieght', 'weight'), 1);
    assert.equal(editDistance('abc', 'abc'), 0);
    assert.equal(editDistance('', 'ab'), 2);
  });
});
