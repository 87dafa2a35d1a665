import assert from 'node:assert/strict';
import { test } from 'node:test';
import { H3, H3Error } from '../errors.js';
import { type Cursor, decodeInteger, encodeInteger, integerLength } from './integer.js';

const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function encode(value: number, prefixBits: number, flags = 0): Uint8Array {
  const out = new Uint8Array(integerLength(value, prefixBits));
  assert.equal(encodeInteger(out, 0, value, prefixBits, flags), out.length);
  return out;
}

function decode(bytes: number[] | Uint8Array, prefixBits: number): [number, number] {
  const src = Uint8Array.from(bytes);
  const cur: Cursor = { pos: 0 };
  const v = decodeInteger(src, cur, src.length, prefixBits);
  return [v, cur.pos];
}

function decompressionFailed(e: unknown): boolean {
  return e instanceof H3Error && e.code === H3.QPACK_DECOMPRESSION_FAILED;
}

test('RFC 7541 C.1.1: 10 with a 5-bit prefix', () => {
  assert.equal(toHex(encode(10, 5)), '0a');
  assert.deepEqual(decode([0x0a], 5), [10, 1]);
});

test('RFC 7541 C.1.2: 1337 with a 5-bit prefix', () => {
  assert.equal(toHex(encode(1337, 5)), '1f9a0a');
  assert.deepEqual(decode([0x1f, 0x9a, 0x0a], 5), [1337, 3]);
});

test('RFC 7541 C.1.3: 42 with an 8-bit prefix', () => {
  assert.equal(toHex(encode(42, 8)), '2a');
  assert.deepEqual(decode([0x2a], 8), [42, 1]);
});

test('flag bits are kept when encoding and ignored when decoding', () => {
  assert.equal(toHex(encode(10, 5, 0xe0)), 'ea');
  assert.equal(toHex(encode(1337, 5, 0xa0)), 'bf9a0a');
  assert.deepEqual(decode([0xea], 5), [10, 1]);
  assert.deepEqual(decode([0xbf, 0x9a, 0x0a], 5), [1337, 3]);
});

test('values round-trip for every prefix size', () => {
  const values = [0, 1, 6, 7, 8, 30, 31, 62, 63, 64, 126, 127, 128, 254, 255, 256, 1337, 16383, 16384, 65535];
  values.push(2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32 + 5, 2 ** 40 + 123, Number.MAX_SAFE_INTEGER);
  for (let prefix = 1; prefix <= 8; prefix++) {
    for (const v of values) {
      const bytes = encode(v, prefix);
      assert.deepEqual(decode(bytes, prefix), [v, bytes.length], `${v} with a ${prefix}-bit prefix`);
    }
  }
});

test('decoding starts at the cursor and stops at the end of the integer', () => {
  const src = Uint8Array.from([0xff, 0x1f, 0x9a, 0x0a, 0x77]);
  const cur: Cursor = { pos: 1 };
  assert.equal(decodeInteger(src, cur, src.length, 5), 1337);
  assert.equal(cur.pos, 4);
});

test('truncated integers fail', () => {
  assert.throws(() => decode([], 5), decompressionFailed);
  assert.throws(() => decode([0x1f], 5), decompressionFailed);
  assert.throws(() => decode([0x1f, 0x9a], 5), decompressionFailed);
  // The end bound is honoured even when the buffer goes on.
  const src = Uint8Array.from([0x1f, 0x9a, 0x0a]);
  assert.throws(() => decodeInteger(src, { pos: 0 }, 2, 5), decompressionFailed);
});

test('values above 2^53 - 1 fail', () => {
  const bytes = Array.from(encode(Number.MAX_SAFE_INTEGER, 8));
  assert.deepEqual(decode(bytes, 8), [Number.MAX_SAFE_INTEGER, bytes.length]);
  // Eight continuation bytes of all ones: 255 + 2^56 - 1.
  assert.throws(() => decode([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], 8), decompressionFailed);
});

test('more than 8 continuation bytes fail', () => {
  // Zero-valued continuation bytes keep the value small but the encoding is absurdly long.
  assert.deepEqual(decode([0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], 5), [31, 9]);
  const nine = [0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
  assert.throws(() => decode(nine, 5), decompressionFailed);
});

test('encoding rejects negative and non-integer values', () => {
  assert.throws(() => encode(-1, 5), RangeError);
  assert.throws(() => encodeInteger(new Uint8Array(4), 0, 1.5, 5, 0), RangeError);
});
