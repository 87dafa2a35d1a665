/**
 * HPACK/QPACK static Huffman code (RFC 7541 §5.2, Appendix B; reused by RFC 9204 §4.1.2).
 * Strings are bytes (latin1). Decoding walks a nibble-at-a-time state machine generated at load.
 */
import { H3, H3Error } from '../errors.js';

// RFC 7541 Appendix B: code for symbol i (0..255, 256 = EOS), right-aligned, and its bit length.
// biome-ignore format: keep the RFC table layout
const CODES = [
  0x1ff8, 0x7fffd8, 0xfffffe2, 0xfffffe3, 0xfffffe4, 0xfffffe5, 0xfffffe6, 0xfffffe7,
  0xfffffe8, 0xffffea, 0x3ffffffc, 0xfffffe9, 0xfffffea, 0x3ffffffd, 0xfffffeb, 0xfffffec,
  0xfffffed, 0xfffffee, 0xfffffef, 0xffffff0, 0xffffff1, 0xffffff2, 0x3ffffffe, 0xffffff3,
  0xffffff4, 0xffffff5, 0xffffff6, 0xffffff7, 0xffffff8, 0xffffff9, 0xffffffa, 0xffffffb,
  0x14, 0x3f8, 0x3f9, 0xffa, 0x1ff9, 0x15, 0xf8, 0x7fa,
  0x3fa, 0x3fb, 0xf9, 0x7fb, 0xfa, 0x16, 0x17, 0x18,
  0x0, 0x1, 0x2, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
  0x1e, 0x1f, 0x5c, 0xfb, 0x7ffc, 0x20, 0xffb, 0x3fc,
  0x1ffa, 0x21, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62,
  0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a,
  0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72,
  0xfc, 0x73, 0xfd, 0x1ffb, 0x7fff0, 0x1ffc, 0x3ffc, 0x22,
  0x7ffd, 0x3, 0x23, 0x4, 0x24, 0x5, 0x25, 0x26,
  0x27, 0x6, 0x74, 0x75, 0x28, 0x29, 0x2a, 0x7,
  0x2b, 0x76, 0x2c, 0x8, 0x9, 0x2d, 0x77, 0x78,
  0x79, 0x7a, 0x7b, 0x7ffe, 0x7fc, 0x3ffd, 0x1ffd, 0xffffffc,
  0xfffe6, 0x3fffd2, 0xfffe7, 0xfffe8, 0x3fffd3, 0x3fffd4, 0x3fffd5, 0x7fffd9,
  0x3fffd6, 0x7fffda, 0x7fffdb, 0x7fffdc, 0x7fffdd, 0x7fffde, 0xffffeb, 0x7fffdf,
  0xffffec, 0xffffed, 0x3fffd7, 0x7fffe0, 0xffffee, 0x7fffe1, 0x7fffe2, 0x7fffe3,
  0x7fffe4, 0x1fffdc, 0x3fffd8, 0x7fffe5, 0x3fffd9, 0x7fffe6, 0x7fffe7, 0xffffef,
  0x3fffda, 0x1fffdd, 0xfffe9, 0x3fffdb, 0x3fffdc, 0x7fffe8, 0x7fffe9, 0x1fffde,
  0x7fffea, 0x3fffdd, 0x3fffde, 0xfffff0, 0x1fffdf, 0x3fffdf, 0x7fffeb, 0x7fffec,
  0x1fffe0, 0x1fffe1, 0x3fffe0, 0x1fffe2, 0x7fffed, 0x3fffe1, 0x7fffee, 0x7fffef,
  0xfffea, 0x3fffe2, 0x3fffe3, 0x3fffe4, 0x7ffff0, 0x3fffe5, 0x3fffe6, 0x7ffff1,
  0x3ffffe0, 0x3ffffe1, 0xfffeb, 0x7fff1, 0x3fffe7, 0x7ffff2, 0x3fffe8, 0x1ffffec,
  0x3ffffe2, 0x3ffffe3, 0x3ffffe4, 0x7ffffde, 0x7ffffdf, 0x3ffffe5, 0xfffff1, 0x1ffffed,
  0x7fff2, 0x1fffe3, 0x3ffffe6, 0x7ffffe0, 0x7ffffe1, 0x3ffffe7, 0x7ffffe2, 0xfffff2,
  0x1fffe4, 0x1fffe5, 0x3ffffe8, 0x3ffffe9, 0xffffffd, 0x7ffffe3, 0x7ffffe4, 0x7ffffe5,
  0xfffec, 0xfffff3, 0xfffed, 0x1fffe6, 0x3fffe9, 0x1fffe7, 0x1fffe8, 0x7ffff3,
  0x3fffea, 0x3fffeb, 0x1ffffee, 0x1ffffef, 0xfffff4, 0xfffff5, 0x3ffffea, 0x7ffff4,
  0x3ffffeb, 0x7ffffe6, 0x3ffffec, 0x3ffffed, 0x7ffffe7, 0x7ffffe8, 0x7ffffe9, 0x7ffffea,
  0x7ffffeb, 0xffffffe, 0x7ffffec, 0x7ffffed, 0x7ffffee, 0x7ffffef, 0x7fffff0, 0x3ffffee,
  0x3fffffff,
];

// biome-ignore format: keep the RFC table layout
const LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

const EOS = 256;

// Decoder states are the 256 internal nodes of the code tree; node 0 is the root. A child entry
// >= 0 is another internal node, < 0 is the leaf -(symbol + 1).
const CHILDREN = new Int32Array(512);
// Per state: 0 = a valid place to stop, 1 = padding longer than 7 bits, 2 = padding not all ones.
const STOP = new Uint8Array(256);
// TABLE[state << 4 | nibble]: next state (bits 0-7), the emitted symbol (bits 8-15), EMIT when a
// symbol was emitted (codes are 5+ bits long, so a nibble completes at most one), FAIL for EOS.
const TABLE = new Uint32Array(256 * 16);
const EMIT = 1 << 16;
const FAIL = 1 << 17;

function buildDecoder(): void {
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const code = CODES[sym];
    const len = LENGTHS[sym];
    let node = 0;
    for (let i = len - 1; i > 0; i--) {
      const slot = 2 * node + ((code >>> i) & 1);
      if (CHILDREN[slot] === 0) CHILDREN[slot] = nodes++;
      node = CHILDREN[slot];
    }
    CHILDREN[2 * node + (code & 1)] = -(sym + 1);
  }
  // Depth and all-ones-ness of each node decide whether input may end there (§5.2 padding rules).
  const depth = new Uint8Array(256);
  const ones = new Uint8Array(256);
  ones[0] = 1;
  // Children are numbered after their parents, so one forward pass visits parents first.
  for (let node = 0; node < nodes; node++) {
    for (let bit = 0; bit < 2; bit++) {
      const child = CHILDREN[2 * node + bit];
      if (child <= 0) continue;
      depth[child] = depth[node] + 1;
      ones[child] = ones[node] & bit;
    }
    STOP[node] = !ones[node] ? 2 : depth[node] > 7 ? 1 : 0;
  }
  for (let state = 0; state < nodes; state++) {
    for (let nib = 0; nib < 16; nib++) {
      let node = state;
      let entry = 0;
      for (let i = 3; i >= 0; i--) {
        const child = CHILDREN[2 * node + ((nib >>> i) & 1)];
        if (child >= 0) {
          node = child;
        } else if (child === -(EOS + 1)) {
          entry = FAIL;
          break;
        } else {
          entry = ((-child - 1) << 8) | EMIT;
          node = 0;
        }
      }
      TABLE[(state << 4) | nib] = entry | node;
    }
  }
}
buildDecoder();

/** Length in bytes of the Huffman encoding of `src` (latin1 string or bytes), padding included. */
export function huffmanEncodedLength(src: Uint8Array | string): number {
  let bits = 0;
  if (typeof src === 'string') {
    for (let i = 0; i < src.length; i++) bits += LENGTHS[src.charCodeAt(i) & 0xff];
  } else {
    for (let i = 0; i < src.length; i++) bits += LENGTHS[src[i]];
  }
  return (bits + 7) >>> 3;
}

/**
 * Writes the Huffman encoding of `src` into `dst` at `offset` and returns the offset after it.
 * The caller sizes `dst` with huffmanEncodedLength. String chars are taken as latin1 (low 8 bits).
 */
export function huffmanEncode(src: Uint8Array | string, dst: Uint8Array, offset: number): number {
  const str = typeof src === 'string' ? src : null;
  const bytes = typeof src === 'string' ? null : src;
  const n = src.length;
  // `acc` holds `pending` (< 8) bits not yet written, in its low bits.
  let acc = 0;
  let pending = 0;
  let off = offset;
  for (let i = 0; i < n; i++) {
    const sym = str !== null ? str.charCodeAt(i) & 0xff : bytes![i];
    let code = CODES[sym];
    let len = LENGTHS[sym];
    if (len > 24) {
      // Emit the top bits first so the accumulator never needs more than 31 bits.
      const top = len - 24;
      acc = (acc << top) | (code >>> 24);
      pending += top;
      code &= 0xffffff;
      len = 24;
      if (pending >= 8) {
        pending -= 8;
        dst[off++] = acc >>> pending;
        acc &= (1 << pending) - 1;
      }
    }
    acc = (acc << len) | code;
    pending += len;
    while (pending >= 8) {
      pending -= 8;
      dst[off++] = acc >>> pending;
    }
    acc &= (1 << pending) - 1;
  }
  // Pad with the most significant bits of EOS, i.e. ones (§5.2).
  if (pending > 0) dst[off++] = (acc << (8 - pending)) | (0xff >>> pending);
  return off;
}

// Reused output buffer; decoded strings are copied out as latin1 strings.
let scratch = Buffer.allocUnsafe(1024);

/** Decodes the Huffman-coded bytes `src[start..end)` into a latin1 string. */
export function huffmanDecode(src: Uint8Array, start: number, end: number): string {
  // The shortest code is 5 bits, so n input bytes decode to at most 8n/5 symbols.
  const max = Math.floor(((end - start) * 8) / 5);
  if (scratch.length < max) scratch = Buffer.allocUnsafe(Math.max(max, scratch.length * 2));
  const out = scratch;
  let n = 0;
  let state = 0;
  for (let i = start; i < end; i++) {
    const b = src[i];
    const hi = TABLE[(state << 4) | (b >>> 4)];
    if (hi & EMIT) out[n++] = hi >>> 8;
    const lo = TABLE[((hi & 0xff) << 4) | (b & 15)];
    if (lo & EMIT) out[n++] = lo >>> 8;
    if ((hi | lo) & FAIL) throw new H3Error(H3.QPACK_DECOMPRESSION_FAILED, 'Huffman string contains EOS');
    state = lo & 0xff;
  }
  const stop = STOP[state];
  if (stop === 1) throw new H3Error(H3.QPACK_DECOMPRESSION_FAILED, 'Huffman padding longer than 7 bits');
  if (stop === 2) throw new H3Error(H3.QPACK_DECOMPRESSION_FAILED, 'Huffman padding is not all ones');
  return out.toString('latin1', 0, n);
}
