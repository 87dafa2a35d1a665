/**
 * RuntimeConfig ⇄ the protobuf Snapshot of the control protocol. The control plane encodes
 * what it validated (TLS material included, so the data plane needs no access to key files);
 * the data plane decodes and re-indexes it. decode(encode(x)) equals x (tested).
 */
import type * as pb from '../../proto/gen/spooky/v1/control.js';
import {
  assembleRuntimeConfig,
  type RuntimeBackend,
  type RuntimeConfig,
  type RuntimeLogLevel,
  type RuntimePool,
} from '../config/runtime.js';
import { type LbPolicy, parseBackendAddress } from '../config/schema.js';

export function encodeSnapshot(rt: RuntimeConfig, version: number, nonce: string): pb.Snapshot {
  const { listen, upstreamTls: up } = rt;
  return {
    version,
    nonce,
    listener: {
      address: listen.address,
      port: listen.port,
      certPem: listen.certPem,
      keyPem: listen.keyPem,
      clientCaPem: listen.clientAuth?.caPem ?? '',
      clientAuthRequired: listen.clientAuth?.require ?? false,
      tcp: listen.tcp,
      altSvc: listen.altSvc !== null,
      altSvcPort: listen.altSvc?.port ?? 0,
      altSvcMaxAge: listen.altSvc?.maxAge ?? 0,
    },
    pools: [...rt.pools.values()].map(
      (p): pb.Pool => ({
        name: p.name,
        policy: p.policy,
        hashKey: p.hashKey ?? '',
        routeHost: p.route.host ?? '',
        routePathPrefix: p.route.pathPrefix,
        connectTimeoutMs: p.timeouts.connectMs,
        headersTimeoutMs: p.timeouts.headersMs,
        idleTimeoutMs: p.timeouts.idleMs,
        backends: p.backends.map((b) => ({ id: b.id, origin: b.origin, protocol: b.protocol, weight: b.weight })),
      }),
    ),
    upstreamTls: {
      verify: up.verify,
      caPem: up.caPem ?? '',
      serverName: up.serverName ?? '',
      clientCertPem: up.clientCertPem ?? '',
      clientKeyPem: up.clientKeyPem ?? '',
    },
    performance: camel(rt.performance),
    log: { level: rt.log.level, format: rt.log.format, accessLog: rt.log.accessLog },
    resilienceJson: JSON.stringify(rt.resilience),
  };
}

/** snake_case performance keys → the generated camelCase fields. */
function camel(perf: RuntimeConfig['performance']): pb.Performance {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(perf)) out[k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())] = v;
  out.workers = String(perf.workers);
  return out as unknown as pb.Performance;
}

function snake(perf: pb.Performance): RuntimeConfig['performance'] {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(perf)) out[k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = v;
  // The generated name of quic_0rtt is quic0rtt.
  out.quic_0rtt = perf.quic0rtt;
  delete out.quic0rtt;
  // "auto" or a count; a control plane older than the setting sends none, and its config (without
  // the key) means what the loader makes of it now: the default, auto.
  out.workers = /^[1-9]\d*$/.test(perf.workers) ? Number(perf.workers) : 'auto';
  return out as unknown as RuntimeConfig['performance'];
}

/** The data plane's view of a snapshot; throws an Error naming the field when it is unusable. */
export function decodeSnapshot(s: pb.Snapshot): RuntimeConfig {
  const l = s.listener;
  if (!l || !s.performance || !s.log || !s.upstreamTls)
    throw new Error('snapshot lacks listener, performance, log or upstream_tls');
  const up = s.upstreamTls;
  const pools = s.pools.map((p): RuntimePool => {
    const backends = p.backends.map((b): RuntimeBackend => {
      const { origin, tls, host, port } = parseBackendAddress(b.origin);
      const protocol = b.protocol === 'http1' ? 'http1' : 'h2';
      return { id: b.id, pool: p.name, origin, tls, host, port, protocol, weight: b.weight };
    });
    return {
      name: p.name,
      policy: p.policy as LbPolicy,
      ...(p.hashKey !== '' ? { hashKey: p.hashKey } : {}),
      backends,
      route:
        p.routeHost !== '' ? { host: p.routeHost, pathPrefix: p.routePathPrefix } : { pathPrefix: p.routePathPrefix },
      timeouts: { connectMs: p.connectTimeoutMs, headersMs: p.headersTimeoutMs, idleMs: p.idleTimeoutMs },
    };
  });
  return assembleRuntimeConfig({
    listen: {
      address: l.address,
      port: l.port,
      certPem: l.certPem,
      keyPem: l.keyPem,
      clientAuth: l.clientCaPem !== '' ? { caPem: l.clientCaPem, require: l.clientAuthRequired } : null,
      tcp: l.tcp,
      altSvc: l.altSvc ? { port: l.altSvcPort === 0 ? null : l.altSvcPort, maxAge: l.altSvcMaxAge } : null,
    },
    upstreamTls: {
      verify: up.verify,
      ...(up.caPem !== '' ? { caPem: up.caPem } : {}),
      ...(up.serverName !== '' ? { serverName: up.serverName } : {}),
      ...(up.clientCertPem !== '' && up.clientKeyPem !== ''
        ? { clientCertPem: up.clientCertPem, clientKeyPem: up.clientKeyPem }
        : {}),
    },
    resilience: JSON.parse(s.resilienceJson),
    pools,
    performance: snake(s.performance),
    log: {
      level: s.log.level as RuntimeLogLevel,
      format: s.log.format === 'json' ? 'json' : 'plain',
      accessLog: s.log.accessLog,
    },
  });
}
