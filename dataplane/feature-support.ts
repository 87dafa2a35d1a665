/**
 * What this build of the data plane does not honour yet, from a validated config. A setting that
 * protects traffic (mTLS, dropping root, the backend protocol) refuses the start: serving without
 * it would be worse than not serving. Settings that only tune behaviour start with a warning.
 */
import type { RuntimeConfig } from '../controlplane/config/runtime.js';
import type { Config } from '../controlplane/config/schema.js';

export interface FeatureSupport {
  /** `yaml.path: what to do` lines; any one refuses the start. */
  fatal: string[];
  warnings: string[];
}

export function checkFeatureSupport(config: Config, uid: number): FeatureSupport {
  const fatal: string[] = [];
  const warnings: string[] = [];
  if (config.listen.tls.client_auth.enabled) {
    fatal.push('listen.tls.client_auth: mTLS is not available in this build yet; set enabled: false to start');
  }
  if (config.security.privileges.enabled && uid === 0) {
    fatal.push(
      'security.privileges: dropping root is not available in this build yet; start as an unprivileged user (systemd User=spooky) or set enabled: false',
    );
  }
  if (config.performance.quic_0rtt) {
    // Early data is replayable; without the 425 guard for non-idempotent methods it is unsafe.
    fatal.push('performance.quic_0rtt: 0-RTT is not available in this build yet; set it to false');
  }
  for (const [name, pool] of Object.entries(config.upstream)) {
    const policy = pool.load_balancing?.type ?? config.load_balancing?.type ?? 'round-robin';
    if (policy !== 'round-robin') {
      warnings.push(
        `upstream.${name}.load_balancing.type: ${policy} is not available in this build yet; weighted round-robin is used`,
      );
    }
    for (const [i, b] of pool.backends.entries()) {
      if (b.protocol === 'http1') {
        fatal.push(
          `upstream.${name}.backends[${i}].protocol: http1 backends are not available in this build yet; use h2`,
        );
      }
      if (b.health_check) {
        warnings.push(
          `upstream.${name}.backends[${i}].health_check: active health checks need spooky-control; this backend counts as healthy`,
        );
      }
    }
  }
  return { fatal, warnings };
}

/** The same refusals for a pushed snapshot (it is NACKed with this message), or null. */
export function snapshotSupportError(rt: RuntimeConfig): string | null {
  if (rt.listen.clientAuth)
    return 'listen.tls.client_auth: mTLS is not available in this build of spooky-dataplane yet';
  if (rt.performance.quic_0rtt)
    return 'performance.quic_0rtt: 0-RTT is not available in this build of spooky-dataplane yet';
  for (const pool of rt.pools.values()) {
    for (const b of pool.backends) {
      if (b.protocol === 'http1')
        return `backend ${b.id}: http1 backends are not available in this build of spooky-dataplane yet`;
    }
  }
  return null;
}
