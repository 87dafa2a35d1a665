/**
 * Builds the header list a backend receives (request-path.md, "Forwarding"): connection-specific
 * fields dropped, client-supplied forwarding headers replaced (never appended), forwarding facts
 * set from the real connection, `x-request-id` added when absent, `via` extended.
 */
import { randomBytes } from 'node:crypto';
import { type Fields, HOP_BY_HOP } from '../http/fields.js';

/** The header that carries the verified client certificate's subject (mTLS) to backends. */
export const CLIENT_CERT_SUBJECT_HEADER = 'x-client-cert-subject';

/** Client-supplied values of these are never trusted: Spooky sets them itself. */
const REPLACED = new Set([
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  CLIENT_CERT_SUBJECT_HEADER,
  // RFC 8470: only Spooky knows whether a request came in 0-RTT early data; a client's claim
  // either way means nothing to the backend.
  'early-data',
]);

/** `via` protocol versions (RFC 9110 §7.6.3) by the client's protocol. */
const VIA_VERSION: Record<string, string> = { h3: '3', h2: '2', 'http/1.1': '1.1' };

const ID_PREFIX = randomBytes(6).toString('hex');
let idCounter = 0;

/** A request id unique in this process and unlikely to collide across processes. */
export function newRequestId(): string {
  idCounter = (idCounter + 1) % 0x100000000;
  return `${ID_PREFIX}${idCounter.toString(16).padStart(8, '0')}`;
}

export interface ForwardContext {
  clientIp: string;
  authority: string;
  /** The request id (the client's `x-request-id` if it sent a usable one). */
  requestId: string;
  /** 'h3', 'h2' or 'http/1.1' (for `via`); h3 when absent. */
  protocol?: string;
  /** The verified client certificate's subject (mTLS), forwarded in CLIENT_CERT_SUBJECT_HEADER. */
  clientCertSubject?: string;
  /** The request arrived in QUIC 0-RTT early data and was accepted: `early-data: 1` (RFC 8470 §5.1). */
  earlyData?: boolean;
}

/** Returns the client's x-request-id when it is short and printable, else undefined. */
export function clientRequestId(headers: Fields): string | undefined {
  for (const [name, value] of headers) {
    if (name === 'x-request-id')
      return value.length > 0 && value.length <= 128 && /^[\x21-\x7e]+$/.test(value) ? value : undefined;
  }
  return undefined;
}

export function buildUpstreamHeaders(headers: Fields, ctx: ForwardContext): Fields {
  const out: Array<readonly [string, string]> = [];
  let via: string | undefined;
  let sawTe = false;
  for (const field of headers) {
    const name = field[0];
    if (name === 'host' || REPLACED.has(name) || name === 'x-request-id') continue;
    if (name === 'via') {
      via = via === undefined ? field[1] : `${via}, ${field[1]}`;
      continue;
    }
    if (name === 'te') {
      // Validation admits only "te: trailers", which gRPC backends need to see.
      sawTe = true;
      continue;
    }
    if (HOP_BY_HOP.has(name)) continue;
    out.push(field);
  }
  if (sawTe) out.push(['te', 'trailers']);
  // The peer address of a socket: an IPv6 literal is the one with colons (net.isIPv6's regex
  // cost more than the rest of this function).
  const forHost = ctx.clientIp.includes(':') ? `"[${ctx.clientIp}]"` : ctx.clientIp;
  out.push(['x-forwarded-for', ctx.clientIp]);
  out.push(['x-forwarded-proto', 'https']);
  out.push(['x-forwarded-host', ctx.authority]);
  out.push(['forwarded', `for=${forHost};proto=https;host="${ctx.authority.replace(/["\\]/g, '')}"`]);
  out.push(['x-request-id', ctx.requestId]);
  if (ctx.clientCertSubject !== undefined) out.push([CLIENT_CERT_SUBJECT_HEADER, ctx.clientCertSubject]);
  if (ctx.earlyData) out.push(['early-data', '1']);
  const hop = `${VIA_VERSION[ctx.protocol ?? 'h3'] ?? '3'} spooky`;
  out.push(['via', via === undefined ? hop : `${via}, ${hop}`]);
  return out;
}
