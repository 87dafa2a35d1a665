// Every key of deploy/examples/reference.yaml and the evidence that the build honours it: a test
// that exercises what the setting does (not one that only parses it), or a value the build
// refuses at validation. settings-coverage.test.ts holds the table to the reference file, so a
// new key without evidence fails, and so does a stale entry. Paths are `upstream.NAME.x[].y`.

export type SettingEvidence =
  /**
   * A test (file relative to the repository root) whose title contains `title`, and which
   * mentions the key's last path segment, in itself or in one of the `via` files it uses.
   */
  | { test: string; title: string; via?: string[] }
  /** Setting the key to `refused` in the reference config fails validation with `message`. */
  | { refused: unknown; message: RegExp }
  /** Built right now by another part of the issue; its test is named after the merge. */
  | { pending: string }
  /** Nothing proves the key does something yet: what test is needed. */
  | { untested: string };

const HARNESS = 'e2e/support/harness.ts';
const PAIR = 'e2e/support/pair.ts';

const LIMITS = 'e2e/traffic.test.ts';
const HOSTILE = 'e2e/hostile-clients.test.ts';
const FAIRNESS = 'e2e/attack-connection-fairness.test.ts';
const SETTINGS = 'e2e/settings.test.ts';
const LOGS = 'e2e/settings-logs.test.ts';
const CONTROL = 'e2e/settings-control.test.ts';
const RESILIENCE = 'e2e/settings-resilience.test.ts';

const FLEET = 'e2e/fleet.test.ts';
const FLEET_CONFIGS = 'e2e/support/fleet.ts';
const fleetApply = { test: FLEET, title: 'an apply is ACKed by all five', via: [FLEET_CONFIGS] };
const fleetRefused = {
  test: FLEET,
  title: 'a data plane without a certificate from the fleet CA is refused',
  via: [FLEET_CONFIGS],
};

const OVERLOAD = 'e2e/overload.test.ts';
const adaptiveShed = {
  test: OVERLOAD,
  title: 'adaptive admission: above the limit requests get 503 adaptive_admission',
};
const adaptiveGrow = { test: OVERLOAD, title: 'fast answers grow it back' };
const brownout = { test: OVERLOAD, title: 'brownout: the non-core pool gets 503 brownout' };

export const SETTINGS_COVERAGE: Record<string, SettingEvidence> = {
  version: { refused: 2, message: /unsupported config version 2; supported: 1/ },

  // listen
  'listen.protocol': { refused: 'h2', message: /expected http3 \(the only listener protocol\)/ },
  'listen.address': { test: SETTINGS, title: 'listen.address and listen.tcp.enabled' },
  'listen.port': { test: 'e2e/lifecycle.test.ts', title: 'says clearly when the port is taken' },
  'listen.tls.cert': {
    test: 'e2e/mtls.test.ts',
    title: 'lets a valid certificate through on both protocols',
    via: [HARNESS],
  },
  'listen.tls.key': {
    test: 'e2e/mtls.test.ts',
    title: 'lets a valid certificate through on both protocols',
    via: [HARNESS],
  },
  'listen.tls.client_auth.enabled': { test: 'e2e/mtls.test.ts', title: 'refuses a client without a certificate' },
  'listen.tls.client_auth.ca_file': { test: 'e2e/mtls.test.ts', title: 'refuses a certificate from another CA' },
  // true is acted on (the default, which the mTLS tests run with); false is refused at start.
  'listen.tls.client_auth.require': {
    test: 'e2e/lifecycle.test.ts',
    title: 'refuses a missing certificate and optional mTLS',
  },
  'listen.tcp.enabled': { test: SETTINGS, title: 'listen.address and listen.tcp.enabled' },
  'listen.alt_svc.enabled': { test: 'e2e/proxy.test.ts', title: 'advertises the alt-svc port and max_age' },
  'listen.alt_svc.port': { test: 'e2e/proxy.test.ts', title: 'advertises the alt-svc port and max_age' },
  'listen.alt_svc.max_age': { test: 'e2e/proxy.test.ts', title: 'advertises the alt-svc port and max_age' },

  'load_balancing.type': { test: SETTINGS, title: 'load_balancing.type is the fallback of pools' },

  // upstream pools
  'upstream.NAME.route.host': { test: 'e2e/hostile.test.ts', title: 'answers 404 when no route matches' },
  'upstream.NAME.route.path_prefix': { test: 'e2e/proxy.test.ts', title: 'routes / and /api/x to their pools' },
  'upstream.NAME.load_balancing.type': { test: LIMITS, title: 'sticky-cid: one QUIC connection sticks to one backend' },
  'upstream.NAME.load_balancing.key': { test: SETTINGS, title: 'consistent-hash on header:NAME' },
  'upstream.NAME.timeouts.backend_connect_timeout_ms': {
    test: SETTINGS,
    title: 'backend_connect_timeout_ms: a backend that never finishes TLS',
  },
  'upstream.NAME.timeouts.backend_timeout_ms': { test: 'e2e/proxy.test.ts', title: '504 for a silent one' },
  'upstream.NAME.timeouts.backend_idle_timeout_ms': {
    test: HOSTILE,
    title: 'slow reader (4 × GET /bytes/64 MiB never read)',
  },
  'upstream.NAME.backends[].id': { test: LIMITS, title: 'takes a stopped backend out within interval' },
  'upstream.NAME.backends[].address': { test: 'e2e/upstream.test.ts', title: 'reaches https://host:port and bare' },
  'upstream.NAME.backends[].protocol': { test: LIMITS, title: 'serve GET, a 5 MiB POST and chunked responses' },
  'upstream.NAME.backends[].weight': { test: SETTINGS, title: 'weight: 1:3 round-robin' },
  'upstream.NAME.backends[].health_check.path': { test: LIMITS, title: 'takes a stopped backend out within interval' },
  'upstream.NAME.backends[].health_check.method': {
    test: CONTROL,
    title: 'health_check method, expected_status and timeout_ms decide',
  },
  'upstream.NAME.backends[].health_check.expected_status': {
    test: CONTROL,
    title: 'health_check method, expected_status and timeout_ms decide',
  },
  'upstream.NAME.backends[].health_check.interval': {
    test: LIMITS,
    title: 'takes a stopped backend out within interval',
  },
  'upstream.NAME.backends[].health_check.timeout_ms': {
    test: CONTROL,
    title: 'health_check method, expected_status and timeout_ms decide',
  },
  'upstream.NAME.backends[].health_check.failure_threshold': {
    test: LIMITS,
    title: 'takes a stopped backend out within interval',
  },
  'upstream.NAME.backends[].health_check.success_threshold': {
    test: LIMITS,
    title: 'takes a stopped backend out within interval',
  },
  'upstream.NAME.backends[].health_check.cooldown_ms': {
    test: LIMITS,
    title: 'takes a stopped backend out within interval',
  },

  // upstream_tls
  'upstream_tls.verify': { test: SETTINGS, title: 'upstream_tls: verify false accepts' },
  'upstream_tls.ca_file': { test: 'e2e/upstream.test.ts', title: 'reaches https://host:port and bare' },
  'upstream_tls.server_name': { test: SETTINGS, title: 'server_name is the name verified' },
  'upstream_tls.client_cert': { test: SETTINGS, title: 'upstream_tls client_cert and client_key' },
  'upstream_tls.client_key': { test: SETTINGS, title: 'upstream_tls client_cert and client_key' },

  // log
  'log.level': { test: LOGS, title: 'log: plain lines, nothing below log.level' },
  'log.format': { test: LOGS, title: 'log: plain lines, nothing below log.level' },
  'log.access_log': { test: LOGS, title: 'access lines only with access_log' },
  'log.file.enabled': { test: LOGS, title: 'log.file.enabled false' },
  'log.file.path': { test: 'e2e/lifecycle.test.ts', title: 'writes its log to log.file when configured' },

  // security
  'security.privileges.enabled': { test: 'e2e/privileges.test.ts', title: 'binds a port below 1024 as root' },
  'security.privileges.user': { test: 'e2e/privileges.test.ts', title: 'binds a port below 1024 as root' },
  'security.privileges.group': { test: 'e2e/privileges.test.ts', title: 'binds a port below 1024 as root' },

  // observability
  'observability.control_api.enabled': {
    test: CONTROL,
    title: 'control_api.enabled false: nothing listens on its port',
  },
  'observability.control_api.address': {
    test: CONTROL,
    title: 'metrics on the address, port and path configured; the control API on its address',
  },
  'observability.control_api.port': {
    test: 'e2e/control.test.ts',
    title: 'refuses API calls without a token or with a wrong one',
    via: [PAIR],
  },
  'observability.control_api.auth_token_file': {
    test: 'controlplane/api/auth.test.ts',
    title: 'auth_token_file is read and trimmed',
  },
  'observability.metrics.enabled': {
    test: 'e2e/metrics.test.ts',
    title: 'serves the control plane’s and the data plane’s series, merged',
  },
  'observability.metrics.address': {
    test: CONTROL,
    title: 'metrics on the address, port and path configured; the control API on its address',
  },
  'observability.metrics.port': {
    test: 'e2e/metrics.test.ts',
    title: 'serves the control plane’s and the data plane’s series, merged',
  },
  'observability.metrics.path': {
    test: CONTROL,
    title: 'metrics on the address, port and path configured; the control API on its address',
  },

  // performance
  'performance.quic_max_idle_timeout_ms': {
    test: 'e2e/lifecycle.test.ts',
    title: 'closes idle connections after quic_max_idle_timeout_ms',
  },
  'performance.quic_initial_max_data': { test: SETTINGS, title: 'reach the client as transport parameters' },
  'performance.quic_initial_max_stream_data': { test: SETTINGS, title: 'reach the client as transport parameters' },
  'performance.quic_initial_max_streams_bidi': { test: SETTINGS, title: 'reach the client as transport parameters' },
  'performance.quic_initial_max_streams_uni': { test: SETTINGS, title: 'reach the client as transport parameters' },
  'performance.quic_cc_algorithm': {
    test: 'dataplane/quic/congestion-control.test.ts',
    title: 'reaches quiche: after the same transfer BBR leaves a far smaller congestion window',
  },
  'performance.quic_retry': { test: 'e2e/attack-quic-retry.test.ts', title: 'answers an Initial without a token' },
  'performance.quic_0rtt': { test: 'e2e/zero-rtt.test.ts', title: 'with quic_0rtt false no early data is accepted' },
  'performance.early_data_methods': {
    test: 'e2e/zero-rtt.test.ts',
    title: 'early_data_methods narrowed to GET by an apply',
  },
  'performance.new_connections_per_sec': { test: HOSTILE, title: 'Initial flood beyond the token bucket' },
  'performance.new_connections_burst': { test: HOSTILE, title: 'Initial flood beyond the token bucket' },
  'performance.max_active_connections': { test: SETTINGS, title: 'max_active_connections: past the cap' },
  'performance.per_source_max_connections': {
    test: FAIRNESS,
    title: 'idle TCP connections and an Initial flood from',
  },
  'performance.per_source_new_connections_per_sec': {
    test: SETTINGS,
    title: 'per_source_new_connections_burst',
  },
  'performance.per_source_new_connections_burst': { test: SETTINGS, title: 'per_source_new_connections_burst' },
  'performance.workers': { test: 'e2e/workers.test.ts', title: 'max_active_connections: 6 over 2 workers' },
  'performance.tls_handshake_timeout_ms': {
    test: FAIRNESS,
    title: 'closes a TCP connection that has not completed TLS within tls_handshake_timeout_ms',
  },
  'performance.global_inflight_limit': { test: LIMITS, title: 'each in-flight limit at 1' },
  'performance.per_upstream_inflight_limit': { test: LIMITS, title: 'each in-flight limit at 1' },
  'performance.per_backend_inflight_limit': { test: LIMITS, title: 'each in-flight limit at 1' },
  'performance.backend_connect_timeout_ms': {
    test: SETTINGS,
    title: 'backend_connect_timeout_ms: a backend that never finishes TLS',
  },
  'performance.backend_timeout_ms': { test: SETTINGS, title: 'performance.backend_timeout_ms: a silent backend' },
  'performance.backend_idle_timeout_ms': { test: HOSTILE, title: 'an upload idle longer than backend_idle_timeout_ms' },
  'performance.max_request_body_bytes': { test: HOSTILE, title: 'content-length over max_request_body_bytes → 413' },
  'performance.max_request_headers_count': { test: HOSTILE, title: 'header bomb, 5,000 fields' },
  'performance.max_request_headers_bytes': { test: HOSTILE, title: 'over max_request_headers_bytes' },
  'performance.request_header_timeout_ms': {
    test: 'e2e/attack-streams.test.ts',
    title: 'HTTP/1.1 slow headers on the TCP listener: 408 and close after request_header_timeout_ms',
  },
  'performance.max_connection_age_ms': { test: SETTINGS, title: 'max_connection_age_ms: an idle connection' },
  'performance.memory_limit_mib': { test: SETTINGS, title: 'memory_limit_mib: over the limit' },
  'performance.shutdown_drain_timeout_ms': { test: SETTINGS, title: 'shutdown_drain_timeout_ms: SIGTERM' },

  // resilience
  'resilience.retries.attempts': { test: SETTINGS, title: 'retries.attempts 0' },
  'resilience.retries.on': { test: SETTINGS, title: 'retries.on without connect-failure' },
  'resilience.retries.budget_percent': { test: RESILIENCE, title: 'retries.budget_percent: 0 leaves only the floor' },
  'resilience.circuit_breaker.enabled': { test: SETTINGS, title: 'circuit_breaker.enabled false' },
  'resilience.circuit_breaker.consecutive_failures': {
    test: LIMITS,
    title: 'with one of two backends refusing connections',
  },
  'resilience.circuit_breaker.open_ms': { test: LIMITS, title: 'with one of two backends refusing connections' },
  'resilience.circuit_breaker.half_open_probes': { test: RESILIENCE, title: 'circuit_breaker.half_open_probes' },
  'resilience.brownout.enabled': brownout,
  'resilience.brownout.trigger_percent': brownout,
  'resilience.brownout.recover_percent': brownout,
  'resilience.brownout.shed_percent': brownout,
  'resilience.brownout.core_routes': brownout,
  'resilience.adaptive_admission.enabled': adaptiveShed,
  'resilience.adaptive_admission.min_limit': adaptiveShed,
  'resilience.adaptive_admission.max_limit': adaptiveGrow,
  'resilience.adaptive_admission.increase_step': adaptiveGrow,
  'resilience.adaptive_admission.decrease_percent': adaptiveShed,
  'resilience.adaptive_admission.high_latency_ms': adaptiveShed,

  // control
  'control.socket': {
    test: 'e2e/control.test.ts',
    title: 'applies 20 changes under load with zero failed requests',
    via: [PAIR],
  },
  'control.state_dir': { test: 'e2e/faults.test.ts', title: 'state_dir read-only during apply' },
  // The fleet: five data planes over TCP with mutual TLS, with node ids from their certificates.
  'control.listen.enabled': fleetApply,
  'control.listen.address': fleetApply,
  'control.listen.port': fleetApply,
  'control.listen.tls.cert': fleetApply,
  'control.listen.tls.key': fleetApply,
  'control.listen.tls.client_ca': fleetRefused,
  'control.server.enabled': fleetApply,
  'control.server.address': fleetApply,
  'control.server.port': fleetApply,
  'control.server.tls.ca': fleetApply,
  'control.server.tls.cert': fleetRefused,
  'control.server.tls.key': fleetApply,
  'control.server.tls.server_name': fleetApply,
};
