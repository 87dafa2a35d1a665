import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigSchema, parseBackendAddress } from './schema.js';

const minimal = () => ({
  listen: { tls: { cert: 'cert.pem', key: 'key.pem' } },
  upstream: { app: { backends: [{ id: 'app-1', address: '127.0.0.1:8080' }] } },
});

function messages(input: unknown): string[] {
  const result = ConfigSchema.safeParse(input);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('parseBackendAddress', () => {
  it('parses the accepted forms', () => {
    assert.deepEqual(parseBackendAddress('10.0.10.10:8080'), {
      tls: true,
      host: '10.0.10.10',
      port: 8080,
      origin: 'https://10.0.10.10:8080',
    });
    assert.deepEqual(parseBackendAddress('https://API.internal'), {
      tls: true,
      host: 'api.internal',
      port: 443,
      origin: 'https://api.internal:443',
    });
    assert.deepEqual(parseBackendAddress('http://api.internal'), {
      tls: false,
      host: 'api.internal',
      port: 80,
      origin: 'http://api.internal:80',
    });
    assert.deepEqual(parseBackendAddress('HTTP://api.internal:8081/'), {
      tls: false,
      host: 'api.internal',
      port: 8081,
      origin: 'http://api.internal:8081',
    });
    assert.deepEqual(parseBackendAddress('[::1]:8443'), {
      tls: true,
      host: '::1',
      port: 8443,
      origin: 'https://[::1]:8443',
    });
    assert.deepEqual(parseBackendAddress('https://[0:0::1]'), {
      tls: true,
      host: '::1',
      port: 443,
      origin: 'https://[::1]:443',
    });
  });

  it('rejects malformed addresses with a reason', () => {
    const cases: [string, RegExp][] = [
      ['backend.local', /missing port/],
      ['ftp://backend.local', /unsupported scheme ftp:\/\//],
      ['unix:///run/app.sock', /unsupported scheme/],
      ['https://backend.local/api', /must not contain a path/],
      ['http://backend.local?x=1', /must not contain a query/],
      ['backend.local:8080/x', /must not contain a path/],
      ['https://user@backend.local', /credentials/],
      ['backend.local:0', /port 0 out of range 1-65535/],
      ['backend.local:65536', /port 65536 out of range/],
      ['backend.local:http', /invalid port "http"/],
      ['backend.local:', /invalid port ""/],
      ['::1:8443', /IPv6 addresses must be in brackets/],
      ['[::1', /missing \]/],
      ['[not-v6]:80', /invalid IPv6 address/],
      ['999.1.1.1:80', /invalid IPv4 address/],
      ['bad_host!:80', /invalid host name/],
      ['', /empty backend address/],
      ['a b:80', /whitespace/],
    ];
    for (const [address, reason] of cases) {
      assert.throws(() => parseBackendAddress(address), reason, address);
    }
  });
});

describe('ConfigSchema', () => {
  it('applies documented defaults to a minimal config', () => {
    const config = ConfigSchema.parse(minimal());
    assert.equal(config.version, 1);
    assert.deepEqual(config.listen, {
      protocol: 'http3',
      address: '0.0.0.0',
      port: 9889,
      tls: { cert: 'cert.pem', key: 'key.pem', client_auth: { enabled: false, require: true } },
      tcp: { enabled: true },
      alt_svc: { enabled: true, max_age: 86_400 },
    });
    assert.deepEqual(config.upstream_tls, { verify: true });
    assert.deepEqual(config.resilience, {
      retries: { attempts: 1, on: ['connect-failure', 'refused-stream', 'reset-before-response'], budget_percent: 20 },
      circuit_breaker: { enabled: true, consecutive_failures: 5, open_ms: 10_000, half_open_probes: 1 },
      brownout: { enabled: false, trigger_percent: 90, recover_percent: 75, shed_percent: 10, core_routes: [] },
      adaptive_admission: {
        enabled: false,
        min_limit: 64,
        max_limit: 4096,
        increase_step: 8,
        decrease_percent: 10,
        high_latency_ms: 500,
      },
    });
    const pool = config.upstream.app;
    assert.deepEqual(pool.route, { path_prefix: '/' });
    assert.deepEqual(pool.backends[0], { id: 'app-1', address: '127.0.0.1:8080', protocol: 'h2', weight: 100 });
    assert.deepEqual(config.log, { level: 'info', format: 'plain', access_log: true });
    assert.deepEqual(config.security, { privileges: { enabled: true, user: 'spooky', group: 'spooky' } });
    assert.deepEqual(config.observability, {
      control_api: { enabled: true, address: '127.0.0.1', port: 9902 },
      metrics: { enabled: true, address: '127.0.0.1', port: 9090, path: '/metrics' },
    });
    assert.deepEqual(config.control, {
      socket: '/run/spooky/control.sock',
      state_dir: '/var/lib/spooky',
      // The fleet's TCP control connection is off on both sides unless asked for.
      listen: { enabled: false, address: '0.0.0.0', port: 9903 },
      server: { enabled: false, port: 9903 },
    });
    assert.equal(config.performance.quic_cc_algorithm, 'cubic');
    assert.equal(config.performance.max_request_body_bytes, 104_857_600);
  });

  it('fills health check defaults', () => {
    const input = minimal();
    Object.assign(input.upstream.app.backends[0], { health_check: {} });
    const hc = ConfigSchema.parse(input).upstream.app.backends[0].health_check;
    assert.deepEqual(hc, {
      path: '/health',
      interval: 5000,
      timeout_ms: 1000,
      failure_threshold: 3,
      success_threshold: 2,
      cooldown_ms: 5000,
      method: 'GET',
      expected_status: '2xx',
    });
  });

  it('rejects unsupported versions and lists the supported ones', () => {
    assert.deepEqual(messages({ ...minimal(), version: 2 }), ['version: unsupported config version 2; supported: 1']);
    assert.deepEqual(messages({ ...minimal(), version: 1 }), []);
  });

  it('accepts port 0 for listeners and rejects out-of-range ports', () => {
    assert.equal(
      ConfigSchema.parse({ ...minimal(), listen: { port: 0, tls: { cert: 'c', key: 'k' } } }).listen.port,
      0,
    );
    assert.match(messages({ ...minimal(), listen: { port: 65536, tls: { cert: 'c', key: 'k' } } })[0], /0 to 65535/);
    assert.match(messages({ ...minimal(), listen: { address: 'localhost', tls: { cert: 'c', key: 'k' } } })[0], /IPv4/);
    assert.deepEqual(messages({ ...minimal(), listen: { address: '::', tls: { cert: 'c', key: 'k' } } }), []);
  });

  it('accepts theme aliases for log levels', () => {
    assert.equal(ConfigSchema.parse({ ...minimal(), log: { level: 'poltergeist' } }).log.level, 'poltergeist');
  });

  it('enforces health check timeout below interval', () => {
    const input = minimal();
    Object.assign(input.upstream.app.backends[0], { health_check: { interval: 1000, timeout_ms: 1000 } });
    assert.deepEqual(messages(input), [
      'upstream.app.backends.0.health_check.timeout_ms: expected timeout_ms below interval (1000 ms), got 1000',
    ]);
  });

  it('derives the health check timeout from a short interval instead of refusing it', () => {
    const hc = (health_check: Record<string, unknown>) => {
      const input = minimal();
      Object.assign(input.upstream.app.backends[0], { health_check });
      return ConfigSchema.parse(input).upstream.app.backends[0].health_check;
    };
    assert.equal(hc({ interval: 500 })?.timeout_ms, 250);
    assert.equal(hc({ interval: 100 })?.timeout_ms, 50);
    assert.equal(hc({ interval: 2000 })?.timeout_ms, 1000);
    assert.equal(hc({ interval: 60_000 })?.timeout_ms, 1000);
    // What the operator wrote is kept, and still checked.
    assert.equal(hc({ interval: 500, timeout_ms: 400 })?.timeout_ms, 400);
  });

  it('rejects duplicate backend ids across pools and duplicate origins within a pool', () => {
    const input = {
      ...minimal(),
      upstream: {
        a: {
          route: { path_prefix: '/a' },
          backends: [
            { id: 'x', address: 'https://h.internal' },
            { id: 'y', address: 'h.internal:443' },
          ],
        },
        b: { backends: [{ id: 'x', address: 'h.internal:443' }] },
      },
    };
    assert.deepEqual(messages(input), [
      'upstream.a.backends.1.address: backend origin https://h.internal:443 appears twice in pool a, ' +
        'already used at upstream.a.backends[0]',
      'upstream.b.backends.0.id: duplicate backend id "x", already used at upstream.a.backends[0]',
    ]);
  });

  it('refuses a path prefix that can never match a normalised request path, accepts the rest', () => {
    const withPrefix = (path_prefix: string) =>
      messages({
        ...minimal(),
        upstream: { app: { route: { path_prefix }, backends: [{ id: 'a', address: 'h:1' }] } },
      });
    assert.deepEqual(withPrefix('/a/../admin/'), [
      'upstream.app.route.path_prefix: path prefix "/a/../admin/" can never match: requests are routed on their normalised path, where it reads "/admin/"; write that instead',
    ]);
    assert.match(withPrefix('/./api')[0], /where it reads "\/api"/);
    assert.match(withPrefix('/%7Euser/')[0], /where it reads "\/~user\/"/);
    assert.match(withPrefix('/%zz')[0], /can never match: malformed percent-encoding/);
    assert.match(withPrefix('/../x')[0], /can never match: path climbs above the root/);
    for (const ok of ['/', '/api', '/api/', '/a/..', '/.well-known/', '/a%2Fb', '/~user/']) {
      assert.deepEqual(withPrefix(ok), [], ok);
    }
  });

  it('rejects identical routes after host normalisation', () => {
    const backends = (id: string) => [{ id, address: 'h:1' }];
    const msgs = messages({
      ...minimal(),
      upstream: {
        a: { route: { host: 'Example.com' }, backends: backends('a1') },
        b: { route: { host: 'example.com.', path_prefix: '/' }, backends: backends('b1') },
        c: { backends: backends('c1') },
        d: { route: { path_prefix: '/' }, backends: backends('d1') },
        e: { route: { host: '*.example.com' }, backends: backends('e1') },
      },
    });
    assert.equal(msgs.length, 2);
    assert.match(
      msgs[0],
      /^upstream\.b\.route: route \(host "example\.com\.", path_prefix "\/"\) is identical .* pool a$/,
    );
    assert.match(msgs[1], /^upstream\.d\.route: route \(any host, path_prefix "\/"\) is identical .* pool c$/);
  });

  it('validates route hosts and prefixes', () => {
    const withRoute = (route: unknown) =>
      messages({ ...minimal(), upstream: { a: { route, backends: [{ id: 'a', address: 'h:1' }] } } });
    assert.deepEqual(withRoute({ host: '*.example.com', path_prefix: '/api' }), []);
    assert.deepEqual(withRoute({ host: '[::1]' }), []);
    assert.match(withRoute({ host: 'a.*.example.com' })[0], /wildcard must be the whole first label/);
    assert.match(withRoute({ host: 'example.com:443' })[0], /must not include a port/);
    assert.match(withRoute({ path_prefix: 'api' })[0], /starting with '\/'/);
    assert.match(withRoute({ path_prefix: '/api?x' })[0], /without spaces, '\?' or '#'/);
  });

  it('rejects unknown keys everywhere and empty upstream / backends', () => {
    const codes = (input: unknown) => {
      const r = ConfigSchema.safeParse(input);
      return r.success ? [] : r.error.issues.map((i) => i.code);
    };
    assert.deepEqual(codes({ ...minimal(), extra: 1 }), ['unrecognized_keys']);
    assert.deepEqual(codes({ ...minimal(), performance: { quic_foo: 1 } }), ['unrecognized_keys']);
    assert.match(messages({ ...minimal(), upstream: {} })[0], /expected at least one pool/);
    assert.match(messages({ ...minimal(), upstream: { a: { backends: [] } } })[0], /expected at least one backend/);
  });

  it('only allows a hash key with consistent-hash', () => {
    const withLb = (load_balancing: unknown) => messages({ ...minimal(), load_balancing });
    assert.deepEqual(withLb({ type: 'consistent-hash', key: 'header:x-user' }), []);
    assert.match(withLb({ type: 'round-robin', key: 'path' })[0], /only used by the consistent-hash policy/);
    assert.match(withLb({ type: 'consistent-hash', key: 'body' })[0], /header:NAME/);
    assert.match(withLb({ type: 'fastest' })[0], /expected one of round-robin, random/);
  });

  it('requires a control API token off loopback', () => {
    const api = (control_api: unknown) => messages({ ...minimal(), observability: { control_api } });
    assert.match(api({ address: '0.0.0.0' })[0], /requires auth_token or auth_token_file/);
    assert.deepEqual(api({ address: '0.0.0.0', auth_token_file: '/etc/spooky/token' }), []);
    assert.deepEqual(api({ address: '::1' }), []);
    assert.match(api({ auth_token: 'x'.repeat(16), auth_token_file: '/t' })[0], /not both/);
  });

  it('control.listen and control.server need their TLS files (and server its address) only when enabled', () => {
    const control = (c: unknown) => messages({ ...minimal(), control: c });
    assert.deepEqual(control({ listen: { enabled: false }, server: { enabled: false } }), []);
    assert.match(control({ listen: { enabled: true } })[0], /control\.listen is enabled, so set tls/);
    assert.match(control({ listen: { enabled: true, tls: { cert: 'c', key: 'k' } } })[0], /client_ca/);
    const tls = { ca: 'ca', cert: 'c', key: 'k' };
    assert.match(control({ server: { enabled: true, tls } })[0], /control\.server is enabled, so set address/);
    assert.deepEqual(control({ server: { enabled: true, address: 'control.example', tls } }), []);
    assert.deepEqual(control({ server: { enabled: true, address: 'fd00::5', tls } }), []);
    assert.match(control({ server: { enabled: true, address: 'control.example:9903', tls } })[0], /without a port/);
    assert.match(control({ server: { enabled: true, address: 'a b', tls } })[0], /expected a host name/);
    assert.match(control({ server: { port: 0 } })[0], /from 1 to 65535/);
    assert.match(control({ listen: { address: 'localhost' } })[0], /IPv4 or IPv6 address literal/);
  });
});
