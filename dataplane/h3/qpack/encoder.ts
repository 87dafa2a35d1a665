/**
 * QPACK field section encoder (RFC 9204 §4.5) that never touches the dynamic table: every field
 * line is a static-table reference or a literal, so the peer decodes it with no encoder-stream
 * state and the stream can never block.
 */
import { huffmanEncode, huffmanEncodedLength } from './huffman.js';
import { encodeInteger, integerLength } from './integer.js';
import { staticNameEntry } from './static-table.js';

const INDEXED = 0;
const NAME_REF = 1;
const LITERAL = 2;

// Per-field plan from the sizing pass, reused across calls: [kind, static index, name Huffman
// length, value Huffman length], where a Huffman length of -1 means the string is sent raw.
let plan = new Int32Array(4 * 64);

/** Huffman length of `s` when it is strictly shorter than the raw bytes, else -1. */
function huffmanLengthIfShorter(s: string): number {
  if (s.length === 0) return -1;
  const h = huffmanEncodedLength(s);
  return h < s.length ? h : -1;
}

/** Encoded size of a string literal with a `prefixBits`-bit length prefix. */
function stringSize(s: string, prefixBits: number, huffmanLength: number): number {
  const len = huffmanLength >= 0 ? huffmanLength : s.length;
  return integerLength(len, prefixBits) + len;
}

/** Writes a string literal; its H bit sits just above the `prefixBits`-bit length. */
function writeString(
  dst: Uint8Array,
  off: number,
  s: string,
  prefixBits: number,
  flags: number,
  huffmanLength: number,
): number {
  if (huffmanLength >= 0) {
    off = encodeInteger(dst, off, huffmanLength, prefixBits, flags | (1 << prefixBits));
    return huffmanEncode(s, dst, off);
  }
  off = encodeInteger(dst, off, s.length, prefixBits, flags);
  // Uint8Array stores the low 8 bits, i.e. the latin1 byte of each char.
  for (let i = 0; i < s.length; i++) dst[off++] = s.charCodeAt(i);
  return off;
}

/**
 * Encodes [name, value] pairs (latin1 strings, names already lowercase) as one QPACK field section
 * with Required Insert Count 0 and Base 0. Exact static matches become one Indexed Field Line,
 * static name matches a Literal With Name Reference, anything else a Literal With Literal Name.
 */
export function encodeFieldSection(fields: ReadonlyArray<readonly [string, string]>): Uint8Array {
  if (plan.length < 4 * fields.length) plan = new Int32Array(4 * Math.max(fields.length, plan.length >>> 1));
  const p = plan;
  // Pass 1: choose representations and compute the exact output size.
  let total = 2;
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i];
    const name = field[0];
    const value = field[1];
    const k = 4 * i;
    const entry = staticNameEntry(name);
    const exact = entry?.values.get(value);
    if (exact !== undefined) {
      p[k] = INDEXED;
      p[k + 1] = exact;
      total += integerLength(exact, 6);
      continue;
    }
    const valueHuffman = huffmanLengthIfShorter(value);
    p[k + 3] = valueHuffman;
    total += stringSize(value, 7, valueHuffman);
    if (entry) {
      p[k] = NAME_REF;
      p[k + 1] = entry.index;
      total += integerLength(entry.index, 4);
    } else {
      const nameHuffman = huffmanLengthIfShorter(name);
      p[k] = LITERAL;
      p[k + 2] = nameHuffman;
      total += stringSize(name, 3, nameHuffman);
    }
  }

  // Pass 2: write. The two zero bytes are Required Insert Count 0 and Sign 0, Delta Base 0.
  const out = new Uint8Array(total);
  let off = 2;
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i];
    const name = field[0];
    const value = field[1];
    const k = 4 * i;
    const kind = p[k];
    if (kind === INDEXED) {
      // 1 T=1 index(6+)
      off = encodeInteger(out, off, p[k + 1], 6, 0xc0);
      continue;
    }
    if (kind === NAME_REF) {
      // 0 1 N=0 T=1 index(4+)
      off = encodeInteger(out, off, p[k + 1], 4, 0x50);
    } else {
      // 0 0 1 N=0 H length(3+)
      off = writeString(out, off, name, 3, 0x20, p[k + 2]);
    }
    off = writeString(out, off, value, 7, 0x00, p[k + 3]);
  }
  return out;
}
