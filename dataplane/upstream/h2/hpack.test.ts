import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CompressionError, encodeHeaderBlock, HeaderListTooLarge, HpackDecoder } from './hpack.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('HpackDecoder: RFC 7541 Appendix C', () => {
  it('C.3: requests without Huffman, one connection (dynamic table carried over)', () => {
    const d = new HpackDecoder(4096, 65536);
    assert.deepEqual(d.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d')), [
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
    ]);
    assert.deepEqual(d.decode(hex('8286 84be 5808 6e6f 2d63 6163 6865')), [
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
      ['cache-control', 'no-cache'],
    ]);
    assert.deepEqual(d.decode(hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65')), [
      [':method', 'GET'],
      [':scheme', 'https'],
      [':path', '/index.html'],
      [':authority', 'www.example.com'],
      ['custom-key', 'custom-value'],
    ]);
    assert.equal(d.tableLength, 3);
  });

  it('C.4: the same requests with Huffman', () => {
    const d = new HpackDecoder(4096, 65536);
    assert.deepEqual(d.decode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'))[3], [':authority', 'www.example.com']);
    assert.deepEqual(d.decode(hex('8286 84be 5886 a8eb 1064 9cbf'))[4], ['cache-control', 'no-cache']);
    assert.deepEqual(d.decode(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'))[4], [
      'custom-key',
      'custom-value',
    ]);
  });

  it('C.5: responses with a 256-byte table evict the oldest entries', () => {
    const d = new HpackDecoder(256, 65536);
    const first = d.decode(
      hex(
        '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
      ),
    );
    assert.deepEqual(first, [
      [':status', '302'],
      ['cache-control', 'private'],
      ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
      ['location', 'https://www.example.com'],
    ]);
    assert.equal(d.tableLength, 4);
    assert.deepEqual(d.decode(hex('4803 3330 37c1 c0bf')), [
      [':status', '307'],
      ['cache-control', 'private'],
      ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
      ['location', 'https://www.example.com'],
    ]);
    // :status 302 made room for :status 307: still four entries, 222 bytes.
    assert.equal(d.tableLength, 4);
  });
});

describe('HpackDecoder: what a backend must not send', () => {
  const bad: Array<[string, string]> = [
    ['index 0', '80'],
    ['an index past the tables', 'ff 00'],
    ['a truncated integer', '7f'],
    ['a string running past the block', '00 05 61 62'],
    ['a Huffman string with EOS', '00 81 ff 81 ff'],
    ['a size update above the announced size', '3f e2 1f'],
    ['a size update after a field', '82 20'],
  ];
  for (const [what, bytes] of bad) {
    it(`${what}: CompressionError`, () => {
      assert.throws(() => new HpackDecoder(4096, 65536).decode(hex(bytes)), CompressionError);
    });
  }

  it('a header list past the announced size: HeaderListTooLarge, and the table stays in step', () => {
    const d = new HpackDecoder(4096, 200);
    const field = (n: string) => encodeLiteralWithIndexing(n, 'v'.repeat(80)); // 117 bytes each
    assert.throws(() => d.decode(Buffer.concat([field('x-one'), field('x-two')])), HeaderListTooLarge);
    assert.equal(d.tableLength, 2, 'both entries were still inserted');
    // The next block refers to them by index, as the backend's encoder expects.
    assert.deepEqual(d.decode(hex('bf')), [['x-one', 'v'.repeat(80)]]);
  });

  it('a size update to 0 empties the table', () => {
    const d = new HpackDecoder(4096, 65536);
    d.decode(encodeLiteralWithIndexing('a', 'b'));
    assert.equal(d.tableLength, 1);
    d.decode(hex('20'));
    assert.equal(d.tableLength, 0);
    assert.throws(() => d.decode(hex('be')), CompressionError);
  });
});

/** 01 000000, name and value as raw literals: inserted into the table. */
function encodeLiteralWithIndexing(name: string, value: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x40, name.length]),
    Buffer.from(name, 'latin1'),
    Buffer.from([value.length]),
    Buffer.from(value, 'latin1'),
  ]);
}

describe('encodeHeaderBlock', () => {
  it('round-trips through the decoder and leaves no table state', () => {
    const fields: Array<[string, string]> = [
      [':method', 'GET'],
      [':scheme', 'https'],
      [':authority', 'app.example:8443'],
      [':path', '/a/b?c=d'],
      ['accept-encoding', 'gzip, deflate'],
      ['user-agent', 'spooky-test'],
      ['x-request-id', 'c129fa7d425600000101'],
      ['authorization', 'Bearer secret'],
      ['x-obs-text', 'caf\u00e9'],
      ['x-empty', ''],
    ];
    const d = new HpackDecoder(4096, 65536);
    for (let i = 0; i < 3; i++) assert.deepEqual(d.decode(encodeHeaderBlock(fields)), fields);
    assert.equal(d.tableLength, 0);
  });

  it('a block larger than the encoder scratch buffer, then a small one: both whole', () => {
    const big: Array<[string, string]> = [
      [':method', 'POST'],
      ['x-big', 'v'.repeat(10_000)],
      ['x-random', Buffer.from(Array.from({ length: 6000 }, (_, i) => ((i * 7919) % 94) + 33)).toString('latin1')],
    ];
    const small: Array<[string, string]> = [
      [':method', 'GET'],
      ['x-small', 'yes'],
    ];
    const d = new HpackDecoder(4096, 65536);
    const first = encodeHeaderBlock(big);
    const second = encodeHeaderBlock(small);
    assert.deepEqual(d.decode(first), big, 'the first block is not overwritten by the second');
    assert.deepEqual(d.decode(second), small);
  });

  it('uses static references: GET https / is three bytes', () => {
    assert.deepEqual(
      encodeHeaderBlock([
        [':method', 'GET'],
        [':scheme', 'https'],
        [':path', '/'],
      ]),
      hex('82 87 84'),
    );
  });

  it('marks credentials never-indexed (RFC 7541 §7.1.3)', () => {
    const block = encodeHeaderBlock([['authorization', 'Bearer x']]);
    assert.equal(block[0], 0x1f, 'never indexed, name index 23 past the 4-bit prefix');
  });
});
