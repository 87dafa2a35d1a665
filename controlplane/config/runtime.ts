// The validated Config turned into what the data plane consumes: defaults and fallbacks resolved,
// addresses parsed, routes indexed, everything frozen. A snapshot built from
// it is shared by every request in flight, so nothing may mutate it.

import { resolve } from 'node:path';
import { RouteTable } from '../../dataplane/router/route-table.js';
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
  /** Pool override, else the performance value. */
  readonly timeouts: { readonly connectMs: number; readonly headersMs: number; readonly idleMs: number };
}

/** The performance section under its config-file keys (snake_case), defaults applied. */
export type RuntimePerformance = {
  readonly [K in keyof Config['performance']]: Config['performance'][K] extends (infer U)[]
    ? readonly U[]
    : Config['performance'][K];
};

export interface RuntimeConfig {
  readonly listen: {
    readonly address: string;
    /** 0 means the OS picks a port. */
    readonly port: number;
    readonly certFile: string;
    readonly keyFile: string;
    /** mTLS: CA bundle (absolute path) and whether a client certificate is mandatory. */
    readonly clientAuth: { readonly caFile: string; readonly require: boolean } | null;
    /** The TCP (HTTP/1.1 + HTTP/2 over TLS) companion listener on the same address and port. */
    readonly tcp: boolean;
    /** `alt-svc` advertised on every response, or null when disabled. */
    readonly altSvc: { readonly port: number | null; readonly maxAge: number } | null;
  };
  /** How Spooky speaks TLS to backends (file paths absolute). */
  readonly upstreamTls: {
    readonly verify: boolean;
    readonly caFile: string | undefined;
    readonly serverName: string | undefined;
    readonly clientCert: string | undefined;
    readonly clientKey: string | undefined;
  };
  readonly resilience: Config['resilience'];
  readonly control: { readonly socket: string; readonly stateDir: string };
  readonly pools: ReadonlyMap<string, RuntimePool>;
  readonly routes: RouteTable;
  readonly performance: RuntimePerformance;
  readonly log: {
    readonly level: RuntimeLogLevel;
    readonly format: 'plain' | 'json';
    readonly accessLog: boolean;
    /** Absolute path when file logging is enabled; stdout/stderr otherwise. */
    readonly file: string | undefined;
  };
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

/**
 * Build the frozen runtime view of a validated config. Relative file paths resolve against
 * `baseDir` (normally the directory of the config file).
 */
export function buildRuntimeConfig(config: Config, opts: { baseDir: string }): RuntimeConfig {
  const performance = buildPerformance(config.performance);
  const pools: [string, RuntimePool][] = [];
  const routes: { pool: string; host?: string; pathPrefix: string }[] = [];

  for (const [name, pool] of Object.entries(config.upstream)) {
    const lb = pool.load_balancing ?? config.load_balancing;
    const policy = lb?.type ?? 'round-robin';
    const backends = pool.backends.map((b): RuntimeBackend => {
      const { origin, tls, host, port } = parseBackendAddress(b.address);
      return { id: b.id, pool: name, origin, tls, host, port, protocol: b.protocol, weight: b.weight };
    });
    const runtimePool: RuntimePool = {
      name,
      policy,
      ...(policy === 'consistent-hash' ? { hashKey: lb?.key ?? 'authority' } : {}),
      backends,
      timeouts: {
        connectMs: pool.timeouts?.backend_connect_timeout_ms ?? performance.backend_connect_timeout_ms,
        headersMs: pool.timeouts?.backend_timeout_ms ?? performance.backend_timeout_ms,
        idleMs: pool.timeouts?.backend_idle_timeout_ms ?? performance.backend_idle_timeout_ms,
      },
    };
    pools.push([name, deepFreeze(runtimePool)]);
    const route = pool.route;
    routes.push(
      route.host === undefined
        ? { pool: name, pathPrefix: route.path_prefix }
        : { pool: name, host: route.host, pathPrefix: route.path_prefix },
    );
  }

  const routeTable = new RouteTable(routes);
  Object.freeze(routeTable);
  const file = config.log.file;
  const abs = (path: string | undefined) => (path === undefined ? undefined : resolve(opts.baseDir, path));
  const { tls, alt_svc: altSvc } = config.listen;
  const clientAuth = tls.client_auth;
  const up = config.upstream_tls;
  return deepFreeze<RuntimeConfig>({
    listen: {
      address: config.listen.address,
      port: config.listen.port,
      certFile: resolve(opts.baseDir, tls.cert),
      keyFile: resolve(opts.baseDir, tls.key),
      clientAuth:
        clientAuth.enabled && clientAuth.ca_file !== undefined
          ? { caFile: resolve(opts.baseDir, clientAuth.ca_file), require: clientAuth.require }
          : null,
      tcp: config.listen.tcp.enabled,
      altSvc: altSvc.enabled ? { port: altSvc.port ?? null, maxAge: altSvc.max_age } : null,
    },
    upstreamTls: {
      verify: up.verify,
      caFile: abs(up.ca_file),
      serverName: up.server_name,
      clientCert: abs(up.client_cert),
      clientKey: abs(up.client_key),
    },
    resilience: structuredClone(config.resilience),
    control: {
      socket: resolve(opts.baseDir, config.control.socket),
      stateDir: resolve(opts.baseDir, config.control.state_dir),
    },
    pools: new FrozenMap(pools),
    routes: routeTable,
    performance,
    log: {
      level: resolveLogLevel(config.log.level),
      format: config.log.format,
      accessLog: config.log.access_log,
      file: file?.enabled && file.path !== undefined ? resolve(opts.baseDir, file.path) : undefined,
    },
  });
}
