/**
 * What this build of the data plane does not honour. The config validation refuses it already
 * (model/config/build-support.ts); this is the data plane's own guard for a pushed
 * snapshot from a control plane that validated differently: serving without a setting that
 * protects traffic would be worse than not serving.
 */
import { OPTIONAL_CLIENT_CERT_UNSUPPORTED } from '../model/config/build-support.js';
import type { RuntimeConfig } from '../model/config/runtime.js';

/** The refusal of a pushed snapshot (it is NACKed with this message), or null. */
export function snapshotSupportError(rt: RuntimeConfig): string | null {
  if (rt.listen.clientAuth && !rt.listen.clientAuth.require)
    return `listen.tls.client_auth.require: ${OPTIONAL_CLIENT_CERT_UNSUPPORTED}`;
  return null;
}
