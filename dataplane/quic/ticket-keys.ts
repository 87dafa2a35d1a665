/**
 * The session-ticket key of the QUIC listener. Tickets let clients resume (and, with
 * `performance.quic_0rtt`, send early data); they are sealed with this key. It belongs to the
 * data plane process, not to a quiche Config, so a config apply that rebuilds the Config keeps
 * every ticket valid. It rotates every TICKET_KEY_ROTATION_MS so that a key (and the resumed
 * sessions it opens) is not usable forever. quiche hands the key to BoringSSL's
 * SSL_CTX_set_tlsext_ticket_keys, which holds one key: a rotation invalidates the tickets issued
 * before it, and those clients make one full handshake (docs/decisions.md).
 */
import { randomBytes } from 'node:crypto';

/** BoringSSL's ticket key: 16 bytes key name, 16 bytes HMAC key, 16 bytes AES key. */
export const TICKET_KEY_BYTES = 48;
/** How long one ticket key is used. */
export const TICKET_KEY_ROTATION_MS = 12 * 60 * 60 * 1000;

export class TicketKeyRotation {
  private key: Uint8Array;
  private since: number;

  constructor(
    now: number,
    private readonly periodMs: number = TICKET_KEY_ROTATION_MS,
    private readonly newKey: () => Uint8Array = () => randomBytes(TICKET_KEY_BYTES),
  ) {
    this.key = newKey();
    this.since = now;
  }

  get current(): Uint8Array {
    return this.key;
  }

  /** A new key once the period has passed since the last one (null: keep the current key). */
  rotateIfDue(now: number): Uint8Array | null {
    if (now - this.since < this.periodMs) return null;
    this.key = this.newKey();
    this.since = now;
    return this.key;
  }
}
