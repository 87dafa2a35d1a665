/**
 * Keeps one dispatcher per backend across snapshots (like undici's Agent keeps one client per
 * origin), so a new snapshot reuses warm HTTP/2 sessions, and backends that left are drained.
 */
import type { UpstreamTlsOptions } from '../../lib/upstream-tls.js';
import type { RuntimeBackend, RuntimePool } from '../../model/config/runtime.js';
import { H1Client } from './client-h1.js';
import { H2Client } from './client-h2.js';
import type { Dispatcher } from './dispatcher.js';

function keyOf(backend: RuntimeBackend, pool: RuntimePool, tlsGeneration: number): string {
  const t = pool.timeouts;
  const tls = backend.tls ? tlsGeneration : 0;
  return `${backend.id}|${backend.protocol}|${backend.origin}|${t.connectMs}|${t.headersMs}|${t.idleMs}|${tls}`;
}

export class UpstreamAgent {
  private readonly clients = new Map<string, Dispatcher>();

  /** Bumped when the TLS settings change, so TLS backends get fresh sessions. */
  private tlsGeneration = 0;

  constructor(private tls: UpstreamTlsOptions = {}) {}

  /** New TLS settings (a snapshot changed upstream_tls); existing sessions drain on `retain`. */
  setTls(tls: UpstreamTlsOptions): void {
    this.tls = tls;
    this.tlsGeneration++;
  }

  /** The dispatcher for a backend of a pool, created on first use. */
  get(backend: RuntimeBackend, pool: RuntimePool): Dispatcher {
    const key = keyOf(backend, pool, this.tlsGeneration);
    let client = this.clients.get(key);
    if (!client) {
      const options = { origin: backend.origin, timeouts: pool.timeouts, tls: backend.tls ? this.tls : undefined };
      client = backend.protocol === 'http1' ? new H1Client(options) : new H2Client(options);
      this.clients.set(key, client);
    }
    return client;
  }

  /**
   * Keeps the dispatchers the given pools use and closes the rest gracefully: their in-flight
   * requests finish (HTTP/2 GOAWAY semantics), new ones go to the new dispatchers.
   */
  retain(pools: Iterable<RuntimePool>): void {
    const keep = new Set<string>();
    for (const pool of pools) for (const b of pool.backends) keep.add(keyOf(b, pool, this.tlsGeneration));
    for (const [key, client] of this.clients) {
      if (keep.has(key)) continue;
      this.clients.delete(key);
      void client.close();
    }
  }

  /** Sum of in-flight exchanges over every backend. */
  get inFlight(): number {
    let n = 0;
    for (const c of this.clients.values()) n += c.inFlight;
    return n;
  }

  destroy(): void {
    for (const c of this.clients.values()) c.destroy();
    this.clients.clear();
  }
}
