/**
 * What this build of the data plane does not honour. The config validation refuses it already
 * (controlplane/config/build-support.ts); this is the data plane's own guard for a pushed
 * snapshot from a control plane that validated differently: serving without a setting that
 * protects traffic would be worse than not serving.
 */
import { OPTIONAL_CLIENT_CERT_UNSUPPORTED } from '../controlplane/config/build-support.js';
import type { RuntimeConfig } from '../controlplane/config/runtime.js';
import type { Config } from '../controlplane/config/schema.js';

/** `yaml.path: what to do` lines; any one refuses the start. */
export function checkFeatureSupport(config: Config): string[] {
  const fatal: string[] = [];
  if (config.performance.quic_0rtt) {
    // Early data is replayable; without the 425 guard for non-idempotent methods it is unsafe.
    fatal.push('performance.quic_0rtt: 0-RTT is not available in this build yet; set it to false');
  }
  return fatal;
}

/** The same refusals for a pushed snapshot (it is NACKed with this message), or null. */
export function snapshotSupportError(rt: RuntimeConfig): string | null {
  if (rt.listen.clientAuth && !rt.listen.clientAuth.require)
    return `listen.tls.client_auth.require: ${OPTIONAL_CLIENT_CERT_UNSUPPORTED}`;
  if (rt.performance.quic_0rtt)
    return 'performance.quic_0rtt: 0-RTT is not available in this build of spooky-dataplane yet';
  return null;
}
