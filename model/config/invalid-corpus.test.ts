// The invalid-config corpus: every file in fixtures/invalid/ is a small, otherwise complete config
// with exactly one mistake (99-five-independent-mistakes.yaml has five, in different sections).
// Each entry pins every reported error (path, line, column, message), so nothing extra may be
// reported and every message stays worded as something a newcomer can act on.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fixturePath } from './fixtures/fixtures.js';
import { type ConfigIssue, loadConfigText } from './load.js';

interface Case {
  file: string;
  errors: ConfigIssue[];
}

const CORPUS_DIR = fixturePath('invalid');

const CASES: Case[] = [
  {
    file: '01-version-2.yaml',
    errors: [
      {
        path: 'version',
        line: 2,
        column: 1,
        message: 'unsupported config version 2; supported: 1',
      },
    ],
  },
  {
    file: '02-version-string.yaml',
    errors: [
      {
        path: 'version',
        line: 2,
        column: 1,
        message: 'expected the number 1 without quotes, got "1"',
      },
    ],
  },
  {
    file: '03-top-level-unknown-near.yaml',
    errors: [
      {
        path: 'observabilty',
        line: 15,
        column: 1,
        message: 'unknown key "observabilty"; did you mean observability?',
      },
    ],
  },
  {
    file: '04-top-level-unknown-far.yaml',
    errors: [
      {
        path: 'frobnicate',
        line: 15,
        column: 1,
        message:
          'unknown key "frobnicate"; expected one of version, listen, upstream, load_balancing, upstream_tls, log, security, observability, performance, resilience, control',
      },
    ],
  },
  {
    file: '05-listen-unknown-key.yaml',
    errors: [
      {
        path: 'listen.adress',
        line: 4,
        column: 3,
        message: 'unknown key "adress"; did you mean address?',
      },
    ],
  },
  {
    file: '06-tls-unknown-key.yaml',
    errors: [
      {
        path: 'listen.tls.client-auth',
        line: 8,
        column: 5,
        message: 'unknown key "client-auth"; did you mean client_auth?',
      },
    ],
  },
  {
    file: '07-client-auth-unknown-key.yaml',
    errors: [
      {
        path: 'listen.tls.client_auth.requir',
        line: 11,
        column: 7,
        message: 'unknown key "requir"; did you mean require?',
      },
    ],
  },
  {
    file: '08-tcp-unknown-key.yaml',
    errors: [
      {
        path: 'listen.tcp.enable',
        line: 9,
        column: 5,
        message: 'unknown key "enable"; did you mean enabled?',
      },
    ],
  },
  {
    file: '09-alt-svc-unknown-key.yaml',
    errors: [
      {
        path: 'listen.alt_svc.maxage',
        line: 9,
        column: 5,
        message: 'unknown key "maxage"; did you mean max_age?',
      },
    ],
  },
  {
    file: '10-pool-unknown-key.yaml',
    errors: [
      {
        path: 'upstream.api.lod_balancing',
        line: 10,
        column: 5,
        message: 'unknown key "lod_balancing"; did you mean load_balancing?',
      },
    ],
  },
  {
    file: '11-route-unknown-key.yaml',
    errors: [
      {
        path: 'upstream.api.route.path_prefx',
        line: 11,
        column: 7,
        message: 'unknown key "path_prefx"; did you mean path_prefix?',
      },
    ],
  },
  {
    file: '12-load-balancing-unknown-key.yaml',
    errors: [
      {
        path: 'upstream.api.load_balancing.tpye',
        line: 11,
        column: 7,
        message: 'unknown key "tpye"; did you mean type?',
      },
    ],
  },
  {
    file: '13-backend-unknown-key.yaml',
    errors: [
      {
        path: 'upstream.api.backends[0].wieght',
        line: 15,
        column: 9,
        message: 'unknown key "wieght"; did you mean weight?',
      },
    ],
  },
  {
    file: '14-backend-unknown-key-far.yaml',
    errors: [
      {
        path: 'upstream.api.backends[0].colour',
        line: 15,
        column: 9,
        message: 'unknown key "colour"; expected one of id, address, protocol, weight, health_check',
      },
    ],
  },
  {
    file: '15-backend-health-check-misspelt.yaml',
    errors: [
      {
        path: 'upstream.api.backends[0].helth_check',
        line: 15,
        column: 9,
        message: 'unknown key "helth_check"; did you mean health_check?',
      },
    ],
  },
  {
    file: '16-health-check-unknown-key.yaml',
    errors: [
      {
        path: 'upstream.api.backends[0].health_check.intervall',
        line: 17,
        column: 11,
        message: 'unknown key "intervall"; did you mean interval?',
      },
    ],
  },
  {
    file: '17-timeouts-unknown-key.yaml',
    errors: [
      {
        path: 'upstream.api.timeouts.backend_timout_ms',
        line: 16,
        column: 7,
        message: 'unknown key "backend_timout_ms"; did you mean backend_timeout_ms?',
      },
    ],
  },
  {
    file: '18-upstream-tls-unknown-key.yaml',
    errors: [
      {
        path: 'upstream_tls.verfy',
        line: 16,
        column: 3,
        message: 'unknown key "verfy"; did you mean verify?',
      },
    ],
  },
  {
    file: '19-log-unknown-key.yaml',
    errors: [
      {
        path: 'log.formt',
        line: 17,
        column: 3,
        message: 'unknown key "formt"; did you mean format?',
      },
    ],
  },
  {
    file: '20-log-file-unknown-key.yaml',
    errors: [
      {
        path: 'log.file.enabeld',
        line: 17,
        column: 5,
        message: 'unknown key "enabeld"; did you mean enabled?',
      },
    ],
  },
  {
    file: '21-security-unknown-key.yaml',
    errors: [
      {
        path: 'security.privilege',
        line: 16,
        column: 3,
        message: 'unknown key "privilege"; did you mean privileges?',
      },
    ],
  },
  {
    file: '22-privileges-unknown-key.yaml',
    errors: [
      {
        path: 'security.privileges.usr',
        line: 17,
        column: 5,
        message: 'unknown key "usr"; did you mean user?',
      },
    ],
  },
  {
    file: '23-observability-unknown-key.yaml',
    errors: [
      {
        path: 'observability.metric',
        line: 16,
        column: 3,
        message: 'unknown key "metric"; did you mean metrics?',
      },
    ],
  },
  {
    file: '24-control-api-unknown-key.yaml',
    errors: [
      {
        path: 'observability.control_api.auth-token',
        line: 17,
        column: 5,
        message: 'unknown key "auth-token"; did you mean auth_token?',
      },
    ],
  },
  {
    file: '25-metrics-unknown-key.yaml',
    errors: [
      {
        path: 'observability.metrics.prot',
        line: 17,
        column: 5,
        message: 'unknown key "prot"; did you mean port?',
      },
    ],
  },
  {
    file: '26-performance-unknown-key.yaml',
    errors: [
      {
        path: 'performance.quic_0_rtt',
        line: 16,
        column: 3,
        message: 'unknown key "quic_0_rtt"; did you mean quic_0rtt?',
      },
    ],
  },
  {
    file: '27-resilience-unknown-key.yaml',
    errors: [
      {
        path: 'resilience.retires',
        line: 16,
        column: 3,
        message: 'unknown key "retires"; did you mean retries?',
      },
    ],
  },
  {
    file: '28-retries-unknown-key.yaml',
    errors: [
      {
        path: 'resilience.retries.attempt',
        line: 17,
        column: 5,
        message: 'unknown key "attempt"; did you mean attempts?',
      },
    ],
  },
  {
    file: '29-circuit-breaker-unknown-key.yaml',
    errors: [
      {
        path: 'resilience.circuit_breaker.half_open_probe',
        line: 17,
        column: 5,
        message: 'unknown key "half_open_probe"; did you mean half_open_probes?',
      },
    ],
  },
  {
    file: '30-brownout-unknown-key.yaml',
    errors: [
      {
        path: 'resilience.brownout.trigger_precent',
        line: 18,
        column: 5,
        message: 'unknown key "trigger_precent"; did you mean trigger_percent?',
      },
    ],
  },
  {
    file: '31-adaptive-admission-unknown-key.yaml',
    errors: [
      {
        path: 'resilience.adaptive_admission.increase_steps',
        line: 18,
        column: 5,
        message: 'unknown key "increase_steps"; did you mean increase_step?',
      },
    ],
  },
  {
    file: '32-control-unknown-key.yaml',
    errors: [
      {
        path: 'control.state-dir',
        line: 16,
        column: 3,
        message: 'unknown key "state-dir"; did you mean state_dir?',
      },
    ],
  },
  {
    file: '33-missing-listen.yaml',
    errors: [
      {
        path: 'listen',
        line: 2,
        column: 1,
        message: 'required key is missing; add listen: with at least tls.cert and tls.key',
      },
    ],
  },
  {
    file: '34-missing-tls-cert.yaml',
    errors: [
      {
        path: 'listen.tls.cert',
        line: 5,
        column: 3,
        message: 'required key is missing; add cert: the path of the PEM certificate chain (leaf first)',
      },
    ],
  },
  {
    file: '35-empty-upstream.yaml',
    errors: [
      {
        path: 'upstream',
        line: 8,
        column: 1,
        message: 'expected at least one pool, got an empty map',
      },
    ],
  },
  {
    file: '36-pool-without-backends.yaml',
    errors: [
      {
        path: 'upstream.api.backends',
        line: 12,
        column: 5,
        message: 'expected at least one backend, got an empty list',
      },
    ],
  },
  {
    file: '37-weight-0.yaml',
    errors: [
      {
        path: 'upstream.api.backends[0].weight',
        line: 15,
        column: 9,
        message: 'expected an integer from 1 to 1000, got 0',
      },
    ],
  },
  {
    file: '38-weight-1001.yaml',
    errors: [
      {
        path: 'upstream.api.backends[0].weight',
        line: 15,
        column: 9,
        message: 'expected an integer from 1 to 1000, got 1001',
      },
    ],
  },
  {
    file: '39-weight-fraction.yaml',
    errors: [
      {
        path: 'upstream.api.backends[0].weight',
        line: 15,
        column: 9,
        message: 'expected an integer from 1 to 1000, got 1.5',
      },
    ],
  },
  {
    file: '40-weight-word.yaml',
    errors: [
      {
        path: 'upstream.api.backends[0].weight',
        line: 15,
        column: 9,
        message: 'expected an integer from 1 to 1000, got "heavy"',
      },
    ],
  },
  {
    file: '41-listen-port-70000.yaml',
    errors: [
      {
        path: 'listen.port',
        line: 4,
        column: 3,
        message: 'expected an integer from 0 to 65535, got 70000',
      },
    ],
  },
  {
    file: '42-listen-address-hostname.yaml',
    errors: [
      {
        path: 'listen.address',
        line: 4,
        column: 3,
        message: 'expected an IPv4 or IPv6 address literal such as 0.0.0.0 or ::, got "localhost"',
      },
    ],
  },
  {
    file: '43-backend-address-path.yaml',
    errors: [
      {
        path: 'upstream.api.backends[0].address',
        line: 14,
        column: 9,
        message: 'invalid backend address "https://10.0.0.1:8443/api": must not contain a path',
      },
    ],
  },
  {
    file: '44-backend-address-ftp.yaml',
    errors: [
      {
        path: 'upstream.api.backends[0].address',
        line: 14,
        column: 9,
        message:
          'invalid backend address "ftp://10.0.0.1:21": unsupported scheme ftp:// (use host:port, https://host[:port] or http://host[:port])',
      },
    ],
  },
  {
    file: '45-backend-address-empty.yaml',
    errors: [
      {
        path: 'upstream.api.backends[0].address',
        line: 14,
        column: 9,
        message:
          'invalid backend address "": empty backend address (use host:port, https://host[:port] or http://host[:port])',
      },
    ],
  },
  {
    file: '46-duplicate-backend-id.yaml',
    errors: [
      {
        path: 'upstream.web.backends[0].id',
        line: 17,
        column: 9,
        message: 'duplicate backend id "api-1", already used at upstream.api.backends[0]',
      },
    ],
  },
  {
    file: '47-duplicate-origin-in-pool.yaml',
    errors: [
      {
        path: 'upstream.api.backends[1].address',
        line: 16,
        column: 9,
        message:
          'backend origin https://10.0.0.1:443 appears twice in pool api, already used at upstream.api.backends[0]',
      },
    ],
  },
  {
    file: '48-identical-routes.yaml',
    errors: [
      {
        path: 'upstream.api-v2.route',
        line: 16,
        column: 5,
        message: 'route (any host, path_prefix "/api") is identical to the route of pool api',
      },
    ],
  },
  {
    file: '49-path-prefix-no-slash.yaml',
    errors: [
      {
        path: 'upstream.api.route.path_prefix',
        line: 11,
        column: 7,
        message: "expected a path prefix starting with '/' without spaces, '?' or '#', got \"api\"",
      },
    ],
  },
  {
    file: '50-route-host-with-port.yaml',
    errors: [
      {
        path: 'upstream.api.route.host',
        line: 11,
        column: 7,
        message: 'invalid route host "api.example.com:443": must not include a port (ports are ignored when matching)',
      },
    ],
  },
  {
    file: '51-lb-type-underscore.yaml',
    errors: [
      {
        path: 'upstream.api.load_balancing.type',
        line: 11,
        column: 7,
        message:
          'expected one of round-robin, random, least-connections, consistent-hash, latency-aware, sticky-cid, got "round_robin"; did you mean round-robin?',
      },
    ],
  },
  {
    file: '52-lb-key-without-hash.yaml',
    errors: [
      {
        path: 'upstream.api.load_balancing.key',
        line: 12,
        column: 7,
        message: 'key is only used by the consistent-hash policy, but type is least-connections',
      },
    ],
  },
  {
    file: '53-lb-bad-hash-key.yaml',
    errors: [
      {
        path: 'upstream.api.load_balancing.key',
        line: 12,
        column: 7,
        message: 'expected authority, path, client_ip, header:NAME, cookie:NAME or query:NAME, got "source_ip"',
      },
    ],
  },
  {
    file: '54-health-timeout-not-below-interval.yaml',
    errors: [
      {
        path: 'upstream.api.backends[0].health_check.timeout_ms',
        line: 17,
        column: 11,
        message: 'expected timeout_ms below interval (2000 ms), got 2000',
      },
    ],
  },
  {
    file: '55-health-expected-status.yaml',
    errors: [
      {
        path: 'upstream.api.backends[0].health_check.expected_status',
        line: 16,
        column: 11,
        message: 'expected a status such as 200, 2xx, 200-399 or a comma-separated list of those, got "2XX-3XX"',
      },
    ],
  },
  {
    file: '56-log-level-unknown.yaml',
    errors: [
      {
        path: 'log.level',
        line: 16,
        column: 3,
        message:
          'expected one of trace, debug, info, warn, error, off, whisper, haunt, spooky, scream, poltergeist, silence, got "verbose"',
      },
    ],
  },
  {
    file: '57-log-file-without-path.yaml',
    errors: [
      {
        path: 'log.file.path',
        line: 16,
        column: 3,
        message: 'required key is missing: file logging is enabled, so set path (or enabled: false)',
      },
    ],
  },
  {
    file: '58-control-api-public-no-token.yaml',
    errors: [
      {
        path: 'observability.control_api.address',
        line: 17,
        column: 5,
        message: 'control API on non-loopback address 0.0.0.0 requires auth_token or auth_token_file',
      },
    ],
  },
  {
    file: '59-control-api-two-tokens.yaml',
    errors: [
      {
        path: 'observability.control_api.auth_token',
        line: 17,
        column: 5,
        message: 'set auth_token or auth_token_file, not both',
      },
    ],
  },
  {
    file: '60-client-auth-without-ca.yaml',
    errors: [
      {
        path: 'listen.tls.client_auth.ca_file',
        line: 8,
        column: 5,
        message:
          'required key is missing: client_auth is enabled, so set ca_file to the PEM bundle of CAs that issue client certificates',
      },
    ],
  },
  {
    file: '61-upstream-tls-cert-without-key.yaml',
    errors: [
      {
        path: 'upstream_tls.client_cert',
        line: 16,
        column: 3,
        message: 'client_cert and client_key go together; add client_key too',
      },
    ],
  },
  {
    file: '62-brownout-recover-not-below-trigger.yaml',
    errors: [
      {
        path: 'resilience.brownout.recover_percent',
        line: 19,
        column: 5,
        message: 'expected recover_percent below trigger_percent (80), got 85',
      },
    ],
  },
  {
    file: '63-adaptive-min-above-max.yaml',
    errors: [
      {
        path: 'resilience.adaptive_admission.min_limit',
        line: 18,
        column: 5,
        message: 'expected min_limit at most max_limit (100), got 500',
      },
    ],
  },
  {
    file: '64-retries-unknown-condition.yaml',
    errors: [
      {
        path: 'resilience.retries.on[1]',
        line: 17,
        column: 27,
        message: 'expected one of connect-failure, refused-stream, reset-before-response, got "timeout"',
      },
    ],
  },
  {
    file: '65-quic-cc-unknown.yaml',
    errors: [
      {
        path: 'performance.quic_cc_algorithm',
        line: 16,
        column: 3,
        message: 'expected one of reno, cubic, bbr, got "vegas"',
      },
    ],
  },
  {
    file: '66-yaml-bad-indentation.yaml',
    errors: [
      {
        path: '',
        line: 4,
        column: 9,
        message:
          'YAML: the next line is indented deeper than this key, so it reads as part of this value; keys of one map start at the same column',
      },
    ],
  },
  {
    file: '67-yaml-unclosed-quote.yaml',
    errors: [
      {
        path: '',
        line: 14,
        column: 18,
        message: 'YAML: this string has no closing "; add it at the end of the value',
      },
    ],
  },
  {
    file: '68-yaml-duplicate-key.yaml',
    errors: [
      {
        path: '',
        line: 16,
        column: 9,
        message: 'YAML: key "weight" appears twice in the same map; keep one',
      },
    ],
  },
  {
    file: '69-empty-file.yaml',
    errors: [
      {
        path: '',
        line: 1,
        column: 1,
        message: '69-empty-file.yaml is empty; expected a map with at least listen and upstream',
      },
    ],
  },
  {
    file: '70-top-level-list.yaml',
    errors: [
      {
        path: '',
        line: 2,
        column: 1,
        message: 'expected the file to be a map with at least listen and upstream, got a list',
      },
    ],
  },
  {
    file: '71-top-level-near-miss-required.yaml',
    errors: [
      {
        path: 'upstreams',
        line: 8,
        column: 1,
        message: 'unknown key "upstreams"; did you mean upstream?',
      },
    ],
  },
  {
    file: '72-backend-missing-address.yaml',
    errors: [
      {
        path: 'upstream.api.backends[0].address',
        line: 13,
        column: 9,
        message:
          'required key is missing; expected a backend address (use host:port, https://host[:port] or http://host[:port])',
      },
    ],
  },
  {
    file: '73-backend-protocol-h3.yaml',
    errors: [
      {
        path: 'upstream.api.backends[0].protocol',
        line: 15,
        column: 9,
        message: 'expected one of h2, http1, got "h3"',
      },
    ],
  },
  {
    file: '74-bool-as-word.yaml',
    errors: [
      {
        path: 'security.privileges.enabled',
        line: 17,
        column: 5,
        message: 'expected true or false, got "yes"',
      },
    ],
  },
  {
    file: '75-yaml-dedented-key.yaml',
    errors: [
      {
        path: '',
        line: 7,
        column: 1,
        message:
          'YAML: this line is indented differently from the keys next to it; keys of one map start at the same column',
      },
    ],
  },
  {
    file: '76-yaml-tab-indent.yaml',
    errors: [
      {
        path: '',
        line: 7,
        column: 1,
        message: 'YAML: a tab is used for indentation; YAML allows spaces only',
      },
    ],
  },
  {
    file: '77-brownout-unknown-core-route.yaml',
    errors: [
      {
        path: 'resilience.brownout.core_routes[1]',
        line: 18,
        column: 24,
        message: 'unknown pool "/checkout" (pools: api)',
      },
    ],
  },
  {
    file: '99-five-independent-mistakes.yaml',
    errors: [
      {
        path: 'listen.port',
        line: 4,
        column: 3,
        message: 'expected an integer from 0 to 65535, got 70000',
      },
      {
        path: 'upstream.api.load_balancing.key',
        line: 12,
        column: 7,
        message: 'expected authority, path, client_ip, header:NAME, cookie:NAME or query:NAME, got "source_ip"',
      },
      {
        path: 'log.level',
        line: 19,
        column: 3,
        message:
          'expected one of trace, debug, info, warn, error, off, whisper, haunt, spooky, scream, poltergeist, silence, got "verbose"',
      },
      {
        path: 'observability.metrics.prot',
        line: 22,
        column: 5,
        message: 'unknown key "prot"; did you mean port?',
      },
      {
        path: 'resilience.brownout.recover_percent',
        line: 27,
        column: 5,
        message: 'expected recover_percent below trigger_percent (80), got 85',
      },
    ],
  },
];

function errorsOf(file: string): ConfigIssue[] {
  const result = loadConfigText(readFileSync(join(CORPUS_DIR, file), 'utf8'), file);
  assert.equal(result.ok, false, `${file} should be rejected`);
  return result.ok ? [] : result.errors;
}

describe('invalid config corpus', () => {
  for (const { file, errors } of CASES) {
    it(file, () => {
      assert.deepEqual(errorsOf(file), errors);
    });
  }

  it('reports each of the five independent mistakes once, one per top-level section', () => {
    const sections = errorsOf('99-five-independent-mistakes.yaml').map((e) => e.path.split(/[.[]/)[0]);
    assert.deepEqual(sections, ['listen', 'upstream', 'log', 'observability', 'resilience']);
  });

  it('has a table entry for every fixture file and a fixture file for every entry', () => {
    const files = readdirSync(CORPUS_DIR).sort();
    const listed = CASES.map((c) => c.file);
    assert.ok(files.length >= 40, `expected at least 40 fixtures in ${CORPUS_DIR}, found ${files.length}`);
    assert.equal(new Set(listed).size, listed.length, 'a fixture is listed twice');
    assert.deepEqual(
      files.filter((name) => !listed.includes(name)),
      [],
      'fixtures without a table entry',
    );
    assert.deepEqual(
      listed.filter((name) => !files.includes(name)),
      [],
      'table entries without a fixture',
    );
  });
});
