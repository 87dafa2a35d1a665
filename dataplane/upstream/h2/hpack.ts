/**
 * HPACK (RFC 7541) for the upstream HTTP/2 client. The Huffman code and the prefixed integers
 * are QPACK's (dataplane/h3/qpack), which share them with HPACK by design.
 *
 * Decoding keeps the dynamic table the backend fills (bounded by the table size we announce).
 * Encoding never inserts: requests go out as static-table references and literals "without
 * indexing", so the backend's table size setting never matters to us and a request's header
 * block depends on nothing sent before it.
 */
import { H3Error } from '../../h3/errors.js';
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from '../../h3/qpack/huffman.js';
import { type Cursor, decodeInteger, encodeInteger } from '../../h3/qpack/integer.js';

/** RFC 7541 Appendix A. Index 1 is element 0. */
export const HPACK_STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

const STATIC_COUNT = HPACK_STATIC_TABLE.length;
/** name → first static index with that name. */
const STATIC_NAME = new Map<string, number>();
/** name → value → index of the static entries with a value (no key string built per lookup). */
const STATIC_EXACT = new Map<string, Map<string, number>>();
HPACK_STATIC_TABLE.forEach(([name, value], i) => {
  if (!STATIC_NAME.has(name)) STATIC_NAME.set(name, i + 1);
  if (value === '') return;
  let values = STATIC_EXACT.get(name);
  if (!values) STATIC_EXACT.set(name, (values = new Map()));
  values.set(value, i + 1);
});

/** RFC 7541 §4.1: an entry's size is its name and value lengths plus 32. */
const ENTRY_OVERHEAD = 32;

/** A header block the decoder cannot read: a connection error COMPRESSION_ERROR (RFC 9113 §4.3). */
export class CompressionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CompressionError';
  }
}

/** A header list past the size we announced (SETTINGS_MAX_HEADER_LIST_SIZE). */
export class HeaderListTooLarge extends Error {
  constructor(limit: number) {
    super(`header list larger than ${limit} bytes`);
    this.name = 'HeaderListTooLarge';
  }
}

export class HpackDecoder {
  private readonly entries: Array<readonly [string, string]> = [];
  private size = 0;
  private capacity: number;

  /**
   * `maxTableSize`: the SETTINGS_HEADER_TABLE_SIZE we announced, the most a size update may ask
   * for. `maxHeaderListSize`: SETTINGS_MAX_HEADER_LIST_SIZE we announced.
   */
  constructor(
    private readonly maxTableSize: number,
    private readonly maxHeaderListSize: number,
  ) {
    this.capacity = maxTableSize;
  }

  /** Entries in the dynamic table (tests). */
  get tableLength(): number {
    return this.entries.length;
  }

  /**
   * Decodes one complete header block into [name, value] pairs (latin1, wire order, unvalidated).
   * The table is updated even when the list is too large, so later blocks still decode; the
   * caller then fails the one stream (HeaderListTooLarge) or the connection (CompressionError).
   */
  decode(block: Uint8Array): Array<[string, string]> {
    try {
      return this.decodeBlock(block);
    } catch (e) {
      if (e instanceof H3Error) throw new CompressionError(e.message);
      throw e;
    }
  }

  private decodeBlock(block: Uint8Array): Array<[string, string]> {
    const end = block.length;
    const cur: Cursor = { pos: 0 };
    const view = Buffer.from(block.buffer, block.byteOffset, block.byteLength);
    const fields: Array<[string, string]> = [];
    let listSize = 0;
    let tooLarge = false;
    let fieldSeen = false;
    while (cur.pos < end) {
      const b = block[cur.pos] as number;
      if (b & 0x80) {
        // Indexed header field: 1 index(7+).
        const index = decodeInteger(block, cur, end, 7);
        if (index === 0) throw new CompressionError('indexed header field with index 0');
        const [name, value] = this.entry(index);
        fieldSeen = true;
        listSize += name.length + value.length + ENTRY_OVERHEAD;
        if (listSize > this.maxHeaderListSize) tooLarge = true;
        else fields.push([name, value]);
        continue;
      }
      if ((b & 0xe0) === 0x20) {
        // Dynamic table size update: 001 size(5+), only before the first field (§4.2).
        if (fieldSeen) throw new CompressionError('dynamic table size update after a header field');
        const size = decodeInteger(block, cur, end, 5);
        if (size > this.maxTableSize) {
          throw new CompressionError(`table size update to ${size} above the ${this.maxTableSize} announced`);
        }
        this.capacity = size;
        this.evict(0);
        continue;
      }
      // Literals: with incremental indexing 01 index(6+); without indexing 0000 index(4+);
      // never indexed 0001 index(4+). Index 0: the name follows as a string.
      const indexing = (b & 0xc0) === 0x40;
      const nameIndex = decodeInteger(block, cur, end, indexing ? 6 : 4);
      const name = nameIndex === 0 ? this.readString(block, view, cur) : (this.entry(nameIndex)[0] as string);
      const value = this.readString(block, view, cur);
      fieldSeen = true;
      if (indexing) this.insert(name, value);
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize > this.maxHeaderListSize) tooLarge = true;
      else fields.push([name, value]);
    }
    if (tooLarge) throw new HeaderListTooLarge(this.maxHeaderListSize);
    return fields;
  }

  private readString(block: Uint8Array, view: Buffer, cur: Cursor): string {
    const end = block.length;
    if (cur.pos >= end) throw new CompressionError('truncated string literal');
    const huffman = ((block[cur.pos] as number) & 0x80) !== 0;
    const len = decodeInteger(block, cur, end, 7);
    if (len > end - cur.pos) throw new CompressionError('string literal runs past the end of the header block');
    const start = cur.pos;
    cur.pos = start + len;
    if (len === 0) return '';
    return huffman ? huffmanDecode(block, start, start + len) : view.toString('latin1', start, start + len);
  }

  private entry(index: number): readonly [string, string] {
    if (index <= STATIC_COUNT) return HPACK_STATIC_TABLE[index - 1] as readonly [string, string];
    const e = this.entries[index - STATIC_COUNT - 1];
    if (!e) throw new CompressionError(`header table index ${index} out of range`);
    return e;
  }

  private insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    // §4.4: an entry larger than the table empties it and is not added.
    this.evict(size);
    if (size > this.capacity) return;
    this.entries.unshift([name, value]);
    this.size += size;
  }

  /** Evicts oldest entries until `room` more bytes fit (or the table is empty). */
  private evict(room: number): void {
    while (this.entries.length > 0 && this.size + room > this.capacity) {
      const [n, v] = this.entries.pop() as readonly [string, string];
      this.size -= n.length + v.length + ENTRY_OVERHEAD;
    }
  }
}

/** A string literal (RFC 7541 §5.2): Huffman-coded when that is shorter. */
function writeString(buf: Buffer, off: number, s: string): number {
  const h = huffmanEncodedLength(s);
  if (h < s.length) {
    off = encodeInteger(buf, off, h, 7, 0x80);
    return huffmanEncode(s, buf, off);
  }
  off = encodeInteger(buf, off, s.length, 7, 0);
  buf.write(s, off, 'latin1');
  return off + s.length;
}

/** Where blocks are encoded before being copied out (grows for a larger block, never shrinks). */
let scratch = Buffer.allocUnsafe(4096);

/**
 * Encodes a header list (names lowercase, pseudo-headers first) without touching any table:
 * exact static matches as indexed fields, everything else as literals without indexing, with a
 * static name reference when there is one. Sensitive fields go out "never indexed" (§7.1.3) so
 * no intermediary compresses them either. One pass into a scratch buffer sized for the worst
 * case (raw literals), then one copy of the bytes written.
 */
export function encodeHeaderBlock(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  // Per field at most: a flag byte, two 5-byte length prefixes, the raw name and value.
  let worst = 0;
  for (const [name, value] of fields) worst += name.length + value.length + 11;
  if (worst > scratch.length) scratch = Buffer.allocUnsafe(Math.max(worst, 2 * scratch.length));
  const buf = scratch;
  let off = 0;
  for (const [name, value] of fields) {
    const exact = STATIC_EXACT.get(name)?.get(value);
    if (exact !== undefined) {
      off = encodeInteger(buf, off, exact, 7, 0x80);
      continue;
    }
    const flags = SENSITIVE.has(name) ? 0x10 : 0;
    const ni = STATIC_NAME.get(name);
    if (ni !== undefined) off = encodeInteger(buf, off, ni, 4, flags);
    else {
      buf[off++] = flags;
      off = writeString(buf, off, name);
    }
    off = writeString(buf, off, value);
  }
  return Buffer.from(buf.subarray(0, off));
}

/** Fields never to be indexed by anyone along the way (RFC 7541 §7.1.3). */
const SENSITIVE = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie']);
