/**
 * What this build of the data plane does not honour yet, from a validated config. A setting that
 * protects traffic (mTLS, dropping root, 0-RTT's replay guard) refuses the start: serving without
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
  return { fatal, warnings };
}

/** The same refusals for a pushed snapshot (it is NACKed with this message), or null. */
export function snapshotSupportError(rt: RuntimeConfig): string | null {
  if (rt.listen.clientAuth)
    return 'listen.tls.client_auth: mTLS is not available in this build of spooky-dataplane yet';
  if (rt.performance.quic_0rtt)
    return 'performance.quic_0rtt: 0-RTT is not available in this build of spooky-dataplane yet';
  return null;
}
