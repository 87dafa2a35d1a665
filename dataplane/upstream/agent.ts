/**
 * Keeps one dispatcher per backend across snapshots (like undici's Agent keeps one client per
 * origin), so a new snapshot reuses warm HTTP/2 sessions, and backends that left are drained.
 */
import { readFileSync } from 'node:fs';
import type { RuntimeBackend, RuntimeConfig, RuntimePool } from '../../controlplane/config/runtime.js';
import { H2Client, type UpstreamTlsOptions } from './client-h2.js';
import type { Dispatcher } from './dispatcher.js';

function keyOf(backend: RuntimeBackend, pool: RuntimePool): string {
  const t = pool.timeouts;
  return `${backend.id}|${backend.protocol}|${backend.origin}|${t.connectMs}|${t.headersMs}|${t.idleMs}`;
}

/** Node TLS options from `upstream_tls` (files read once here, not per connection). */
export function upstreamTlsOptions(t: RuntimeConfig['upstreamTls']): UpstreamTlsOptions {
  return {
    rejectUnauthorized: t.verify,
    ...(t.caFile !== undefined ? { ca: readFileSync(t.caFile) } : {}),
    ...(t.serverName !== undefined ? { servername: t.serverName } : {}),
    ...(t.clientCert !== undefined && t.clientKey !== undefined
      ? { cert: readFileSync(t.clientCert), key: readFileSync(t.clientKey) }
      : {}),
  };
}

export class UpstreamAgent {
  private readonly clients = new Map<string, Dispatcher>();

  constructor(private readonly tls: UpstreamTlsOptions = {}) {}

  /** The dispatcher for a backend of a pool, created on first use. */
  get(backend: RuntimeBackend, pool: RuntimePool): Dispatcher {
    const key = keyOf(backend, pool);
    let client = this.clients.get(key);
    if (!client) {
      client = new H2Client({
        origin: backend.origin,
        timeouts: pool.timeouts,
        tls: backend.tls ? this.tls : undefined,
      });
      this.clients.set(key, client);
    }
    return client;
  }

  /** Sum of in-flight exchanges over every backend. */
  get inFlight(): number {
    let n = 0;
    for (const c of this.clients.values()) n += c.inFlight;
    return n;
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.close()));
    this.clients.clear();
  }

  destroy(): void {
    for (const c of this.clients.values()) c.destroy();
    this.clients.clear();
  }
}
