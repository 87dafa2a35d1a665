/**
 * Fuzzing QPACK (dataplane/h3/qpack/): the field section encoder and decoder, the Huffman code
 * and prefixed integers. See fuzz/README.md for seeds, run counts and replaying failures.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FieldSectionTooLarge, H3, H3Error } from '../dataplane/h3/errors.js';
import { decodeFieldSection } from '../dataplane/h3/qpack/decoder.js';
import { encodeFieldSection } from '../dataplane/h3/qpack/encoder.js';
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from '../dataplane/h3/qpack/huffman.js';
import { type Cursor, decodeInteger, encodeInteger, integerLength } from '../dataplane/h3/qpack/integer.js';
import { STATIC_TABLE } from '../dataplane/h3/qpack/static-table.js';
import { check, hex, testTimeoutMs, typedOutcome, withinMs } from './support.js';

type Field = [string, string];

const isH3Error = (e: unknown): e is H3Error => e instanceof H3Error;
const isQpackError = (e: unknown): e is H3Error | FieldSectionTooLarge =>
  (e instanceof H3Error && e.code === H3.QPACK_DECOMPRESSION_FAILED) || e instanceof FieldSectionTooLarge;

const latin1 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');

/** RFC 9114 §4.2.2 size of a field section. */
const sectionSize = (fields: readonly Field[]): number =>
  fields.reduce((n, [name, value]) => n + name.length + value.length + 32, 0);

const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz";
const tokenName = fc.string({ unit: fc.constantFrom(...TCHARS), minLength: 1, maxLength: 40 });
const visibleAscii = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) });
const latin1String = (maxLength: number) => fc.uint8Array({ maxLength }).map(latin1);
const staticNames = [...new Set(STATIC_TABLE.map(([n]) => n))];

const fieldArb: fc.Arbitrary<Field> = fc.oneof(
  // Exact static entries (Indexed Field Line).
  fc.constantFrom(...STATIC_TABLE).map(([n, v]): Field => [n, v]),
  // Static names with other values (Literal With Name Reference).
  fc.tuple(fc.constantFrom(...staticNames), visibleAscii),
  // Literal names and values, short and long.
  fc.tuple(tokenName, visibleAscii),
  fc.tuple(tokenName, fc.string({ unit: fc.constantFrom('a', 'b', '/', '=', ' ', '%'), maxLength: 5000, size: 'max' })),
);
const fieldsArb = fc.oneof(
  { arbitrary: fc.array(fieldArb, { maxLength: 20 }), weight: 4 },
  { arbitrary: fc.array(fieldArb, { maxLength: 300, size: 'max' }), weight: 1 },
);

const timeout = testTimeoutMs();

describe('fuzz: QPACK field sections (dataplane/h3/qpack/encoder.ts, decoder.ts)', () => {
  it('field section encode then decode is identity', { timeout }, async () => {
    await check(
      'field section encode then decode is identity',
      fc.property(fieldsArb, (fields) => {
        const block = encodeFieldSection(fields);
        assert.deepEqual(decodeFieldSection(block, Number.MAX_SAFE_INTEGER), fields);
      }),
    );
  });

  it('field section round trip of arbitrary latin1 names and values', { timeout }, async () => {
    await check(
      'field section round trip of arbitrary latin1 names and values',
      fc.property(fc.array(fc.tuple(latin1String(60), latin1String(300)), { maxLength: 30 }), (fields) => {
        const block = encodeFieldSection(fields);
        assert.deepEqual(decodeFieldSection(block, Number.MAX_SAFE_INTEGER), fields);
      }),
    );
  });

  it('field section limit is exact', { timeout }, async () => {
    await check(
      'field section limit is exact',
      fc.property(fieldsArb, fc.nat(), (fields, under) => {
        const block = encodeFieldSection(fields);
        const size = sectionSize(fields);
        assert.deepEqual(decodeFieldSection(block, size), fields, 'a section exactly at the limit is accepted');
        if (size === 0) return;
        const limit = size - 1 - (under % size);
        assert.throws(
          () => decodeFieldSection(block, limit),
          (e) => e instanceof FieldSectionTooLarge && e.limit === limit && e.size > limit,
        );
      }),
    );
  });

  it('field section decode of arbitrary bytes throws only QPACK errors', { timeout }, async () => {
    const damaged = fc
      .tuple(fieldsArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }), fc.nat())
      .map(([fields, flips, cut]) => {
        const b = encodeFieldSection(fields);
        for (const [at, xor] of flips) if (b.length > 0) b[at % b.length] ^= xor;
        return b.subarray(0, b.length - (cut % 3 === 0 ? cut % (b.length + 1) : 0));
      });
    await check(
      'field section decode of arbitrary bytes throws only QPACK errors',
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc.uint8Array({ maxLength: 200, size: 'max' }),
          fc.uint8Array({ maxLength: 200 }).map((b) => new Uint8Array([0, 0, ...b])),
          damaged,
        ),
        fc.oneof(fc.nat(100), fc.nat(20_000), fc.constant(Number.MAX_SAFE_INTEGER)),
        (block, max) => {
          const r = withinMs(
            () => typedOutcome(() => decodeFieldSection(block, max), isQpackError),
            undefined,
            'decode',
          );
          if (!r.ok) {
            if (r.error instanceof FieldSectionTooLarge) {
              assert.equal(r.error.limit, max);
              assert.ok(r.error.size > max);
            }
            return;
          }
          const fields = r.value;
          assert.ok(sectionSize(fields) <= max, 'accepted a section over the limit');
          for (const [n, v] of fields) assert.ok(/^[\0-\xff]*$/.test(n + v), 'latin1 strings only');
          // Whatever decodes re-encodes to something that decodes the same.
          assert.deepEqual(decodeFieldSection(encodeFieldSection(fields), max), fields);
        },
      ),
    );
  });
});

describe('fuzz: QPACK Huffman code (dataplane/h3/qpack/huffman.ts)', () => {
  it('Huffman encode then decode is identity', { timeout }, async () => {
    await check(
      'Huffman encode then decode is identity',
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 5000, size: 'max' })),
        fc.nat(8),
        (bytes, at) => {
          const s = latin1(bytes);
          const len = huffmanEncodedLength(s);
          assert.equal(huffmanEncodedLength(bytes), len);
          const dst = new Uint8Array(at + len + 3).fill(0xa5);
          assert.equal(huffmanEncode(s, dst, at), at + len);
          const viaBytes = new Uint8Array(at + len + 3).fill(0xa5);
          assert.equal(huffmanEncode(bytes, viaBytes, at), at + len);
          assert.equal(hex(viaBytes), hex(dst), 'string and byte input encode alike');
          assert.equal(hex(dst.subarray(at + len)), 'a5a5a5', 'no write past the encoded length');
          assert.equal(huffmanDecode(dst, at, at + len), s);
        },
      ),
    );
  });

  it('Huffman decode of arbitrary bytes is a string or H3Error, and canonical', { timeout }, async () => {
    await check(
      'Huffman decode of arbitrary bytes is a string or H3Error, and canonical',
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          fc.uint8Array({ maxLength: 2000, size: 'max' }),
          // Valid encodings with a damaged tail reach the padding checks more often.
          fc.tuple(fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 0, max: 255 })).map(([b, last]) => {
            const out = new Uint8Array(huffmanEncodedLength(b) + 1);
            const end = huffmanEncode(b, out, 0);
            out[end] = last;
            return out;
          }),
        ),
        (bytes) => {
          const r = withinMs(() => typedOutcome(() => huffmanDecode(bytes, 0, bytes.length), isH3Error));
          if (!r.ok) {
            assert.equal(r.error.code, H3.QPACK_DECOMPRESSION_FAILED);
            return;
          }
          // A prefix code with at most 7 bits of all-ones padding has exactly one valid encoding.
          const s = r.value;
          assert.ok(s.length <= Math.floor((bytes.length * 8) / 5));
          const again = new Uint8Array(huffmanEncodedLength(s));
          huffmanEncode(s, again, 0);
          assert.equal(hex(again), hex(bytes));
        },
      ),
    );
  });
});

describe('fuzz: QPACK prefixed integers (dataplane/h3/qpack/integer.ts)', () => {
  const valueArb = fc.oneof(
    fc.nat(300),
    fc.nat(1 << 21),
    fc.maxSafeNat(),
    fc.integer({ min: Number.MAX_SAFE_INTEGER - 300, max: Number.MAX_SAFE_INTEGER }),
  );

  it('integer encode then decode is identity for every prefix size', { timeout }, async () => {
    await check(
      'integer encode then decode is identity for every prefix size',
      fc.property(valueArb, fc.integer({ min: 1, max: 8 }), fc.nat(255), fc.nat(4), (value, n, rawFlags, at) => {
        const flags = rawFlags & ~((1 << n) - 1) & 0xff;
        const len = integerLength(value, n);
        const buf = new Uint8Array(at + len + 2).fill(0x5a);
        assert.equal(encodeInteger(buf, at, value, n, flags), at + len);
        assert.equal(buf[at] & ~((1 << n) - 1) & 0xff, flags, 'flag bits preserved');
        assert.equal(hex(buf.subarray(at + len)), '5a5a', 'no write past integerLength');
        const cur: Cursor = { pos: at };
        assert.equal(decodeInteger(buf, cur, at + len, n), value);
        assert.equal(cur.pos, at + len);
        // Every truncation is an error: a field section arrives whole.
        for (let cut = at; cut < at + len; cut++) {
          assert.throws(
            () => decodeInteger(buf, { pos: at }, cut, n),
            (e) => e instanceof H3Error && e.code === H3.QPACK_DECOMPRESSION_FAILED,
          );
        }
      }),
    );
  });

  it('integer decode of arbitrary bytes is a safe integer or H3Error', { timeout }, async () => {
    await check(
      'integer decode of arbitrary bytes is a safe integer or H3Error',
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 16 }),
          fc.uint8Array({ minLength: 1, maxLength: 12 }).map((b) => new Uint8Array([0xff, ...b.map((x) => x | 0x80)])),
        ),
        fc.integer({ min: 1, max: 8 }),
        (bytes, n) => {
          const cur: Cursor = { pos: 0 };
          const r = typedOutcome(() => decodeInteger(bytes, cur, bytes.length, n), isH3Error);
          if (!r.ok) {
            assert.equal(r.error.code, H3.QPACK_DECOMPRESSION_FAILED);
            return;
          }
          assert.ok(Number.isSafeInteger(r.value) && r.value >= 0, `decoded ${r.value}`);
          assert.ok(cur.pos >= 1 && cur.pos <= Math.min(bytes.length, 9));
          assert.ok(integerLength(r.value, n) <= cur.pos, 'the minimal encoding is never longer');
        },
      ),
    );
  });

  it('integer encoder refuses unsafe and negative values with RangeError', { timeout }, async () => {
    await check(
      'integer encoder refuses unsafe and negative values with RangeError',
      fc.property(
        fc.oneof(
          fc.integer({ min: Number.MIN_SAFE_INTEGER, max: -1 }),
          fc.double({ min: 2 ** 53, noNaN: true }),
          fc.double({ min: 0.001, max: 1e6, noInteger: true }),
          fc.constant(Number.NaN),
        ),
        fc.integer({ min: 1, max: 8 }),
        (value, n) => {
          assert.throws(() => encodeInteger(new Uint8Array(16), 0, value, n, 0), RangeError);
        },
      ),
    );
  });
});
