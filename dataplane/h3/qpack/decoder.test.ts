import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FieldSectionTooLarge, H3, H3Error } from '../errors.js';
import { decodeFieldSection } from './decoder.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const LIMIT = 64 * 1024;

function failsWith(message?: RegExp) {
  return (e: unknown): boolean =>
    e instanceof H3Error && e.code === H3.QPACK_DECOMPRESSION_FAILED && (!message || message.test(e.message));
}

test('RFC 9204 B.1: literal field line with a static name reference', () => {
  const block = hex('0000 510b 2f69 6e64 6578 2e68 746d 6c');
  assert.deepEqual(decodeFieldSection(block, LIMIT), [[':path', '/index.html']]);
});

test('RFC 9204 B.2 and B.4 field sections need the dynamic table and are rejected', () => {
  // B.2, stream 4: Required Insert Count 2, two post-base indexed lines.
  const dynamic = failsWith(/references the dynamic table/);
  assert.throws(() => decodeFieldSection(hex('0381 10 11'), LIMIT), dynamic);
  // B.4, stream 8: Required Insert Count 4, Base 4.
  assert.throws(() => decodeFieldSection(hex('0500 80 c1 81'), LIMIT), dynamic);
});

test('an empty field section decodes to no fields', () => {
  assert.deepEqual(decodeFieldSection(hex('0000'), LIMIT), []);
});

test('indexed static field lines, including indices past the 6-bit prefix', () => {
  // :method GET, :scheme https, :path /, :status 100 (63 = 0x3f + 0), x-frame-options sameorigin (98).
  assert.deepEqual(decodeFieldSection(hex('0000 d1 d7 c1 ff00 ff23'), LIMIT), [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/'],
    [':status', '100'],
    ['x-frame-options', 'sameorigin'],
  ]);
});

test('a nonzero Delta Base with sign 0 is accepted when nothing references the table', () => {
  assert.deepEqual(decodeFieldSection(hex('0005 d1'), LIMIT), [[':method', 'GET']]);
});

test('a negative Base is rejected', () => {
  assert.throws(() => decodeFieldSection(hex('0080 d1'), LIMIT), failsWith(/negative Base/));
});

test('literal field lines with a literal name, raw and Huffman, keep the bytes as sent', () => {
  // 0x27 0x01: literal name of 7 + 1 = 8 bytes "X-Custom"; value "Hi" raw.
  const raw = hex('0000 2701 582d 4375 7374 6f6d 02 4869');
  assert.deepEqual(decodeFieldSection(raw, LIMIT), [['X-Custom', 'Hi']]);
  // 0x2f 0x01: H=1, 8-byte Huffman name; 0x89: H=1, 9-byte Huffman value (RFC 7541 C.4.3).
  const huff = hex('0000 2f01 25a8 49e9 5ba9 7d7f 89 25a8 49e9 5bb8 e8b4 bf');
  assert.deepEqual(decodeFieldSection(huff, LIMIT), [['custom-key', 'custom-value']]);
});

test('the never-indexed bit is accepted and ignored', () => {
  // 0x71: literal with static name reference, N=1, index 1 (:path).
  assert.deepEqual(decodeFieldSection(hex('0000 7101 61'), LIMIT), [[':path', 'a']]);
  // 0x31: literal name with N=1, 1 byte name "a", empty value.
  assert.deepEqual(decodeFieldSection(hex('0000 3161 00'), LIMIT), [['a', '']]);
});

test('non-ASCII bytes come back as latin1 characters', () => {
  const block = hex('0000 5f50 04 80ff e9 00'); // user-agent (95 = 15 + 80), 4 bytes
  assert.deepEqual(decodeFieldSection(block, LIMIT), [['user-agent', '\u0080\u00ff\u00e9\u0000']]);
});

test('each dynamic table reference form is rejected', () => {
  assert.throws(() => decodeFieldSection(hex('0000 80'), LIMIT), failsWith(/indexed field line/));
  assert.throws(() => decodeFieldSection(hex('0000 10'), LIMIT), failsWith(/post-base index/));
  assert.throws(() => decodeFieldSection(hex('0000 4001 61'), LIMIT), failsWith(/dynamic table name/));
  assert.throws(() => decodeFieldSection(hex('0000 6001 61'), LIMIT), failsWith(/dynamic table name/));
  assert.throws(() => decodeFieldSection(hex('0000 0001 61'), LIMIT), failsWith(/post-base name/));
  assert.throws(() => decodeFieldSection(hex('0000 0801 61'), LIMIT), failsWith(/post-base name/));
});

test('static indices out of range are rejected', () => {
  // Indexed: 63 + 36 = 99.
  assert.throws(() => decodeFieldSection(hex('0000 ff24'), LIMIT), failsWith(/out of range/));
  // Name reference: 15 + 84 = 99.
  assert.throws(() => decodeFieldSection(hex('0000 5f54 00'), LIMIT), failsWith(/out of range/));
});

test('truncated field sections are rejected', () => {
  const full = hex('0000 510b 2f69 6e64 6578 2e68 746d 6c');
  for (let len = 0; len < full.length; len++) {
    if (len === 2) continue; // the prefix alone is a valid empty section
    assert.throws(() => decodeFieldSection(full.subarray(0, len), LIMIT), failsWith(), `length ${len}`);
  }
  // A string whose declared length runs past the end, and a truncated index.
  assert.throws(() => decodeFieldSection(hex('0000 2f01 6161'), LIMIT), failsWith(/past the end/));
  assert.throws(() => decodeFieldSection(hex('0000 ff'), LIMIT), failsWith(/truncated/));
  assert.throws(() => decodeFieldSection(hex('00'), LIMIT), failsWith(/truncated/));
});

test('bad Huffman strings are decompression failures', () => {
  // :path with a one-byte Huffman value 0x18: 'a' then padding 000.
  assert.throws(() => decodeFieldSection(hex('0000 5181 18'), LIMIT), failsWith(/not all ones/));
  assert.throws(() => decodeFieldSection(hex('0000 5184 ffff fffc'), LIMIT), failsWith(/EOS/));
});

test('decoding respects the byte offset of a subarray', () => {
  const backing = hex('ffff 0000 d1 ffff');
  assert.deepEqual(decodeFieldSection(backing.subarray(2, 5), LIMIT), [[':method', 'GET']]);
  const raw = hex('eeee 0000 2161 0162 eeee');
  assert.deepEqual(decodeFieldSection(raw.subarray(2, 8), LIMIT), [['a', 'b']]);
});

test('the field section size limit counts name + value + 32 per field', () => {
  // :path=/index.html is 5 + 11 + 32 = 48; :method GET adds 7 + 3 + 32 = 42.
  const block = hex('0000 510b 2f69 6e64 6578 2e68 746d 6c d1');
  assert.equal(decodeFieldSection(block, 90).length, 2);
  assert.throws(
    () => decodeFieldSection(block, 89),
    (e: unknown) => e instanceof FieldSectionTooLarge && e.size === 90 && e.limit === 89,
  );
  assert.throws(() => decodeFieldSection(block, 47), FieldSectionTooLarge);
});

test('an oversized literal is refused before its string is decoded', () => {
  const big = 100_000;
  const block = new Uint8Array(2 + 1 + 4 + big);
  // :path name reference, raw value of 100000 bytes: 0x7f then 100000 - 127 as continuation bytes.
  let off = 2;
  block[off++] = 0x51;
  let v = big - 127;
  block[off++] = 0x7f;
  while (v >= 128) {
    block[off++] = 0x80 | (v & 0x7f);
    v >>>= 7;
  }
  block[off++] = v;
  const section = block.subarray(0, off + big);
  assert.throws(
    () => decodeFieldSection(section, 16_384),
    (e: unknown) => e instanceof FieldSectionTooLarge && e.size === 5 + 32 + big && e.limit === 16_384,
  );
  assert.equal(decodeFieldSection(section, 200_000)[0][1].length, big);
});
