/**
 * The TLS options Spooky connects to backends with, built in one place from `upstream_tls` (its
 * runtime form), for the data plane's HTTP/2 and HTTP/1.1 clients and the control plane's health
 * prober alike, so a probe checks the backend the way requests reach it.
 */
import { isIP } from 'node:net';
import type { SecureContextOptions } from 'node:tls';

/** `upstream_tls` as the runtime config holds it (PEM text read from the files). */
export interface UpstreamTlsSettings {
  readonly verify: boolean;
  readonly caPem?: string;
  readonly serverName?: string;
  readonly clientCertPem?: string;
  readonly clientKeyPem?: string;
}

export type UpstreamTlsOptions = SecureContextOptions & { rejectUnauthorized?: boolean; servername?: string };

/** Node TLS options from `upstream_tls`: verification, CA bundle, SNI override, client certificate. */
export function upstreamTlsOptions(t: UpstreamTlsSettings): UpstreamTlsOptions {
  return {
    rejectUnauthorized: t.verify,
    ...(t.caPem !== undefined ? { ca: t.caPem } : {}),
    ...(t.serverName !== undefined ? { servername: t.serverName } : {}),
    ...(t.clientCertPem !== undefined && t.clientKeyPem !== undefined
      ? { cert: t.clientCertPem, key: t.clientKeyPem }
      : {}),
  };
}

/**
 * The SNI a backend connection sends, chosen as http2.connect does: the configured name, else the
 * backend's host name; none for an IP address (RFC 6066 §3).
 */
export function backendServername(host: string, servername: string | undefined): string | undefined {
  return servername ?? (isIP(host) === 0 ? host : undefined);
}
