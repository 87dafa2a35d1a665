/**
 * QUIC v1 Initial packets by hand (RFC 9001 §5): tests take a real client Initial that quiche
 * wrote (a genuine ClientHello), open it with the Initial keys, and seal it again with another
 * token, so the server sees a valid Initial whose only difference is the token. Also reads the
 * Retry packets a server answers with.
 */
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';

const INITIAL_SALT = Buffer.from('38762cf7f55934b34d179ae6a4c80cadccbb7f0a', 'hex');
const MIN_INITIAL_DATAGRAM = 1200;

function expandLabel(secret: Buffer, label: string, length: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`);
  const info = Buffer.concat([Buffer.from([length >> 8, length & 0xff, full.length]), full, Buffer.from([0])]);
  // HKDF-Expand for at most one hash block (every length here is ≤ 32).
  return createHmac('sha256', secret)
    .update(Buffer.concat([info, Buffer.from([1])]))
    .digest()
    .subarray(0, length);
}

/** The client's Initial keys for a destination connection id. */
function clientKeys(dcid: Uint8Array): { key: Buffer; iv: Buffer; hp: Buffer } {
  const initial = createHmac('sha256', INITIAL_SALT).update(dcid).digest();
  const secret = expandLabel(initial, 'client in', 32);
  return {
    key: expandLabel(secret, 'quic key', 16),
    iv: expandLabel(secret, 'quic iv', 12),
    hp: expandLabel(secret, 'quic hp', 16),
  };
}

function readVarint(b: Buffer, off: number): [number, number] {
  const len = 1 << (b[off] >> 6);
  let v = b[off] & 0x3f;
  for (let i = 1; i < len; i++) v = v * 256 + b[off + i];
  return [v, off + len];
}

function varint(v: number): Buffer {
  if (v < 64) return Buffer.from([v]);
  if (v < 16384) return Buffer.from([0x40 | (v >> 8), v & 0xff]);
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v | 0x80000000);
  return b;
}

function hpMask(hp: Buffer, sample: Buffer): Buffer {
  const c = createCipheriv('aes-128-ecb', hp, null);
  c.setAutoPadding(false);
  return c.update(sample);
}

function nonce(iv: Buffer, pn: number): Buffer {
  const n = Buffer.from(iv);
  for (let i = 0; i < 4; i++) n[11 - i] ^= (pn >>> (8 * i)) & 0xff;
  return n;
}

export interface InitialPacket {
  version: number;
  dcid: Buffer;
  scid: Buffer;
  token: Buffer;
  pn: number;
  /** The decrypted frames. */
  payload: Buffer;
}

/** Opens the first (Initial) packet of a client datagram. */
export function openInitial(datagram: Buffer): InitialPacket {
  const b = Buffer.from(datagram);
  if ((b[0] & 0xf0) !== 0xc0) throw new Error('not an Initial packet');
  const version = b.readUInt32BE(1);
  let off = 5;
  const dcid = b.subarray(off + 1, off + 1 + b[off]);
  off += 1 + b[off];
  const scid = b.subarray(off + 1, off + 1 + b[off]);
  off += 1 + b[off];
  const [tokenLen, afterTokenLen] = readVarint(b, off);
  const token = b.subarray(afterTokenLen, afterTokenLen + tokenLen);
  const [length, pnOffset] = readVarint(b, afterTokenLen + tokenLen);
  const { key, iv, hp } = clientKeys(dcid);
  const mask = hpMask(hp, b.subarray(pnOffset + 4, pnOffset + 20));
  b[0] ^= mask[0] & 0x0f;
  const pnLen = (b[0] & 0x03) + 1;
  let pn = 0;
  for (let i = 0; i < pnLen; i++) {
    b[pnOffset + i] ^= mask[1 + i];
    pn = pn * 256 + b[pnOffset + i];
  }
  const end = pnOffset + length;
  const d = createDecipheriv('aes-128-gcm', key, nonce(iv, pn));
  d.setAAD(b.subarray(0, pnOffset + pnLen));
  d.setAuthTag(b.subarray(end - 16, end));
  const payload = Buffer.concat([d.update(b.subarray(pnOffset + pnLen, end - 16)), d.final()]);
  return { version, dcid: Buffer.from(dcid), scid: Buffer.from(scid), token: Buffer.from(token), pn, payload };
}

/** Seals an Initial packet (4-byte packet number) in a datagram padded to 1,200 bytes. */
export function sealInitial(p: InitialPacket): Buffer {
  const pnLen = 4;
  const head = Buffer.concat([
    Buffer.from([0xc0 | (pnLen - 1)]),
    Buffer.from([p.version >>> 24, (p.version >>> 16) & 0xff, (p.version >>> 8) & 0xff, p.version & 0xff]),
    Buffer.from([p.dcid.length]),
    p.dcid,
    Buffer.from([p.scid.length]),
    p.scid,
    varint(p.token.length),
    p.token,
  ]);
  // PADDING frames (zero bytes) keep the datagram at the minimum client Initial size.
  const fixed = head.length + 2 + pnLen + 16;
  const payload = Buffer.concat([
    p.payload,
    Buffer.alloc(Math.max(0, MIN_INITIAL_DATAGRAM - fixed - p.payload.length)),
  ]);
  const length = pnLen + payload.length + 16;
  const pnBytes = Buffer.alloc(4);
  pnBytes.writeUInt32BE(p.pn >>> 0);
  const header = Buffer.concat([head, Buffer.from([0x40 | (length >> 8), length & 0xff]), pnBytes]);
  const { key, iv, hp } = clientKeys(p.dcid);
  const c = createCipheriv('aes-128-gcm', key, nonce(iv, p.pn));
  c.setAAD(header);
  const sealed = Buffer.concat([c.update(payload), c.final(), c.getAuthTag()]);
  const out = Buffer.concat([header, sealed]);
  const pnOffset = header.length - pnLen;
  const mask = hpMask(hp, out.subarray(pnOffset + 4, pnOffset + 20));
  out[0] ^= mask[0] & 0x0f;
  for (let i = 0; i < pnLen; i++) out[pnOffset + i] ^= mask[1 + i];
  return out;
}

/** The packet type of a long-header datagram (0 Initial, 1 0-RTT, 2 Handshake, 3 Retry), or null for a short header. */
export function longHeaderType(datagram: Buffer): number | null {
  return datagram[0] & 0x80 ? (datagram[0] >> 4) & 0x03 : null;
}

/** The source connection id and token of a Retry packet (RFC 9000 §17.2.5). */
export function parseRetry(datagram: Buffer): { scid: Buffer; token: Buffer } {
  if (longHeaderType(datagram) !== 3) throw new Error('not a Retry packet');
  let off = 5;
  off += 1 + datagram[off];
  const scid = datagram.subarray(off + 1, off + 1 + datagram[off]);
  off += 1 + datagram[off];
  return { scid: Buffer.from(scid), token: Buffer.from(datagram.subarray(off, datagram.length - 16)) };
}
