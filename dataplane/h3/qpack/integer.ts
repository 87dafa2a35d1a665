/**
 * Prefixed integers (RFC 7541 §5.1, used by RFC 9204 §4.1.1): the value starts in the low
 * `prefix` bits of a byte whose high bits carry flags, and continues in 7-bit groups.
 */
import { H3, H3Error } from '../errors.js';

/** A read position within a buffer, advanced by the decoding functions. */
export interface Cursor {
  pos: number;
}

// 8 continuation bytes carry 56 bits, already more than a safe integer; more is only padding.
const MAX_CONTINUATION = 8;

function fail(message: string): never {
  throw new H3Error(H3.QPACK_DECOMPRESSION_FAILED, message);
}

/** Bytes needed to encode `value` with a `prefix`-bit prefix. */
export function integerLength(value: number, prefix: number): number {
  const max = (1 << prefix) - 1;
  if (value < max) return 1;
  let v = value - max;
  let n = 2;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/**
 * Writes `value` at `off` with an `n`-bit prefix (1..8); `flags` fills the bits above the
 * prefix. Returns the offset after it. The caller sizes `buf` with integerLength.
 */
export function encodeInteger(buf: Uint8Array, off: number, value: number, n: number, flags: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`prefixed integer out of range: ${value}`);
  }
  const max = (1 << n) - 1;
  if (value < max) {
    buf[off] = flags | value;
    return off + 1;
  }
  buf[off++] = flags | max;
  let v = value - max;
  // Bit operations are exact below 2^31; above that fall back to division.
  while (v >= 0x80000000) {
    buf[off++] = 0x80 | (v % 128);
    v = Math.floor(v / 128);
  }
  while (v >= 128) {
    buf[off++] = 0x80 | (v & 0x7f);
    v >>>= 7;
  }
  buf[off++] = v;
  return off;
}

/**
 * Reads an integer with a `prefix`-bit prefix starting at `cursor.pos` (the flag bits of the
 * first byte are ignored) within `src[..end)`, and advances the cursor past it. Truncated,
 * overlong or unsafe (> 2^53 - 1) encodings throw QPACK_DECOMPRESSION_FAILED: a field section
 * arrives whole, so running out of bytes is an error, not a reason to wait.
 */
export function decodeInteger(src: Uint8Array, cursor: Cursor, end: number, prefix: number): number {
  let pos = cursor.pos;
  if (pos >= end) fail('truncated prefixed integer');
  const max = (1 << prefix) - 1;
  let value = src[pos++] & max;
  if (value < max) {
    cursor.pos = pos;
    return value;
  }
  let scale = 1;
  for (let i = 0; i < MAX_CONTINUATION; i++) {
    if (pos >= end) fail('truncated prefixed integer');
    const b = src[pos++];
    // Rounding is monotonic, so an unsafe true sum never rounds down to a safe one.
    value += (b & 0x7f) * scale;
    if (value > Number.MAX_SAFE_INTEGER) fail('prefixed integer too large');
    if ((b & 0x80) === 0) {
      cursor.pos = pos;
      return value;
    }
    scale *= 128;
  }
  return fail('prefixed integer has too many continuation bytes');
}
