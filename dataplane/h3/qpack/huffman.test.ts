import assert from 'node:assert/strict';
import { test } from 'node:test';
import { H3, H3Error } from '../errors.js';
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from './huffman.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function encode(s: string | Uint8Array): Uint8Array {
  const out = new Uint8Array(huffmanEncodedLength(s));
  assert.equal(huffmanEncode(s, out, 0), out.length);
  return out;
}

function decode(b: Uint8Array): string {
  return huffmanDecode(b, 0, b.length);
}

function failsWith(message: RegExp) {
  return (e: unknown): boolean =>
    e instanceof H3Error && e.code === H3.QPACK_DECOMPRESSION_FAILED && message.test(e.message);
}

// Huffman-coded strings of RFC 7541 Appendix C.4 (requests) and C.6 (responses).
const VECTORS: Array<[string, string]> = [
  ['www.example.com', 'f1e3 c2e5 f23a 6ba0 ab90 f4ff'],
  ['no-cache', 'a8eb 1064 9cbf'],
  ['custom-key', '25a8 49e9 5ba9 7d7f'],
  ['custom-value', '25a8 49e9 5bb8 e8b4 bf'],
  ['302', '6402'],
  ['private', 'aec3 771a 4b'],
  ['Mon, 21 Oct 2013 20:13:21 GMT', 'd07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff'],
  ['https://www.example.com', '9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3'],
  ['307', '640e ff'],
  ['Mon, 21 Oct 2013 20:13:22 GMT', 'd07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff'],
  ['gzip', '9bd9 ab'],
  [
    'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1',
    '94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 ' +
      '0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
  ],
];

// The complete header blocks the strings above were cut from (C.4.1-C.4.3, C.6.1-C.6.3).
const RFC_BLOCKS = [
  '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
  '8286 84be 5886 a8eb 1064 9cbf',
  '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
  '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 ' +
    '2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
  '4883 640e ffc1 c0bf',
  '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab ' +
    '77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f ' +
    '9587 3160 65c0 03ed 4ee5 b106 3d50 07',
].map((s) => s.replace(/\s+/g, ''));

test('the vectors appear in the RFC header blocks with their Huffman length prefix', () => {
  for (const [, h] of VECTORS) {
    const bytes = hex(h);
    const prefixed = (0x80 | bytes.length).toString(16) + toHex(bytes);
    assert.ok(
      RFC_BLOCKS.some((b) => b.includes(prefixed)),
      h,
    );
  }
});

test('RFC 7541 Appendix C strings encode byte-exactly', () => {
  for (const [s, h] of VECTORS) {
    assert.equal(huffmanEncodedLength(s), hex(h).length, s);
    assert.equal(toHex(encode(s)), toHex(hex(h)), s);
    assert.equal(toHex(encode(Buffer.from(s, 'latin1'))), toHex(hex(h)), s);
  }
});

test('RFC 7541 Appendix C strings decode', () => {
  for (const [s, h] of VECTORS) assert.equal(decode(hex(h)), s);
});

test('decoding honours start and end within a larger buffer', () => {
  const inner = hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff');
  const buf = new Uint8Array(inner.length + 6).fill(0x00);
  buf.set(inner, 3);
  assert.equal(huffmanDecode(buf, 3, 3 + inner.length), 'www.example.com');
  assert.equal(huffmanDecode(buf, 3, 3), '');
});

test('encoding writes at an offset and returns the offset after it', () => {
  const out = new Uint8Array(10).fill(0xaa);
  assert.equal(huffmanEncode('302', out, 4), 6);
  assert.equal(toHex(out), 'aaaaaaaa6402aaaaaaaa');
});

test('every byte value round-trips', () => {
  const all = new Uint8Array(256).map((_, i) => i);
  const encoded = encode(all);
  const decoded = decode(encoded);
  assert.equal(decoded, Buffer.from(all).toString('latin1'));
  // The same through a latin1 string.
  assert.equal(toHex(encode(decoded)), toHex(encoded));
  for (let b = 0; b < 256; b++) {
    const one = String.fromCharCode(b);
    assert.equal(decode(encode(one)), one, `byte ${b}`);
  }
});

test('random byte strings round-trip (seeded)', () => {
  let seed = 0x2545f491;
  const next = (): number => {
    // xorshift32
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  for (let iter = 0; iter < 500; iter++) {
    const len = next() % 300;
    const bytes = new Uint8Array(len);
    // Half the strings favour short codes (printable ASCII), half are uniform bytes.
    for (let i = 0; i < len; i++) bytes[i] = iter % 2 ? next() & 0xff : 0x20 + (next() % 95);
    const s = Buffer.from(bytes).toString('latin1');
    assert.equal(decode(encode(bytes)), s);
  }
});

test('long strings decode past the initial scratch buffer', () => {
  const s = 'a'.repeat(5000) + '\u00ff'.repeat(3000);
  assert.equal(decode(encode(s)), s);
});

test('an empty string encodes to nothing', () => {
  assert.equal(huffmanEncodedLength(''), 0);
  assert.equal(decode(new Uint8Array(0)), '');
});

test('padding longer than 7 bits is rejected', () => {
  // 'a' is 00011; 0x1f pads it with three ones, the extra 0xff makes 11 bits of padding.
  assert.equal(decode(hex('1f')), 'a');
  assert.throws(() => decode(hex('1fff')), failsWith(/longer than 7 bits/));
  // A whole byte of ones with no symbol at all.
  assert.throws(() => decode(hex('ff')), failsWith(/longer than 7 bits/));
  // 'www.example.com' with an extra padding byte.
  assert.throws(() => decode(hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff ff')), failsWith(/longer than 7 bits/));
});

test('padding that is not all ones is rejected', () => {
  // 'a' followed by 000 instead of 111.
  assert.throws(() => decode(hex('18')), failsWith(/not all ones/));
  assert.throws(() => decode(hex('1e')), failsWith(/not all ones/));
  // Last byte of 'www.example.com' with its final padding bit cleared.
  assert.throws(() => decode(hex('f1e3 c2e5 f23a 6ba0 ab90 f4fe')), failsWith(/not all ones/));
});

test('the EOS symbol inside a string is rejected', () => {
  // EOS is 30 ones: alone, after a symbol, and followed by more symbols.
  assert.throws(() => decode(hex('ffff fffc')), failsWith(/EOS/));
  assert.throws(() => decode(hex('ffff ffff')), failsWith(/EOS/));
  // 'a' (00011), EOS (30 ones), 'a': 00011111 11111111 11111111 11111111 11100011
  assert.throws(() => decode(hex('1fff ffff e3')), failsWith(/EOS/));
});
