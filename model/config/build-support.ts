/**
 * What this build cannot do, in one place: the config validation refuses it (so `spooky
 * validate`, `doctor`, `apply` and both daemons' start say the same words), and the data plane
 * NACKs a pushed snapshot that asks for it anyway (one from another build of spooky-control).
 */

/** `listen.tls.client_auth.require: false`: why it is refused. */
export const OPTIONAL_CLIENT_CERT_UNSUPPORTED =
  'false is not supported: the QUIC TLS stack (BoringSSL through quiche) either demands a client certificate or does not ask for one, so an optional certificate cannot be requested; set require: true, or enabled: false';
