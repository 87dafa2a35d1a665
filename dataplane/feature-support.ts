/**
 * What this build of the data plane does not honour yet, from a validated config. A setting that
 * protects traffic (optional mTLS) refuses the start: serving without it would be worse than not
 * serving. Settings that only tune behaviour start with a warning.
 */
import type { RuntimeConfig } from '../controlplane/config/runtime.js';
import type { Config } from '../controlplane/config/schema.js';

export interface FeatureSupport {
  /** `yaml.path: what to do` lines; any one refuses the start. */
  fatal: string[];
  warnings: string[];
}

const OPTIONAL_CLIENT_CERT =
  'listen.tls.client_auth.require: false is not supported (QUIC cannot ask for an optional client certificate); set require: true';

export function checkFeatureSupport(config: Config): FeatureSupport {
  const fatal: string[] = [];
  const warnings: string[] = [];
  const clientAuth = config.listen.tls.client_auth;
  if (clientAuth.enabled && !clientAuth.require) {
    // The QUIC TLS stack (BoringSSL through quiche) either demands a client certificate or does
    // not ask for one: an optional certificate cannot be requested.
    fatal.push(OPTIONAL_CLIENT_CERT);
  }
  return { fatal, warnings };
}

/** The same refusals for a pushed snapshot (it is NACKed with this message), or null. */
export function snapshotSupportError(rt: RuntimeConfig): string | null {
  if (rt.listen.clientAuth && !rt.listen.clientAuth.require) return OPTIONAL_CLIENT_CERT;
  return null;
}
