/**
 * QPACK field section decoder (RFC 9204 §4.5) for a peer told QPACK_MAX_TABLE_CAPACITY = 0 and
 * QPACK_BLOCKED_STREAMS = 0: only static-table references and literals can be valid, so any
 * dynamic-table reference is a QPACK_DECOMPRESSION_FAILED connection error.
 */
import { FieldSectionTooLarge, H3, H3Error } from '../errors.js';
import { huffmanDecode } from './huffman.js';
import { type Cursor, decodeInteger } from './integer.js';
import { STATIC_TABLE } from './static-table.js';

// RFC 9114 §4.2.2: each field line counts its name and value lengths plus 32.
const FIELD_OVERHEAD = 32;

function fail(message: string): never {
  throw new H3Error(H3.QPACK_DECOMPRESSION_FAILED, message);
}

function staticEntry(index: number): readonly [string, string] {
  if (index >= STATIC_TABLE.length) fail(`static table index ${index} out of range`);
  return STATIC_TABLE[index];
}

/**
 * Reads a string literal (RFC 9204 §4.1.2) whose H bit sits just above a `prefixBits`-bit length.
 * Throws FieldSectionTooLarge before decoding when even the shortest possible result would push
 * `size` past `limit`, so a huge declared length never allocates a huge string.
 */
function readString(
  block: Uint8Array,
  view: Buffer,
  cur: Cursor,
  prefixBits: number,
  size: number,
  limit: number,
): string {
  const end = block.length;
  if (cur.pos >= end) fail('truncated string literal');
  const huffman = (block[cur.pos] & (1 << prefixBits)) !== 0;
  const len = decodeInteger(block, cur, end, prefixBits);
  if (len > end - cur.pos) fail('string literal runs past the end of the field section');
  // The longest code is 30 bits, so a Huffman string of len bytes decodes to at least 8*len/30.
  const least = huffman ? Math.floor((len * 8) / 30) : len;
  if (size + least > limit) throw new FieldSectionTooLarge(size + least, limit);
  const start = cur.pos;
  cur.pos = start + len;
  if (len === 0) return '';
  return huffman ? huffmanDecode(block, start, start + len) : view.toString('latin1', start, start + len);
}

/**
 * Decodes one encoded field section (the payload of a HEADERS frame) into [name, value] pairs,
 * as latin1 strings in wire order, neither lowercased nor validated. Throws H3Error
 * QPACK_DECOMPRESSION_FAILED for malformed input or dynamic-table references, and
 * FieldSectionTooLarge once the RFC 9114 §4.2.2 size exceeds `maxFieldSectionSize`.
 */
export function decodeFieldSection(block: Uint8Array, maxFieldSectionSize: number): Array<[string, string]> {
  const end = block.length;
  const cur: Cursor = { pos: 0 };
  // Encoded Required Insert Count: nonzero means the section depends on dynamic table state.
  if (decodeInteger(block, cur, end, 8) !== 0) fail('field section references the dynamic table');
  if (cur.pos >= end) fail('truncated field section prefix');
  // Base = 0 - Delta Base - 1 would be negative (§4.5.1.2); with S = 0 any Base is harmless.
  if (block[cur.pos] & 0x80) fail('field section prefix has a negative Base');
  decodeInteger(block, cur, end, 7);

  const view = Buffer.from(block.buffer, block.byteOffset, block.byteLength);
  const limit = maxFieldSectionSize;
  const fields: Array<[string, string]> = [];
  let size = 0;
  while (cur.pos < end) {
    const b = block[cur.pos];
    let name: string;
    if (b & 0x80) {
      // Indexed Field Line: 1 T index(6+).
      if ((b & 0x40) === 0) fail('indexed field line references the dynamic table');
      const entry = staticEntry(decodeInteger(block, cur, end, 6));
      size += entry[0].length + entry[1].length + FIELD_OVERHEAD;
      if (size > limit) throw new FieldSectionTooLarge(size, limit);
      fields.push([entry[0], entry[1]]);
      continue;
    }
    if (b & 0x40) {
      // Literal Field Line with Name Reference: 0 1 N T index(4+). N is irrelevant to a decoder.
      if ((b & 0x10) === 0) fail('literal field line references a dynamic table name');
      name = staticEntry(decodeInteger(block, cur, end, 4))[0];
    } else if (b & 0x20) {
      // Literal Field Line with Literal Name: 0 0 1 N H length(3+).
      name = readString(block, view, cur, 3, size + FIELD_OVERHEAD, limit);
    } else if (b & 0x10) {
      fail('indexed field line with post-base index references the dynamic table');
    } else {
      fail('literal field line with post-base name reference references the dynamic table');
    }
    size += name.length + FIELD_OVERHEAD;
    if (size > limit) throw new FieldSectionTooLarge(size, limit);
    const value = readString(block, view, cur, 7, size, limit);
    size += value.length;
    if (size > limit) throw new FieldSectionTooLarge(size, limit);
    fields.push([name, value]);
  }
  return fields;
}
