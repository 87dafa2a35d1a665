// The config file schema (config.md). One zod definition: defaults, ranges and cross-field rules
// live here so the loader, the CLI and the generated JSON Schema all agree.
//
// Messages that start with "expected" get ", got <value>" appended by the loader, which knows
// the value as written in the YAML.

import { isIP, isIPv4 } from 'node:net';
import { z } from 'zod';
import { normalizePath } from '../router/normalize-path.js';
import { ADDRESS_FORMS, analyseBackendAddress, routeHostProblem } from './address.js';
import { OPTIONAL_CLIENT_CERT_UNSUPPORTED } from './build-support.js';
import { checkCrossFieldRules } from './cross-field.js';

export type { BackendAddress } from './address.js';
export { routeHostKey } from './address.js';

export const SUPPORTED_CONFIG_VERSIONS = [1] as const;

export const LB_POLICIES = [
  'round-robin',
  'random',
  'least-connections',
  'consistent-hash',
  'latency-aware',
  'sticky-cid',
] as const;
export type LbPolicy = (typeof LB_POLICIES)[number];

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'off'] as const;
const LOG_LEVEL_NAMES = [...LOG_LEVELS, 'whisper', 'haunt', 'spooky', 'scream', 'poltergeist', 'silence'] as const;
/** Themed aliases (config.md "log"). */
export const LOG_LEVEL_ALIASES = {
  whisper: 'trace',
  haunt: 'debug',
  spooky: 'info',
  scream: 'warn',
  poltergeist: 'error',
  silence: 'off',
} as const;
export type LogLevelName = (typeof LOG_LEVEL_NAMES)[number];

// ---------------------------------------------------------------- building blocks

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function int(min: number, max: number) {
  const error = `expected an integer from ${min} to ${max}`;
  return z.int({ error }).min(min, { error }).max(max, { error });
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: `expected one of ${values.join(', ')}` });
}

const bool = z.boolean({ error: 'expected true or false' });

const nonEmpty = z.string({ error: 'expected a string' }).min(1, { error: 'expected a non-empty string' });

const absolutePath = (what: string) =>
  z.string({ error: `expected ${what} starting with '/'` }).refine((v) => v.startsWith('/') && !/[\s?#]/.test(v), {
    error: `expected ${what} starting with '/' without spaces, '?' or '#'`,
  });

const ipLiteral = z
  .string({ error: 'expected an IPv4 or IPv6 address literal such as 0.0.0.0 or ::' })
  .refine((v) => isIP(v) !== 0, { error: 'expected an IPv4 or IPv6 address literal such as 0.0.0.0 or ::' });

// Listener ports: 0 asks the OS for a free port (see ListenSchema). Backends need 1-65535.
const listenPort = int(0, 65535);

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const nameString = (what: string) =>
  z
    .string({ error: `expected a ${what}` })
    .regex(NAME_RE, { error: `expected a ${what} of 1-64 letters, digits, '_', '.' or '-'` });

// ---------------------------------------------------------------- backend addresses

/**
 * Parse a backend `address` (see config.md "Backend"). Pure; throws an Error whose message says
 * what is wrong for anything the schema would reject.
 */
export function parseBackendAddress(address: string): { tls: boolean; host: string; port: number; origin: string } {
  const result = analyseBackendAddress(address);
  if (typeof result === 'string') throw new Error(`invalid backend address ${JSON.stringify(address)}: ${result}`);
  return result;
}

const backendAddress = z.string({ error: `expected a backend address (${ADDRESS_FORMS})` }).superRefine((v, ctx) => {
  const result = analyseBackendAddress(v);
  if (typeof result === 'string') {
    ctx.addIssue({ code: 'custom', message: `invalid backend address ${JSON.stringify(v)}: ${result}` });
  }
});

// ---------------------------------------------------------------- routes and pools

const routeHost = z.string({ error: 'expected a host name or a *.example.com wildcard' }).superRefine((v, ctx) => {
  const problem = routeHostProblem(v);
  if (problem !== undefined)
    ctx.addIssue({ code: 'custom', message: `invalid route host ${JSON.stringify(v)}: ${problem}` });
});

// Requests are routed on their normalised path (docs/traffic.md), so a prefix that
// normalisation would change (a dot-segment, an escaped unreserved character) can never match.
const pathPrefix = absolutePath('a path prefix').superRefine((v, ctx) => {
  // The probe segment keeps a trailing `/..` a prefix of `/..x`, which does match.
  const probe = `${v}x`;
  const n = normalizePath(probe);
  if ('problem' in n) {
    ctx.addIssue({ code: 'custom', message: `path prefix ${JSON.stringify(v)} can never match: ${n.problem}` });
  } else if (n.path !== probe) {
    const normal = n.path.slice(0, -1);
    ctx.addIssue({
      code: 'custom',
      message: `path prefix ${JSON.stringify(v)} can never match: requests are routed on their normalised path, where it reads ${JSON.stringify(normal)}; write that instead`,
    });
  }
});

const RouteSchema = z.strictObject({
  path_prefix: pathPrefix.default('/'),
  host: routeHost.optional(),
});

const HASH_KEY_RE = /^(authority|path|client_ip|(header|cookie|query):[A-Za-z0-9_.!#$%&'*+^`|~-]+)$/;

const LoadBalancingSchema = z
  .strictObject({
    type: oneOf(LB_POLICIES).default('round-robin'),
    key: z
      .string({ error: 'expected a hash key' })
      .regex(HASH_KEY_RE, {
        error: 'expected authority, path, client_ip, header:NAME, cookie:NAME or query:NAME',
      })
      .optional(),
  })
  .superRefine((lb, ctx) => {
    if (lb.key !== undefined && lb.type !== 'consistent-hash') {
      ctx.addIssue({
        code: 'custom',
        path: ['key'],
        message: `key is only used by the consistent-hash policy, but type is ${lb.type}`,
      });
    }
  });

const statusItem = /^([1-5][0-9][0-9]|[1-5]xx|[1-5][0-9][0-9]-[1-5][0-9][0-9])$/;
const STATUS_FORMS = 'expected a status such as 200, 2xx, 200-399 or a comma-separated list of those';

const expectedStatus = z
  .union(
    [
      z.int({ error: STATUS_FORMS }).min(100, { error: STATUS_FORMS }).max(599, { error: STATUS_FORMS }),
      z.string().refine((v) => v.split(',').every((s) => statusItem.test(s.trim())), { error: STATUS_FORMS }),
    ],
    { error: STATUS_FORMS },
  )
  .transform((v) => String(v).replace(/\s+/g, ''))
  .refine(
    (v) =>
      v.split(',').every((item) => {
        const [lo, hi] = item.split('-');
        return hi === undefined || Number(lo) <= Number(hi);
      }),
    { error: `${STATUS_FORMS}; a range must go from low to high` },
  );

/** `health_check.timeout_ms` when absent: 1000 ms, or half the interval when that is shorter. */
export function defaultProbeTimeoutMs(intervalMs: number): number {
  return Math.min(1000, Math.floor(intervalMs / 2));
}

export const HealthCheckSchema = z
  .strictObject({
    path: absolutePath('a request path').default('/health'),
    interval: int(100, 3_600_000).default(5000),
    timeout_ms: int(1, 3_600_000).optional(),
    failure_threshold: int(1, 1000).default(3),
    success_threshold: int(1, 1000).default(2),
    cooldown_ms: int(0, 86_400_000).default(5000),
    method: oneOf(['GET', 'HEAD', 'OPTIONS']).default('GET'),
    expected_status: expectedStatus.default('2xx'),
  })
  // Derived so a short interval alone is valid: the operator is never told about a value they did not write.
  .transform((hc) => ({ ...hc, timeout_ms: hc.timeout_ms ?? defaultProbeTimeoutMs(hc.interval) }))
  .superRefine((hc, ctx) => {
    // A probe must finish before the next one is due.
    if (hc.timeout_ms >= hc.interval) {
      ctx.addIssue({
        code: 'custom',
        path: ['timeout_ms'],
        message: `expected timeout_ms below interval (${hc.interval} ms), got ${hc.timeout_ms}`,
      });
    }
  });

export const BackendSchema = z.strictObject({
  id: nameString('backend id'),
  address: backendAddress,
  protocol: oneOf(['h2', 'http1']).default('h2'),
  weight: int(1, 1000).default(100),
  health_check: HealthCheckSchema.optional(),
});

const timeoutMs = int(1, 3_600_000);

const PoolTimeoutsSchema = z.strictObject({
  backend_connect_timeout_ms: timeoutMs.optional(),
  backend_timeout_ms: timeoutMs.optional(),
  backend_idle_timeout_ms: timeoutMs.optional(),
});

const PoolSchema = z.strictObject({
  load_balancing: LoadBalancingSchema.optional(),
  // config.md: path_prefix is '/' when the route (or its host) is absent.
  route: RouteSchema.prefault({}),
  backends: z
    .array(BackendSchema, { error: 'expected a list of backends' })
    .min(1, { error: 'expected at least one backend' }),
  timeouts: PoolTimeoutsSchema.optional(),
});

const UpstreamSchema = z
  .record(nameString('pool name'), PoolSchema, { error: 'expected a map of pool name to pool' })
  .refine((pools) => Object.keys(pools).length > 0, { error: 'expected at least one pool' });

// ---------------------------------------------------------------- the rest

const ClientAuthSchema = z
  .strictObject({
    enabled: bool.default(false),
    ca_file: nonEmpty.optional(),
    // With mTLS on, refusing unauthenticated clients is what operators mean. `false` (only ask)
    // is refused below: this build cannot do it, and saying so beats ignoring it.
    require: bool.default(true),
  })
  .superRefine((ca, ctx) => {
    if (ca.enabled && !ca.require) {
      ctx.addIssue({ code: 'custom', path: ['require'], message: OPTIONAL_CLIENT_CERT_UNSUPPORTED });
    }
    if (ca.enabled && ca.ca_file === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['ca_file'],
        message:
          'required key is missing: client_auth is enabled, so set ca_file to the PEM bundle of CAs that issue client certificates',
      });
    }
  });

const TlsSchema = z.strictObject(
  {
    cert: nonEmpty,
    key: nonEmpty,
    client_auth: ClientAuthSchema.prefault({}),
  },
  { error: 'expected a map with cert and key' },
);

const ListenSchema = z.strictObject({
  protocol: z.literal('http3', { error: 'expected http3 (the only listener protocol)' }).default('http3'),
  address: ipLiteral.default('0.0.0.0'),
  // 0 lets the OS choose a free port: tests use it. Production configs use 1-65535; ports below
  // 1024 need root or CAP_NET_BIND_SERVICE at start.
  port: listenPort.default(9889),
  tls: TlsSchema,
  // HTTP/1.1 + HTTP/2 over TLS on the same address and TCP port, for Alt-Svc discovery.
  tcp: z.strictObject({ enabled: bool.default(true) }).prefault({}),
  alt_svc: z
    .strictObject({
      enabled: bool.default(true),
      // The port clients see (NAT may map it); absent means listen.port.
      port: int(1, 65535).optional(),
      max_age: int(0, 31_536_000).default(86_400),
    })
    .prefault({}),
});

const UpstreamTlsSchema = z
  .strictObject({
    verify: bool.default(true),
    ca_file: nonEmpty.optional(),
    server_name: nonEmpty.optional(),
    client_cert: nonEmpty.optional(),
    client_key: nonEmpty.optional(),
  })
  .superRefine((t, ctx) => {
    if ((t.client_cert === undefined) !== (t.client_key === undefined)) {
      const [present, missing] =
        t.client_cert === undefined ? ['client_key', 'client_cert'] : ['client_cert', 'client_key'];
      ctx.addIssue({
        code: 'custom',
        path: [present],
        message: `client_cert and client_key go together; add ${missing} too`,
      });
    }
  })
  .prefault({});

const LogSchema = z
  .strictObject({
    level: oneOf(LOG_LEVEL_NAMES).default('info'),
    format: oneOf(['plain', 'json']).default('plain'),
    access_log: bool.default(true),
    file: z
      .strictObject({ enabled: bool.default(true), path: nonEmpty.optional() })
      .refine((f) => !f.enabled || f.path !== undefined, {
        path: ['path'],
        error: 'required key is missing: file logging is enabled, so set path (or enabled: false)',
      })
      .optional(),
  })
  .prefault({});

const SecuritySchema = z
  .strictObject({
    privileges: z
      .strictObject({
        enabled: bool.default(true),
        user: nonEmpty.default('spooky'),
        group: nonEmpty.default('spooky'),
      })
      .prefault({}),
  })
  .prefault({});

function isLoopback(address: string): boolean {
  return address === '::1' || (isIPv4(address) && address.startsWith('127.'));
}

const ControlApiSchema = z
  .strictObject({
    enabled: bool.default(true),
    address: ipLiteral.default('127.0.0.1'),
    port: listenPort.default(9902),
    auth_token: z
      .string({ error: 'expected a string' })
      .min(16, { error: 'expected a token of at least 16 characters' })
      .optional(),
    auth_token_file: nonEmpty.optional(),
  })
  .superRefine((api, ctx) => {
    const hasToken = api.auth_token !== undefined || api.auth_token_file !== undefined;
    if (api.auth_token !== undefined && api.auth_token_file !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['auth_token'], message: 'set auth_token or auth_token_file, not both' });
    }
    if (api.enabled && !hasToken && !isLoopback(api.address)) {
      ctx.addIssue({
        code: 'custom',
        path: ['address'],
        message: `control API on non-loopback address ${api.address} requires auth_token or auth_token_file`,
      });
    }
  });

const ObservabilitySchema = z
  .strictObject({
    control_api: ControlApiSchema.prefault({}),
    metrics: z
      .strictObject({
        enabled: bool.default(true),
        address: ipLiteral.default('127.0.0.1'),
        port: listenPort.default(9090),
        path: absolutePath('a request path').default('/metrics'),
      })
      .prefault({}),
  })
  .prefault({});

const count = (max: number) => int(1, max);

// Every key and default of config.md's performance table.
const PerformanceSchema = z
  .strictObject({
    quic_max_idle_timeout_ms: int(1000, 600_000).default(30_000),
    quic_initial_max_data: count(1 << 30).default(10_000_000),
    quic_initial_max_stream_data: count(1 << 30).default(1_000_000),
    quic_initial_max_streams_bidi: count(1_000_000).default(100),
    quic_initial_max_streams_uni: int(3, 1_000_000).default(100),
    quic_cc_algorithm: oneOf(['reno', 'cubic', 'bbr']).default('cubic'),
    quic_retry: oneOf(['always', 'never', 'auto']).default('auto'),
    quic_0rtt: bool.default(false),
    // Methods accepted as 0-RTT early data when quic_0rtt is on; others get 425.
    early_data_methods: z
      .array(oneOf(['GET', 'HEAD', 'OPTIONS']), { error: 'expected a list of methods' })
      .default(['GET', 'HEAD']),
    new_connections_per_sec: count(10_000_000).default(2000),
    new_connections_burst: count(10_000_000).default(500),
    max_active_connections: count(10_000_000).default(20_000),
    // One source (an IPv4 address or an IPv6 /64): its open connections and new-connection rate,
    // so that one address cannot take the capacity of all (docs/traffic.md "Admission").
    per_source_max_connections: count(10_000_000).default(1000),
    per_source_new_connections_per_sec: count(10_000_000).default(100),
    per_source_new_connections_burst: count(10_000_000).default(200),
    // TCP listener: from accept to a completed TLS handshake (Node's own limit is 120 s).
    tls_handshake_timeout_ms: int(100, 120_000).default(10_000),
    global_inflight_limit: count(10_000_000).default(4096),
    per_upstream_inflight_limit: count(10_000_000).default(1024),
    per_backend_inflight_limit: count(10_000_000).default(256),
    backend_connect_timeout_ms: timeoutMs.default(1000),
    backend_timeout_ms: timeoutMs.default(30_000),
    backend_idle_timeout_ms: timeoutMs.default(60_000),
    max_request_body_bytes: int(0, 2 ** 40).default(104_857_600),
    max_request_headers_count: count(10_000).default(128),
    max_request_headers_bytes: int(1024, 1 << 24).default(16_384),
    // Until a request's header section is complete (HTTP/3 stream, HTTP/1.1 connection): 408.
    request_header_timeout_ms: int(100, 600_000).default(10_000),
    // A QUIC connection this old gets GOAWAY and is closed once drained; 0: no limit.
    max_connection_age_ms: int(0, 604_800_000).default(3_600_000),
    // RSS at which new connections are refused (and, 10% above, the oldest shed); 0: automatic.
    memory_limit_mib: int(0, 16_777_216).default(0),
    shutdown_drain_timeout_ms: int(0, 3_600_000).default(10_000),
    // Data-plane worker processes, each on every listener port (SO_REUSEPORT); `auto`: one per
    // available core. The limits above are shares per worker (docs/configuration.md "Workers").
    // At most 256: one byte of each connection id names its worker.
    workers: z
      .union([z.literal('auto'), z.int().min(1).max(256)], {
        error: 'expected "auto" or an integer from 1 to 256',
      })
      .default('auto'),
  })
  .prefault({});

export const RETRY_CONDITIONS = ['connect-failure', 'refused-stream', 'reset-before-response'] as const;

const percent = int(0, 100);

const ResilienceSchema = z
  .strictObject({
    retries: z
      .strictObject({
        // Extra attempts after the first, each on another backend.
        attempts: int(0, 10).default(1),
        on: z
          .array(oneOf(RETRY_CONDITIONS), { error: 'expected a list of retry conditions' })
          .default([...RETRY_CONDITIONS]),
        // Retries may add at most this share of the requests in flight.
        budget_percent: percent.default(20),
      })
      .prefault({}),
    circuit_breaker: z
      .strictObject({
        enabled: bool.default(true),
        consecutive_failures: int(1, 10_000).default(5),
        open_ms: int(100, 3_600_000).default(10_000),
        half_open_probes: int(1, 1000).default(1),
      })
      .prefault({}),
    // Shed a share of the requests to non-core pools while in-flight use (of the admission
    // capacity) is at trigger_percent or above, until it falls to recover_percent (hysteresis).
    brownout: z
      .strictObject({
        enabled: bool.default(false),
        trigger_percent: int(1, 100).default(90),
        recover_percent: int(0, 99).default(75),
        shed_percent: int(1, 100).default(10),
        // Pool names never shed by brownout.
        core_routes: z.array(nonEmpty, { error: 'expected a list of pool names' }).default([]),
      })
      .superRefine((b, ctx) => {
        if (b.recover_percent >= b.trigger_percent) {
          ctx.addIssue({
            code: 'custom',
            path: ['recover_percent'],
            message: `expected recover_percent below trigger_percent (${b.trigger_percent}), got ${b.recover_percent}`,
          });
        }
      })
      .prefault({}),
    // AIMD limit on in-flight requests: grows by increase_step while upstream latency stays below
    // high_latency_ms, shrinks by decrease_percent when it does not; never leaves [min_limit, max_limit].
    adaptive_admission: z
      .strictObject({
        enabled: bool.default(false),
        min_limit: int(1, 10_000_000).default(64),
        max_limit: int(1, 10_000_000).default(4096),
        increase_step: int(1, 100_000).default(8),
        decrease_percent: int(1, 99).default(10),
        high_latency_ms: int(1, 3_600_000).default(500),
      })
      .superRefine((a, ctx) => {
        if (a.min_limit > a.max_limit) {
          ctx.addIssue({
            code: 'custom',
            path: ['min_limit'],
            message: `expected min_limit at most max_limit (${a.max_limit}), got ${a.min_limit}`,
          });
        }
      })
      .prefault({}),
  })
  .prefault({});

/** `enabled` sections whose `tls` is only required when on (reference configs keep them off). */
function requireTlsWhenEnabled(section: string) {
  return (s: { enabled: boolean; tls?: unknown }, ctx: z.RefinementCtx) => {
    if (s.enabled && s.tls === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['tls'],
        message: `required key is missing: ${section} is enabled, so set tls (the fleet's mutual TLS files)`,
      });
    }
  };
}

// A host name (DNS) or an IP literal: where a data plane dials its control plane.
const HOST_RE =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const controlHost = z
  .string({ error: 'expected a host name or an IP address literal' })
  .refine((v) => isIP(v) !== 0 || HOST_RE.test(v), {
    error: 'expected a host name (letters, digits, - and .) or an IP address literal, without a port',
  });

const ControlSchema = z
  .strictObject({
    socket: nonEmpty.default('/run/spooky/control.sock'),
    state_dir: nonEmpty.default('/var/lib/spooky'),
    // spooky-control: remote data planes over TCP with mutual TLS; the client certificate's
    // identity is the node id. Off by default: the unix socket serves the local data plane.
    listen: z
      .strictObject({
        enabled: bool.default(false),
        address: ipLiteral.default('0.0.0.0'),
        port: listenPort.default(9903),
        tls: z
          .strictObject(
            { cert: nonEmpty, key: nonEmpty, client_ca: nonEmpty },
            { error: 'expected a map with cert, key and client_ca' },
          )
          .optional(),
      })
      .superRefine(requireTlsWhenEnabled('control.listen'))
      .prefault({}),
    // spooky-dataplane: follow a control plane over TCP with mutual TLS instead of control.socket.
    server: z
      .strictObject({
        enabled: bool.default(false),
        address: controlHost.optional(),
        port: int(1, 65535).default(9903),
        tls: z
          .strictObject(
            { ca: nonEmpty, cert: nonEmpty, key: nonEmpty, server_name: controlHost.optional() },
            { error: 'expected a map with ca, cert and key' },
          )
          .optional(),
      })
      .superRefine((s, ctx) => {
        requireTlsWhenEnabled('control.server')(s, ctx);
        if (s.enabled && s.address === undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['address'],
            message: "required key is missing: control.server is enabled, so set address (the control plane's host)",
          });
        }
      })
      .prefault({}),
  })
  .prefault({});

export const ConfigSchema = z
  .strictObject({
    version: z
      .literal(1, {
        error: (iss) =>
          typeof iss.input === 'string'
            ? `expected the number ${SUPPORTED_CONFIG_VERSIONS.join(' or ')} without quotes, got ${show(iss.input)}`
            : `unsupported config version ${show(iss.input)}; supported: ${SUPPORTED_CONFIG_VERSIONS.join(', ')}`,
      })
      .default(1),
    listen: ListenSchema,
    upstream: UpstreamSchema,
    // Fallback for pools that omit their own.
    load_balancing: LoadBalancingSchema.optional(),
    upstream_tls: UpstreamTlsSchema,
    log: LogSchema,
    security: SecuritySchema,
    observability: ObservabilitySchema,
    performance: PerformanceSchema,
    resilience: ResilienceSchema,
    control: ControlSchema,
  })
  // Runs even when fields failed, so one pass reports every problem; the rule reads defensively.
  // zod still skips it after an aborting issue (a non-integer number), so the loader also runs it.
  .superRefine(
    (config, ctx) => checkCrossFieldRules(config, (path, message) => ctx.addIssue({ code: 'custom', path, message })),
    { when: () => true },
  );

/** The validated config with defaults applied. */
export type Config = z.output<typeof ConfigSchema>;
/** What may be written in the file. */
export type ConfigInput = z.input<typeof ConfigSchema>;
export type PoolConfig = Config['upstream'][string];
export type BackendConfig = PoolConfig['backends'][number];
