/**
 * Stateless Retry tokens (RFC 9000 §8.1.2–8.1.4). A token is AES-256-GCM under a key that lives
 * only in this process: it carries the client's original destination connection id, the time it
 * was issued and a digest of the client's address and port, and is bound (as associated data) to
 * the connection id the Retry told the client to use next. Pure: key, clock and nonce come from
 * the caller.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * How long a Retry token is accepted. A client echoes it one round trip after the Retry; 10 s
 * covers any real path while keeping a captured token short-lived.
 */
export const RETRY_TOKEN_LIFETIME_MS = 10_000;

/** First byte of every token we mint: tells our Retry tokens from anything else a client sends. */
export const RETRY_TOKEN_MARKER = 0x53;
const NONCE_LEN = 12;
const TAG_LEN = 16;
const MAX_CID_LEN = 20;
const ADDRESS_DIGEST_LEN = 16;
// odcid length, odcid (padded to 20), issue time (ms, float64), address digest
const PLAIN_LEN = 1 + MAX_CID_LEN + 8 + ADDRESS_DIGEST_LEN;
export const RETRY_TOKEN_LEN = 1 + NONCE_LEN + PLAIN_LEN + TAG_LEN;

export interface TokenPeer {
  host: string;
  port: number;
}

export type RetryTokenCheck =
  | { ok: true; odcid: Uint8Array }
  | { ok: false; reason: 'invalid' | 'wrong_address' | 'expired' };

/** A fresh per-process key. */
export function newRetryTokenKey(): Buffer {
  return randomBytes(32);
}

function addressDigest(peer: TokenPeer): Buffer {
  return createHash('sha256').update(`${peer.host}|${peer.port}`).digest().subarray(0, ADDRESS_DIGEST_LEN);
}

/** Whether `token` has the shape of one of our Retry tokens (any other token means "no token"). */
export function isRetryTokenFormat(token: Uint8Array): boolean {
  return token.length === RETRY_TOKEN_LEN && token[0] === RETRY_TOKEN_MARKER;
}

/**
 * Mints the token for a Retry sent to `peer`, which tells the client to use `retryScid` as its
 * next destination id; `odcid` is the destination id of the client's first Initial.
 */
export function mintRetryToken(
  key: Uint8Array,
  peer: TokenPeer,
  retryScid: Uint8Array,
  odcid: Uint8Array,
  nowMs: number,
  nonce: Uint8Array = randomBytes(NONCE_LEN),
): Buffer {
  if (odcid.length > MAX_CID_LEN) throw new RangeError('connection id longer than 20 bytes');
  const plain = Buffer.alloc(PLAIN_LEN);
  plain[0] = odcid.length;
  plain.set(odcid, 1);
  plain.writeDoubleBE(nowMs, 1 + MAX_CID_LEN);
  addressDigest(peer).copy(plain, 1 + MAX_CID_LEN + 8);
  const header = Buffer.from([RETRY_TOKEN_MARKER]);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.concat([header, retryScid]));
  const sealed = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([header, nonce, sealed, cipher.getAuthTag()]);
}

/**
 * Checks a token presented in an Initial from `peer` addressed to `dcid`. Forged tokens, tokens
 * of another process (another key) and tokens used with another destination id fail
 * authentication (`invalid`); a genuine token from another address or port is `wrong_address`.
 */
export function checkRetryToken(
  key: Uint8Array,
  token: Uint8Array,
  peer: TokenPeer,
  dcid: Uint8Array,
  nowMs: number,
  lifetimeMs = RETRY_TOKEN_LIFETIME_MS,
): RetryTokenCheck {
  if (!isRetryTokenFormat(token)) return { ok: false, reason: 'invalid' };
  const t = Buffer.from(token.buffer, token.byteOffset, token.byteLength);
  const nonce = t.subarray(1, 1 + NONCE_LEN);
  const sealed = t.subarray(1 + NONCE_LEN, 1 + NONCE_LEN + PLAIN_LEN);
  const tag = t.subarray(1 + NONCE_LEN + PLAIN_LEN);
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(Buffer.concat([t.subarray(0, 1), dcid]));
    decipher.setAuthTag(tag);
    plain = Buffer.concat([decipher.update(sealed), decipher.final()]);
  } catch {
    return { ok: false, reason: 'invalid' };
  }
  const odcidLen = plain[0];
  if (odcidLen > MAX_CID_LEN) return { ok: false, reason: 'invalid' };
  if (!plain.subarray(1 + MAX_CID_LEN + 8).equals(addressDigest(peer))) return { ok: false, reason: 'wrong_address' };
  const issued = plain.readDoubleBE(1 + MAX_CID_LEN);
  // A token from the future cannot be ours (the clock is monotonic): refuse it like an old one.
  if (!(nowMs - issued <= lifetimeMs && issued <= nowMs)) return { ok: false, reason: 'expired' };
  return { ok: true, odcid: Uint8Array.from(plain.subarray(1, 1 + odcidLen)) };
}
