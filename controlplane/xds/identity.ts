/**
 * Who a data plane is. Over the local unix socket it says its node id at hello (the socket's file
 * mode already limits who may connect). Over TCP the id is its client certificate's (verified
 * against the fleet CA by TLS): the subject's common name. A self-declared id is never trusted
 * there: only the worker suffix (`/w3`, one process of a multi-worker data plane) is taken from
 * hello, so the workers of one node share its certificate.
 */
import type { PeerCertificate } from 'node:tls';
import { hostPort } from '../../lib/control-channel.js';

/** What the TLS layer tells about the peer of one stream (grpc-js `getAuthContext()`). */
export interface PeerAuth {
  transportSecurityType?: string;
  sslPeerCertificate?: Pick<PeerCertificate, 'subject'>;
}

export type Identity =
  | { kind: 'local' }
  /** `certId`: the certificate's own id; `nodeId`: that plus the worker suffix. */
  | { kind: 'certificate'; certId: string; nodeId: string }
  | { kind: 'refused'; reason: string };

/** A worker of a multi-worker data plane: `/w0` to `/w255` (performance.workers is at most 256). */
const WORKER_SUFFIX = /\/w(\d{1,3})$/;
// Printable, no spaces, no `/` (that would clash with a worker suffix): the id reaches log lines,
// `spooky dataplanes` and metric labels.
const NODE_ID = /^[\x21-\x2e\x30-\x7e]{1,200}$/;

/**
 * The certificate's node id: its subject CN (the first, if several). Only the CN: Node flattens
 * subjectAltNames into one string whose quoting cannot be undone safely.
 */
export function certificateNodeId(cert: Pick<PeerCertificate, 'subject'>): string | null {
  const cn = cert.subject?.CN;
  const common = Array.isArray(cn) ? cn[0] : cn;
  return typeof common === 'string' && common !== '' ? common : null;
}

/** The identity of the data plane on a stream: `helloNodeId` is what it said at hello. */
export function identify(auth: PeerAuth | null, viaTcp: boolean, helloNodeId: string): Identity {
  if (!viaTcp) return { kind: 'local' };
  const cert = auth?.transportSecurityType === 'ssl' ? auth.sslPeerCertificate : undefined;
  // TLS already refused a client without a fleet certificate; this is the belt to those braces.
  if (!cert) return { kind: 'refused', reason: 'no verified client certificate' };
  const id = certificateNodeId(cert);
  if (id === null || !NODE_ID.test(id)) {
    return {
      kind: 'refused',
      reason:
        'the client certificate has no usable node id: give it a subject CN of up to 200 printable characters without spaces or /',
    };
  }
  const worker = WORKER_SUFFIX.exec(helloNodeId);
  const suffix = worker && Number(worker[1]) < 256 ? `/w${Number(worker[1])}` : '';
  return { kind: 'certificate', certId: id, nodeId: `${id}${suffix}` };
}

/** grpc-js's `getPeer()` (`10.0.0.5:40112`, `::1:40112` unbracketed) as `host:port` with IPv6 bracketed. */
export function peerAddress(peer: string): string {
  const colon = peer.lastIndexOf(':');
  const port = Number(peer.slice(colon + 1));
  return colon > 0 && Number.isInteger(port) ? hostPort(peer.slice(0, colon), port) : peer;
}

/** The host part of `peerAddress`'s result (to tell one machine's workers from another machine). */
export function peerHost(address: string): string {
  const colon = address.lastIndexOf(':');
  return (colon > 0 ? address.slice(0, colon) : address).replace(/^\[|\]$/g, '');
}
