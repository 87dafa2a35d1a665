/**
 * What to do with one incoming datagram, decided from its header alone (no socket, no state
 * beyond "is this connection id known"), so every hostile case is unit-testable.
 */
import { quiche } from './quiche.js';

export type DatagramVerdict =
  | { kind: 'known'; key: string }
  | { kind: 'new'; dcid: Uint8Array; scid: Uint8Array; token: Uint8Array; version: number }
  | { kind: 'negotiate'; scid: Uint8Array; dcid: Uint8Array }
  /** A connection id of another worker (workers/steering.ts): hand the datagram over. */
  | { kind: 'steer'; worker: number }
  | { kind: 'drop'; reason: DropReason };

export type DropReason =
  | 'garbage'
  | 'unknown_connection'
  | 'short_initial'
  | 'short_dcid'
  | 'version_negotiation'
  | 'unsupported_version_small'
  /** From UDP port 0: spoofed (no socket sends from it), and no answer can be sent there. */
  | 'source_port_zero';

/** RFC 9000 §7.2: a client's first destination connection id is at least 8 bytes. */
const MIN_INITIAL_DCID_LEN = 8;
const EMPTY = new Uint8Array(0);

/** The length of the destination id in a short header: the length of every id Spooky issues. */
const ID_LEN: number = quiche.MAX_CONN_ID_LEN;

const bufferOf = (b: Uint8Array): Buffer =>
  Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);

export function connectionKey(id: Uint8Array): string {
  return bufferOf(id).toString('latin1');
}

/**
 * `steerTo`, when workers share the port: the worker owning a destination id this endpoint does
 * not know (null: this one, or none). Never asked for Initial packets, whose id the client chose.
 */
export function classifyDatagram(
  msg: Uint8Array,
  isServer: boolean,
  known: (key: string) => boolean,
  steerTo?: (dcid: Uint8Array) => number | null,
): DatagramVerdict {
  // The common case, a short-header packet of an established connection, without the native
  // header parse: every id Spooky issues is ID_LEN long, so the destination id is bytes 1–20
  // (RFC 9000 §17.3.1), exactly what the parse below would read. Anything else takes the parse.
  if (msg.length > ID_LEN && ((msg[0] as number) & 0x80) === 0) {
    const key = bufferOf(msg).toString('latin1', 1, 1 + ID_LEN);
    if (known(key)) return { kind: 'known', key };
  }
  let hdr: ReturnType<typeof quiche.Header.fromSlice>;
  try {
    hdr = quiche.Header.fromSlice(msg, quiche.MAX_CONN_ID_LEN);
  } catch {
    return { kind: 'drop', reason: 'garbage' };
  }
  const key = connectionKey(hdr.dcid);
  if (known(key)) return { kind: 'known', key };
  if (!isServer) return { kind: 'drop', reason: 'unknown_connection' };
  const T = quiche.Type;
  if (steerTo && hdr.ty !== T.Initial) {
    const worker = steerTo(hdr.dcid);
    if (worker !== null) return { kind: 'steer', worker };
  }
  if (hdr.ty === T.Short) return { kind: 'drop', reason: 'unknown_connection' };
  if (hdr.ty === T.VersionNegotiation) return { kind: 'drop', reason: 'version_negotiation' };
  if (!quiche.versionIsSupported(hdr.version)) {
    // Answer only full-size datagrams so a spoofed source cannot use us as an amplifier.
    if (msg.length < quiche.MIN_CLIENT_INITIAL_LEN) return { kind: 'drop', reason: 'unsupported_version_small' };
    return { kind: 'negotiate', scid: hdr.scid, dcid: hdr.dcid };
  }
  // 0-RTT, Handshake or Retry packets for a connection we do not know are unusable.
  if (hdr.ty !== T.Initial) return { kind: 'drop', reason: 'unknown_connection' };
  if (msg.length < quiche.MIN_CLIENT_INITIAL_LEN) return { kind: 'drop', reason: 'short_initial' };
  if (hdr.dcid.length < MIN_INITIAL_DCID_LEN) return { kind: 'drop', reason: 'short_dcid' };
  return { kind: 'new', dcid: hdr.dcid, scid: hdr.scid, token: hdr.token ?? EMPTY, version: hdr.version };
}
