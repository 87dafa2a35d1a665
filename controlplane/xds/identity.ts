/**
 * Who a data plane is. Over the local unix socket it says its node id at hello (the socket's file
 * mode already limits who may connect). Over TCP the id is its client certificate's (fleet CA
 * verified by TLS): the subject's common name, or the first DNS name of a certificate without
 * one. A self-declared id is never trusted there: only the worker suffix (`/w3`, one process of a
 * multi-worker data plane) is taken from hello, so the workers of one node share its certificate.
 */
import type { PeerCertificate } from 'node:tls';

/** What the TLS layer tells about the peer of one stream (grpc-js `getAuthContext()`). */
export interface PeerAuth {
  transportSecurityType?: string;
  sslPeerCertificate?: Pick<PeerCertificate, 'subject' | 'subjectaltname'>;
}

export type Identity =
  | { kind: 'local' }
  | { kind: 'certificate'; nodeId: string }
  | { kind: 'refused'; reason: string };

const WORKER_SUFFIX = /\/w\d{1,3}$/;
// Printable, no spaces or control characters: the id reaches log lines and `spooky dataplanes`.
const NODE_ID = /^[\x21-\x7e]{1,200}$/;

/** The certificate's node id: its subject CN, else its first DNS subjectAltName; null if neither. */
export function certificateNodeId(cert: Pick<PeerCertificate, 'subject' | 'subjectaltname'>): string | null {
  const cn = cert.subject?.CN;
  const common = Array.isArray(cn) ? cn[0] : cn;
  if (typeof common === 'string' && common !== '') return common;
  const dns = cert.subjectaltname
    ?.split(', ')
    .find((n) => n.startsWith('DNS:'))
    ?.slice(4);
  return dns || null;
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
        'the client certificate has no usable node id: give it a subject CN (or a DNS subjectAltName) of printable characters without spaces',
    };
  }
  const worker = WORKER_SUFFIX.exec(helloNodeId)?.[0] ?? '';
  return { kind: 'certificate', nodeId: `${id}${worker}` };
}
