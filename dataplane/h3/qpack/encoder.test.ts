import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeFieldSection } from './decoder.js';
import { encodeFieldSection } from './encoder.js';
import { STATIC_TABLE } from './static-table.js';

const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const roundTrip = (fields: Array<[string, string]>): Array<[string, string]> =>
  decodeFieldSection(encodeFieldSection(fields), Number.POSITIVE_INFINITY);

test('an empty list is just the prefix', () => {
  assert.equal(toHex(encodeFieldSection([])), '0000');
});

test('exact static matches are one Indexed Field Line', () => {
  assert.equal(toHex(encodeFieldSection([[':method', 'GET']])), '0000d1');
  assert.equal(toHex(encodeFieldSection([[':path', '/']])), '0000c1');
  // Indices from 63 on need a continuation byte.
  assert.equal(toHex(encodeFieldSection([[':status', '100']])), '0000ff00');
  assert.equal(toHex(encodeFieldSection([['x-frame-options', 'sameorigin']])), '0000ff23');
  for (let i = 0; i < STATIC_TABLE.length; i++) {
    const [name, value] = STATIC_TABLE[i];
    assert.deepEqual(roundTrip([[name, value]]), [[name, value]]);
  }
});

test('a static name match is a Literal With Name Reference, Huffman when shorter', () => {
  // "www.example.com" Huffman-codes to the RFC 7541 C.4.1 bytes.
  const authority = encodeFieldSection([[':authority', 'www.example.com']]);
  assert.equal(toHex(authority), '0000508cf1e3c2e5f23a6ba0ab90f4ff');
  // "/index.html" is 11 raw bytes, 8 Huffman bytes.
  const out = encodeFieldSection([[':path', '/index.html']]);
  assert.equal(toHex(out.subarray(0, 4)), '00005188');
  assert.equal(out.length, 12);
  // One char never gets shorter with Huffman, so it stays raw.
  assert.equal(toHex(encodeFieldSection([[':path', 'v']])), '0000510176');
});

test('unknown names are a Literal With Literal Name', () => {
  // 'x-custom' is 8 raw bytes, 6 Huffman bytes: 0x20 | H 0x08 | length 6.
  const out = encodeFieldSection([['x-custom', 'v']]);
  assert.equal(out[2], 0x2e);
  assert.equal(toHex(out.subarray(9)), '0176');
  assert.deepEqual(decodeFieldSection(out, 1000), [['x-custom', 'v']]);
  // A name of 7+ bytes that does not compress needs a continuation byte in the 3-bit prefix.
  const odd = '\u00fe'.repeat(9);
  const out2 = encodeFieldSection([[odd, '']]);
  assert.equal(toHex(out2.subarray(0, 4)), '00002702');
  assert.deepEqual(decodeFieldSection(out2, 1000), [[odd, '']]);
});

test('realistic requests round-trip', () => {
  const crumb = 'abcdef0123456789'.repeat(3);
  const cookie = Array.from({ length: 60 }, (_, i) => `session_${i}=${crumb}`).join('; ');
  const fields: Array<[string, string]> = [
    [':method', 'POST'],
    [':scheme', 'https'],
    [':authority', 'api.example.com:8443'],
    [':path', '/v1/items?filter=active&sort=-created_at&page=3'],
    ['user-agent', 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'],
    ['accept', '*/*'],
    ['accept-encoding', 'gzip, deflate, br'],
    ['accept-language', 'en-US,en;q=0.5'],
    ['content-type', 'application/json'],
    ['content-length', '1234'],
    ['cookie', cookie],
    ['x-request-id', '7f9c2ba4-e88f-4c3a-9b6a-2d1e0f5c8a71'],
    ['x-empty', ''],
    ['authorization', ''],
    ['x-latin1', 'caf\u00e9 \u00a9 \u0080\u00ff'],
    ['te', 'trailers'],
  ];
  assert.deepEqual(roundTrip(fields), fields);
});

test('realistic responses round-trip', () => {
  const fields: Array<[string, string]> = [
    [':status', '200'],
    ['content-type', 'text/html; charset=utf-8'],
    ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
    ['cache-control', 'private, max-age=0'],
    ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'],
    ['set-cookie', 'bar=1; Secure; HttpOnly; SameSite=Lax'],
    ['strict-transport-security', 'max-age=31536000; includesubdomains; preload'],
    ['vary', 'accept-encoding'],
    ['server', 'spooky'],
    ['etag', '"33a64df551425fcc55e4d42a148795d9f25f89d4"'],
    ['content-length', '0'],
    [':status', '503'],
    ['x-binary', String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i))],
  ];
  assert.deepEqual(roundTrip(fields), fields);
});

test('many fields and long values round-trip', () => {
  const fields: Array<[string, string]> = [];
  for (let i = 0; i < 300; i++) fields.push([`x-header-${i}`, 'v'.repeat(i * 7)]);
  assert.deepEqual(roundTrip(fields), fields);
  // Smaller lists after a large one still encode exactly.
  assert.equal(toHex(encodeFieldSection([[':method', 'GET']])), '0000d1');
});
