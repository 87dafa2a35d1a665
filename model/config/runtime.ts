// The validated Config turned into what the data plane consumes: defaults and fallbacks resolved,
// addresses parsed, routes indexed, everything frozen. A snapshot built from
// it is shared by every request in flight, so nothing may mutate it.

import { resolve } from 'node:path';
import { PEM_MAX_BYTES, readRegularTextFile } from '../../lib/regular-file.js';
import { RouteTable } from '../router/route-table.js';
import { type Config, type LbPolicy, LOG_LEVEL_ALIASES, type LogLevelName, parseBackendAddress } from './schema.js';

export type RuntimeLogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface RuntimeBackend {
  readonly id: string;
  readonly pool: string;
  /** `https://host:port` or `http://host:port`. */
  readonly origin: string;
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
  readonly protocol: 'h2' | 'http1';
  readonly weight: number;
}

export interface RuntimePool {
  readonly name: string;
  readonly policy: LbPolicy;
  /** consistent-hash only: authority, path, client_ip, header:NAME, cookie:NAME or query:NAME. */
  readonly hashKey?: string;
  readonly backends: readonly RuntimeBackend[];
  /** What the pool serves; RouteTable indexes these. */
  readonly route: { readonly host?: string; readonly pathPrefix: string };
  /** Pool override, else the performance value. */
  readonly timeouts: { readonly connectMs: number; readonly headersMs: number; readonly idleMs: number };
}

/** The performance section under its config-file keys (snake_case), defaults applied. */
export type RuntimePerformance = {
  readonly [K in keyof Config['performance']]: Config['performance'][K] extends (infer U)[]
    ? readonly U[]
    : Config['performance'][K];
};

/** PEM text, as read from the files the config names (or carried by a snapshot). */
export type Pem = string;

export interface RuntimeConfig {
  readonly listen: {
    readonly address: string;
    /** 0 means the OS picks a port. */
    readonly port: number;
    /** The certificate chain (leaf first) and private key. */
    readonly certPem: Pem;
    readonly keyPem: Pem;
    /** mTLS: CA bundle and whether a client certificate is mandatory. */
    readonly clientAuth: { readonly caPem: Pem; readonly require: boolean } | null;
    /** The TCP (HTTP/1.1 + HTTP/2 over TLS) companion listener on the same address and port. */
    readonly tcp: boolean;
    /** `alt-svc` advertised on every response, or null when disabled. */
    readonly altSvc: { readonly port: number | null; readonly maxAge: number } | null;
  };
  /** How Spooky speaks TLS to backends. */
  readonly upstreamTls: {
    readonly verify: boolean;
    readonly caPem?: Pem;
    readonly serverName?: string;
    readonly clientCertPem?: Pem;
    readonly clientKeyPem?: Pem;
  };
  readonly resilience: Config['resilience'];
  readonly pools: ReadonlyMap<string, RuntimePool>;
  readonly routes: RouteTable;
  readonly performance: RuntimePerformance;
  readonly log: {
    readonly level: RuntimeLogLevel;
    readonly format: 'plain' | 'json';
    readonly accessLog: boolean;
  };
}

/** What a process needs from its own YAML file and never from a snapshot. */
export interface BootstrapConfig {
  /** Absolute path when file logging is enabled; stdout/stderr otherwise. */
  readonly logFile: string | undefined;
  readonly control: {
    readonly socket: string;
    readonly stateDir: string;
    /** spooky-control's TCP listener for remote data planes (control.listen), when enabled. */
    readonly listen: ControlListen | null;
    /** The remote control plane a data plane follows (control.server), when enabled. */
    readonly server: ControlServer | null;
  };
}

/** PEM material of one side of the control connection's mutual TLS. */
export interface ControlListen {
  readonly address: string;
  readonly port: number;
  readonly certPem: string;
  readonly keyPem: string;
  /** The fleet CA: data planes' client certificates must chain to it. */
  readonly clientCaPem: string;
}

export interface ControlServer {
  readonly address: string;
  readonly port: number;
  /** The fleet CA the control plane's certificate must chain to. */
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** The name checked against the control plane's certificate; the address's host when absent. */
  readonly serverName: string | undefined;
}

/** A Map that cannot be changed after construction (Object.freeze does not stop Map.set). */
class FrozenMap<K, V> implements ReadonlyMap<K, V> {
  readonly #map: Map<K, V>;

  constructor(entries: Iterable<readonly [K, V]>) {
    this.#map = new Map(entries);
    Object.freeze(this);
  }

  get size(): number {
    return this.#map.size;
  }
  get(key: K): V | undefined {
    return this.#map.get(key);
  }
  has(key: K): boolean {
    return this.#map.has(key);
  }
  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.#map) callback.call(thisArg, value, key, this);
  }
  entries(): MapIterator<[K, V]> {
    return this.#map.entries();
  }
  keys(): MapIterator<K> {
    return this.#map.keys();
  }
  values(): MapIterator<V> {
    return this.#map.values();
  }
  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.#map.entries();
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  // Only plain data is walked; class instances (RouteTable, FrozenMap) guard their own state.
  const proto = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null || Array.isArray(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return Object.freeze(value);
}

export function resolveLogLevel(level: LogLevelName): RuntimeLogLevel {
  const canonical = level in LOG_LEVEL_ALIASES ? LOG_LEVEL_ALIASES[level as keyof typeof LOG_LEVEL_ALIASES] : level;
  return canonical === 'off' ? 'silent' : (canonical as RuntimeLogLevel);
}

function buildPerformance(p: Config['performance']): RuntimePerformance {
  return { ...p, early_data_methods: [...p.early_data_methods] };
}

/** Everything of a RuntimeConfig except the indexes, as plain data (from YAML or a snapshot). */
export type RuntimeParts = Omit<RuntimeConfig, 'pools' | 'routes'> & { readonly pools: readonly RuntimePool[] };

/** Indexes pools and routes and freezes the whole: one immutable object per version. */
export function assembleRuntimeConfig(parts: RuntimeParts): RuntimeConfig {
  const pools = parts.pools.map((p): [string, RuntimePool] => [p.name, deepFreeze(structuredClone(p))]);
  const routes = new RouteTable(
    parts.pools.map((p) =>
      p.route.host === undefined
        ? { pool: p.name, pathPrefix: p.route.pathPrefix }
        : { pool: p.name, host: p.route.host, pathPrefix: p.route.pathPrefix },
    ),
  );
  Object.freeze(routes);
  return deepFreeze<RuntimeConfig>({
    ...structuredClone({ ...parts, pools: [] }),
    pools: new FrozenMap(pools),
    routes,
  });
}

export type ReadPem = (path: string) => Pem;

/**
 * `upstream_tls` in its runtime form: the PEM files read with `read`. A file `read` returns
 * undefined for is left out (spooky doctor reads an unvalidated file that way); the client
 * certificate goes in only with its key.
 */
export function buildUpstreamTls(
  up: {
    verify: boolean;
    ca_file?: string | undefined;
    server_name?: string | undefined;
    client_cert?: string | undefined;
    client_key?: string | undefined;
  },
  read: (path: string) => Pem | undefined,
): RuntimeConfig['upstreamTls'] {
  const caPem = up.ca_file !== undefined ? read(up.ca_file) : undefined;
  const [clientCertPem, clientKeyPem] =
    up.client_cert !== undefined && up.client_key !== undefined
      ? [read(up.client_cert), read(up.client_key)]
      : [undefined, undefined];
  return {
    verify: up.verify,
    ...(caPem !== undefined ? { caPem } : {}),
    ...(up.server_name !== undefined ? { serverName: up.server_name } : {}),
    ...(clientCertPem !== undefined && clientKeyPem !== undefined ? { clientCertPem, clientKeyPem } : {}),
  };
}
// Only a regular file under the PEM cap: a FIFO or device named here must not wedge the process.
const readPemFile: ReadPem = (path) => readRegularTextFile(path, PEM_MAX_BYTES);

/**
 * Build the frozen runtime view of a validated config, reading the certificate, key and CA files
 * it names (relative paths resolve against `baseDir`, normally the config file's directory).
 */
export function buildRuntimeConfig(config: Config, opts: { baseDir: string; readPem?: ReadPem }): RuntimeConfig {
  const read = (path: string) => (opts.readPem ?? readPemFile)(resolve(opts.baseDir, path));
  const performance = buildPerformance(config.performance);
  const pools = Object.entries(config.upstream).map(([name, pool]): RuntimePool => {
    const lb = pool.load_balancing ?? config.load_balancing;
    const policy = lb?.type ?? 'round-robin';
    const backends = pool.backends.map((b): RuntimeBackend => {
      const { origin, tls, host, port } = parseBackendAddress(b.address);
      return { id: b.id, pool: name, origin, tls, host, port, protocol: b.protocol, weight: b.weight };
    });
    const route = pool.route;
    return {
      name,
      policy,
      ...(policy === 'consistent-hash' ? { hashKey: lb?.key ?? 'authority' } : {}),
      backends,
      route:
        route.host === undefined
          ? { pathPrefix: route.path_prefix }
          : { host: route.host, pathPrefix: route.path_prefix },
      timeouts: {
        connectMs: pool.timeouts?.backend_connect_timeout_ms ?? performance.backend_connect_timeout_ms,
        headersMs: pool.timeouts?.backend_timeout_ms ?? performance.backend_timeout_ms,
        idleMs: pool.timeouts?.backend_idle_timeout_ms ?? performance.backend_idle_timeout_ms,
      },
    };
  });
  const { tls, alt_svc: altSvc } = config.listen;
  const clientAuth = tls.client_auth;
  const up = config.upstream_tls;
  return assembleRuntimeConfig({
    listen: {
      address: config.listen.address,
      port: config.listen.port,
      certPem: read(tls.cert),
      keyPem: read(tls.key),
      clientAuth:
        clientAuth.enabled && clientAuth.ca_file !== undefined
          ? { caPem: read(clientAuth.ca_file), require: clientAuth.require }
          : null,
      tcp: config.listen.tcp.enabled,
      altSvc: altSvc.enabled ? { port: altSvc.port ?? null, maxAge: altSvc.max_age } : null,
    },
    upstreamTls: buildUpstreamTls(up, read),
    resilience: config.resilience,
    pools,
    performance,
    log: { level: resolveLogLevel(config.log.level), format: config.log.format, accessLog: config.log.access_log },
  });
}

/**
 * The settings only a process's own YAML gives: log file and the control connection. Reads the
 * control connection's TLS files (throws when one became unreadable since validation).
 */
export function buildBootstrapConfig(
  config: Config,
  opts: { baseDir: string; readPem?: ReadPem; sides?: readonly ('listen' | 'server')[] },
): BootstrapConfig {
  // A daemon reads only its own side: an edge host with a shared file needs no control.key.
  const sides = opts.sides ?? ['listen', 'server'];
  const read = (path: string) => (opts.readPem ?? readPemFile)(resolve(opts.baseDir, path));
  const file = config.log.file;
  return {
    logFile: file?.enabled && file.path !== undefined ? resolve(opts.baseDir, file.path) : undefined,
    control: {
      socket: resolve(opts.baseDir, config.control.socket),
      stateDir: resolve(opts.baseDir, config.control.state_dir),
      listen: sides.includes('listen') ? controlListenOf(config.control.listen, read) : null,
      server: sides.includes('server') ? controlServerOf(config.control.server, read) : null,
    },
  };
}

function controlListenOf(c: Config['control']['listen'], read: (file: string) => string): ControlListen | null {
  if (!c.enabled || !c.tls) return null;
  const { cert, key, client_ca } = c.tls;
  return { address: c.address, port: c.port, certPem: read(cert), keyPem: read(key), clientCaPem: read(client_ca) };
}

function controlServerOf(c: Config['control']['server'], read: (file: string) => string): ControlServer | null {
  if (!c.enabled || !c.tls || c.address === undefined) return null;
  const { ca, cert, key, server_name } = c.tls;
  return {
    address: c.address,
    port: c.port,
    caPem: read(ca),
    certPem: read(cert),
    keyPem: read(key),
    serverName: server_name,
  };
}
