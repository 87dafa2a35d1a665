/**
 * QUIC variable-length integers (RFC 9000 §16). Values are JS numbers: 2^62-1 exceeds 2^53, but
 * every value Spooky acts on (lengths, ids, settings) fits; larger ones decode approximately and
 * are rejected by the caller's own limits.
 */

/** Bytes needed to encode `v`. */
export function varintLength(v: number): 1 | 2 | 4 | 8 {
  if (v < 0x40) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x40000000) return 4;
  return 8;
}

/** Writes `v` at `off`; returns the offset after it. The caller sizes `buf` with varintLength. */
export function writeVarint(buf: Uint8Array, off: number, v: number): number {
  if (v < 0x40) {
    buf[off] = v;
    return off + 1;
  }
  if (v < 0x4000) {
    buf[off] = 0x40 | (v >>> 8);
    buf[off + 1] = v & 0xff;
    return off + 2;
  }
  if (v < 0x40000000) {
    buf[off] = 0x80 | (v >>> 24);
    buf[off + 1] = (v >>> 16) & 0xff;
    buf[off + 2] = (v >>> 8) & 0xff;
    buf[off + 3] = v & 0xff;
    return off + 4;
  }
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint out of range: ${v}`);
  const hi = Math.floor(v / 0x100000000);
  const lo = v >>> 0;
  buf[off] = 0xc0 | (hi >>> 24);
  buf[off + 1] = (hi >>> 16) & 0xff;
  buf[off + 2] = (hi >>> 8) & 0xff;
  buf[off + 3] = hi & 0xff;
  buf[off + 4] = lo >>> 24;
  buf[off + 5] = (lo >>> 16) & 0xff;
  buf[off + 6] = (lo >>> 8) & 0xff;
  buf[off + 7] = lo & 0xff;
  return off + 8;
}

/** Encodes one varint into a new buffer. */
export function encodeVarint(v: number): Uint8Array {
  const out = new Uint8Array(varintLength(v));
  writeVarint(out, 0, v);
  return out;
}

/**
 * Reads a varint at `off` within `buf[0..end)`. Returns the value and sets `next` on the cursor,
 * or returns -1 when the bytes are incomplete (the caller waits for more).
 */
export function readVarint(buf: Uint8Array, off: number, end: number, cursor: { next: number }): number {
  if (off >= end) return -1;
  const first = buf[off];
  const len = 1 << (first >>> 6);
  if (off + len > end) return -1;
  let v = first & 0x3f;
  for (let i = 1; i < len; i++) v = v * 256 + buf[off + i];
  cursor.next = off + len;
  return v;
}
