/**
 * Fuzzing the HTTP/3 framing layer: QUIC varints (dataplane/h3/varint.ts) and the frame codec
 * (dataplane/h3/frames.ts). See fuzz/README.md for seeds, run counts and replaying failures.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { H3, H3Error } from '../dataplane/h3/errors.js';
import {
  encodeFrame,
  encodeFrameHeader,
  encodeSettings,
  Frame,
  FrameReader,
  type FrameSink,
  isReservedH2Frame,
  parseSettings,
  parseSingleVarint,
} from '../dataplane/h3/frames.js';
import { encodeVarint, readVarint, varintLength, writeVarint } from '../dataplane/h3/varint.js';
import { check, hex, splitAt, testTimeoutMs, typedOutcome, withinMs } from './support.js';

const MAX_VARINT = (1n << 62n) - 1n;
const isH3Error = (e: unknown): e is H3Error => e instanceof H3Error;

/** Reference encoder over the whole 62-bit range (RFC 9000 §16), minimal length. */
function refEncode(v: bigint): Uint8Array {
  const len = v < 0x40n ? 1 : v < 0x4000n ? 2 : v < 0x40000000n ? 4 : 8;
  const out = new Uint8Array(len);
  let x = v;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  out[0] |= [0, 0x00, 0x40, 0, 0x80, 0, 0, 0, 0xc0][len];
  return out;
}

/** Values biased towards the length-class boundaries, over the safe-integer range. */
const safeVarint = fc.oneof(
  fc.integer({ min: 0, max: 0x3f }),
  fc.integer({ min: 0, max: 0x3fff }),
  fc.integer({ min: 0, max: 0x3fffffff }),
  fc.maxSafeNat(),
  fc.constantFrom(0x3f, 0x40, 0x3fff, 0x4000, 0x3fffffff, 0x40000000, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER),
);
const anyVarint = fc.oneof(
  fc.bigInt({ min: 0n, max: MAX_VARINT }),
  fc.bigInt({ min: BigInt(Number.MAX_SAFE_INTEGER) - 2n, max: BigInt(Number.MAX_SAFE_INTEGER) + 2n }),
  fc.bigInt({ min: MAX_VARINT - 3n, max: MAX_VARINT }),
);

describe('fuzz: QUIC varints (dataplane/h3/varint.ts)', () => {
  const timeout = testTimeoutMs();

  it('varint encode then decode is identity over safe integers', { timeout }, async () => {
    await check(
      'varint encode then decode is identity over safe integers',
      fc.property(safeVarint, fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), (v, pre, post) => {
        const enc = encodeVarint(v);
        assert.equal(enc.length, varintLength(v));
        assert.equal(hex(enc), hex(refEncode(BigInt(v))), 'minimal RFC 9000 encoding');
        const buf = new Uint8Array([...pre, ...enc, ...post]);
        const cur = { next: -1 };
        assert.equal(readVarint(buf, pre.length, buf.length, cur), v);
        assert.equal(cur.next, pre.length + enc.length);
        // writeVarint at an offset agrees with encodeVarint.
        const out = new Uint8Array(pre.length + enc.length);
        assert.equal(writeVarint(out, pre.length, v), out.length);
        assert.equal(hex(out.subarray(pre.length)), hex(enc));
      }),
    );
  });

  it('varint decode covers the whole 62-bit range', { timeout }, async () => {
    await check(
      'varint decode covers the whole 62-bit range',
      fc.property(anyVarint, fc.boolean(), (big, padded) => {
        // Any length class may carry any value that fits (non-minimal encodings are legal).
        const enc = padded ? refPadded(big) : refEncode(big);
        const cur = { next: 0 };
        const v = readVarint(enc, 0, enc.length, cur);
        assert.equal(cur.next, enc.length);
        if (big <= BigInt(Number.MAX_SAFE_INTEGER)) {
          assert.equal(v, Number(big));
        } else {
          // Documented: larger values decode approximately, but never as a safe integer, so the
          // caller's own limits reject them.
          assert.ok(v > Number.MAX_SAFE_INTEGER, `${big} decoded as safe ${v}`);
          assert.ok(Math.abs(v - Number(big)) <= Number(big) * 2 ** -50, `${big} decoded as ${v}`);
          assert.throws(() => encodeVarint(v), RangeError);
        }
      }),
    );
  });

  it('every truncated varint is reported as incomplete', { timeout }, async () => {
    await check(
      'every truncated varint is reported as incomplete',
      fc.property(anyVarint, fc.nat(), fc.uint8Array({ maxLength: 4 }), (big, cut, pre) => {
        const enc = refEncode(big);
        const keep = cut % enc.length; // 0..len-1 bytes of the varint
        const buf = new Uint8Array([...pre, ...enc]);
        const cur = { next: -7 };
        assert.equal(readVarint(buf, pre.length, pre.length + keep, cur), -1);
        assert.equal(cur.next, -7, 'cursor untouched on incomplete input');
      }),
    );
  });

  it('varint decode of arbitrary bytes never throws', { timeout }, async () => {
    await check(
      'varint decode of arbitrary bytes never throws',
      fc.property(fc.uint8Array({ maxLength: 24 }), fc.nat(30), fc.nat(30), (buf, off, end) => {
        const cur = { next: -7 };
        const v = readVarint(buf, off, Math.min(end, buf.length), cur);
        if (v === -1) return;
        assert.ok(v >= 0 && v < 2 ** 62, `value ${v}`);
        assert.ok(Number.isFinite(v));
        const len = 1 << (buf[off] >>> 6);
        assert.equal(cur.next, off + len);
        assert.ok(cur.next <= Math.min(end, buf.length));
      }),
    );
  });

  it('varint encoder refuses unsafe numbers with RangeError', { timeout }, async () => {
    await check(
      'varint encoder refuses unsafe numbers with RangeError',
      fc.property(
        fc.oneof(
          fc.double({ min: 2 ** 53, max: 2 ** 62, noNaN: true }),
          fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, 2 ** 62, 2 ** 64),
        ),
        (v) => {
          assert.throws(() => encodeVarint(v), RangeError);
        },
      ),
    );
  });
});

/** Same value in a possibly longer length class than needed. */
function refPadded(v: bigint): Uint8Array {
  const min = refEncode(v).length;
  const len = min >= 8 ? 8 : min * 2;
  const out = new Uint8Array(len);
  let x = v;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  out[0] |= { 1: 0x00, 2: 0x40, 4: 0x80, 8: 0xc0 }[len] ?? 0;
  return out;
}

// ---------------------------------------------------------------------------------- frames

type Event = ['data', string] | ['frame', number, string];

/** Records sink calls with consecutive DATA pieces merged (chunking must not matter). */
class Recorder implements FrameSink {
  events: Event[] = [];
  maxPayload = 0;
  onFrameData(chunk: Uint8Array): void {
    const last = this.events.at(-1);
    if (chunk.length === 0) return;
    if (last?.[0] === 'data') last[1] += hex(chunk);
    else this.events.push(['data', hex(chunk)]);
  }
  onFrame(type: number, payload: Uint8Array): void {
    this.maxPayload = Math.max(this.maxPayload, payload.length);
    this.events.push(['frame', type, hex(payload)]);
  }
}

/** Feeds `chunks` to a fresh reader; stops at the first (typed) error. */
function feed(chunks: readonly Uint8Array[], maxFrame: number) {
  const reader = new FrameReader(maxFrame);
  const sink = new Recorder();
  const r = typedOutcome(() => {
    for (const c of chunks) reader.push(c, sink);
  }, isH3Error);
  return { reader, sink, error: r.ok ? undefined : r.error };
}

function isKnownFrame(type: number): boolean {
  return [0x01, 0x03, 0x04, 0x05, 0x07, 0x0d].includes(type) || isReservedH2Frame(type);
}

const frameType = fc.oneof(
  { arbitrary: fc.constantFrom(0x00, 0x01, 0x03, 0x04, 0x05, 0x07, 0x0d, 0x02, 0x06, 0x08, 0x09), weight: 4 },
  // Reserved (grease) types 0x1f * N + 0x21, and anything else.
  { arbitrary: fc.nat(1000).map((n) => 0x1f * n + 0x21), weight: 1 },
  { arbitrary: fc.oneof(fc.nat(0x3fff), fc.maxSafeNat()), weight: 1 },
);
const frameArb = fc.record({
  type: frameType,
  payload: fc.oneof(
    { arbitrary: fc.uint8Array({ maxLength: 16 }), weight: 3 },
    { arbitrary: fc.uint8Array({ maxLength: 700, size: 'max' }), weight: 1 },
  ),
});
const cutsArb = fc.array(fc.nat(), { maxLength: 12 });

function expectedEvents(frames: ReadonlyArray<{ type: number; payload: Uint8Array }>): Event[] {
  const rec = new Recorder();
  for (const f of frames) {
    if (f.type === Frame.DATA) rec.onFrameData(f.payload);
    else if (isKnownFrame(f.type)) rec.onFrame(f.type, f.payload);
  }
  return rec.events;
}

describe('fuzz: HTTP/3 frames (dataplane/h3/frames.ts)', () => {
  const timeout = testTimeoutMs();

  it('frame encode then FrameReader is identity for any chunking', { timeout }, async () => {
    await check(
      'frame encode then FrameReader is identity for any chunking',
      fc.property(fc.array(frameArb, { maxLength: 12 }), cutsArb, (frames, cuts) => {
        const bytes = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.payload)));
        for (const f of frames) {
          const viaHeader = Buffer.concat([encodeFrameHeader(f.type, f.payload.length), f.payload]);
          assert.equal(hex(viaHeader), hex(encodeFrame(f.type, f.payload)));
        }
        const { reader, sink, error } = feed(splitAt(bytes, cuts), 1024);
        assert.equal(error, undefined, 'no frame above the limit was generated');
        assert.deepEqual(sink.events, expectedEvents(frames));
        assert.equal(reader.midFrame, false);
      }),
    );
  });

  it('FrameReader on arbitrary bytes throws only H3Error and ignores chunking', { timeout }, async () => {
    await check(
      'FrameReader on arbitrary bytes throws only H3Error and ignores chunking',
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.uint8Array({ maxLength: 300, size: 'max' }),
          // Mostly-valid streams with damage: a truncated or bit-flipped frame sequence.
          fc
            .tuple(fc.array(frameArb, { maxLength: 6 }), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 255 }))
            .map(([frames, cut, at, xor]) => {
              const b = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.payload)));
              if (b.length > 0) b[at % b.length] ^= xor;
              return new Uint8Array(b.subarray(0, cut % (b.length + 1)));
            }),
        ),
        cutsArb,
        fc.oneof(fc.nat(64), fc.nat(4096)),
        (bytes, cuts, maxFrame) => {
          const whole = withinMs(() => feed([bytes], maxFrame), undefined, 'FrameReader.push');
          const split = withinMs(() => feed(splitAt(bytes, cuts), maxFrame), undefined, 'FrameReader.push');
          assert.deepEqual(split.sink.events, whole.sink.events);
          assert.equal(split.error?.code, whole.error?.code);
          if (whole.error) {
            assert.equal(whole.error.code, H3.EXCESSIVE_LOAD);
            assert.equal(whole.error.scope, 'stream');
          } else {
            assert.equal(split.reader.midFrame, whole.reader.midFrame);
          }
          assert.ok(whole.sink.maxPayload <= maxFrame, 'a buffered frame never exceeds maxFrame');
          assert.ok(split.sink.maxPayload <= maxFrame, 'a buffered frame never exceeds maxFrame');
        },
      ),
    );
  });

  it('oversized frames fail as soon as their header is complete', { timeout }, async () => {
    await check(
      'oversized frames fail as soon as their header is complete',
      fc.property(
        fc.constantFrom(0x01, 0x03, 0x04, 0x05, 0x07, 0x0d, 0x02, 0x06, 0x08, 0x09),
        fc.nat(4096),
        fc.oneof(fc.integer({ min: 1, max: 1 << 20 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
        fc.array(frameArb, { maxLength: 3 }),
        cutsArb,
        (type, maxFrame, excess, before, cuts) => {
          const len = Math.min(maxFrame + excess, Number.MAX_SAFE_INTEGER);
          const prefix = Buffer.concat(
            before.filter((f) => f.payload.length <= maxFrame).map((f) => encodeFrame(f.type, f.payload)),
          );
          // Only the header: the reader must not wait for (or allocate) the payload.
          const bytes = Buffer.concat([prefix, encodeFrameHeader(type, len)]);
          const { error } = feed(splitAt(bytes, cuts), maxFrame);
          assert.ok(error, `frame 0x${type.toString(16)} of ${len} bytes (limit ${maxFrame}) was accepted`);
          assert.equal(error.code, H3.EXCESSIVE_LOAD);
          assert.equal(error.scope, 'stream');
        },
      ),
    );
  });

  it('DATA and unknown frames of any length stream through unbuffered', { timeout }, async () => {
    await check(
      'DATA and unknown frames of any length stream through unbuffered',
      fc.property(
        fc.oneof(
          fc.constant(Frame.DATA),
          fc.nat(1000).map((n) => 0x1f * n + 0x21),
        ),
        fc.oneof(fc.nat(1 << 20), fc.maxSafeNat()),
        fc.uint8Array({ maxLength: 200 }),
        cutsArb,
        (type, len, some, cuts) => {
          const payload = some.subarray(0, Math.min(len, some.length));
          const bytes = Buffer.concat([encodeFrameHeader(type, len), payload]);
          const { reader, sink, error } = feed(splitAt(bytes, cuts), 16);
          assert.equal(error, undefined);
          assert.deepEqual(sink.events, type === Frame.DATA && payload.length > 0 ? [['data', hex(payload)]] : []);
          assert.equal(reader.midFrame, payload.length < len);
        },
      ),
    );
  });

  it('SETTINGS encode then parse is identity', { timeout }, async () => {
    const settingId = fc.oneof(fc.constantFrom(0x01, 0x06, 0x07, 0x08, 0x33), fc.integer({ min: 6, max: 2 ** 40 }));
    await check(
      'SETTINGS encode then parse is identity',
      fc.property(
        fc.uniqueArray(fc.tuple(settingId, safeVarint), { selector: (s) => s[0], maxLength: 10 }),
        (settings) => {
          const frame = encodeSettings(settings);
          const { sink, error } = feed([frame], 1024);
          assert.equal(error, undefined);
          assert.equal(sink.events.length, 1);
          const [kind, type, payloadHex] = sink.events[0] as ['frame', number, string];
          assert.equal(kind, 'frame');
          assert.equal(type, Frame.SETTINGS);
          const parsed = parseSettings(Buffer.from(payloadHex, 'hex'));
          assert.deepEqual([...parsed], settings);
        },
      ),
    );
  });

  it('SETTINGS and single-varint payloads of arbitrary bytes throw only H3Error', { timeout }, async () => {
    await check(
      'SETTINGS and single-varint payloads of arbitrary bytes throw only H3Error',
      fc.property(fc.uint8Array({ maxLength: 64 }), (payload) => {
        const s = typedOutcome(() => parseSettings(payload), isH3Error);
        if (!s.ok) assert.ok([H3.FRAME_ERROR, H3.SETTINGS_ERROR].includes(s.error.code as 0x106 | 0x109));
        else for (const id of s.value.keys()) assert.ok(id < 2 || id > 5, `HTTP/2 setting ${id} accepted`);
        const v = typedOutcome(() => parseSingleVarint(payload, 'GOAWAY'), isH3Error);
        if (!v.ok) assert.equal(v.error.code, H3.FRAME_ERROR);
        else {
          const cur = { next: 0 };
          assert.equal(readVarint(payload, 0, payload.length, cur), v.value);
          assert.equal(cur.next, payload.length, 'exactly one varint');
        }
      }),
    );
  });
});
