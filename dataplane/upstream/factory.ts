/**
 * Builds a backend's dispatcher from its protocol (undici's Agent picks a client per origin the
 * same way), and names what makes two dispatchers interchangeable: a new snapshot keeps a
 * backend's warm dispatcher while that key stays (cluster/manager.ts).
 */
import type { UpstreamTlsOptions } from '../../lib/upstream-tls.js';
import type { RuntimeBackend, RuntimePool } from '../../model/config/runtime.js';
import { H1Client } from './client-h1.js';
import { H2Client } from './client-h2.js';
import type { Dispatcher } from './dispatcher.js';

/** Creates the dispatcher of a backend of a pool; `tls` only for https backends. */
export type DispatcherFactory = (backend: RuntimeBackend, pool: RuntimePool, tls: UpstreamTlsOptions) => Dispatcher;

/**
 * Equal keys mean the same connections would be made: protocol, origin, the pool's timeouts and,
 * for TLS backends, the generation of the upstream TLS settings.
 */
export function dispatcherKey(backend: RuntimeBackend, pool: RuntimePool, tlsGeneration: number): string {
  const t = pool.timeouts;
  const tls = backend.tls ? tlsGeneration : 0;
  return `${backend.protocol}|${backend.origin}|${t.connectMs}|${t.headersMs}|${t.idleMs}|${tls}`;
}

export const createDispatcher: DispatcherFactory = (backend, pool, tls) => {
  const options = { origin: backend.origin, timeouts: pool.timeouts, tls: backend.tls ? tls : undefined };
  return backend.protocol === 'http1' ? new H1Client(options) : new H2Client(options);
};
