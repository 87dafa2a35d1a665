import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { H3, H3Error } from './errors.js';
import { encodeFrame, encodeSettings, Frame, FrameReader, parseSettings, parseSingleVarint } from './frames.js';
import { encodeVarint, readVarint, varintLength } from './varint.js';

function collect(bytes: Uint8Array, chunkSize: number, max = 1024) {
  const reader = new FrameReader(max);
  const events: Array<[string, number, string]> = [];
  for (let off = 0; off < bytes.length; off += chunkSize) {
    reader.push(bytes.subarray(off, off + chunkSize), {
      onFrameData: (c) => events.push(['data', 0, Buffer.from(c).toString()]),
      onFrame: (t, p) => events.push(['frame', t, Buffer.from(p).toString('hex')]),
    });
  }
  return { events, midFrame: reader.midFrame };
}

describe('varint (RFC 9000 §16 and Appendix A.1 examples)', () => {
  const examples: Array<[string, number]> = [
    ['c2197c5eff14e88c', Number(151288809941952652n)],
    ['9d7f3e7d', 494878333],
    ['7bbd', 15293],
    ['25', 37],
    ['4025', 37],
  ];
  for (const [hex, value] of examples) {
    it(`decodes ${hex}`, () => {
      const buf = Buffer.from(hex, 'hex');
      const cur = { next: 0 };
      assert.equal(readVarint(buf, 0, buf.length, cur), value);
      assert.equal(cur.next, buf.length);
    });
  }
  it('round-trips boundaries and reports incomplete input', () => {
    for (const v of [0, 63, 64, 16383, 16384, 1073741823, 1073741824, 2 ** 52]) {
      const enc = encodeVarint(v);
      assert.equal(enc.length, varintLength(v));
      assert.equal(readVarint(enc, 0, enc.length, { next: 0 }), v);
      assert.equal(readVarint(enc, 0, enc.length - 1, { next: 0 }), enc.length === 1 ? -1 : -1);
    }
  });
});

describe('FrameReader', () => {
  const stream = Buffer.concat([
    encodeFrame(Frame.HEADERS, Buffer.from('hdrs')),
    encodeFrame(Frame.DATA, Buffer.from('hello ')),
    encodeFrame(0x21, Buffer.from('reserved grease frame is skipped')),
    encodeFrame(Frame.DATA, Buffer.from('world')),
    encodeFrame(Frame.HEADERS, Buffer.alloc(0)),
  ]);
  for (const size of [1, 2, 3, 7, 1000]) {
    it(`parses the same frames when fed ${size} byte(s) at a time`, () => {
      const { events, midFrame } = collect(stream, size);
      const data = events
        .filter((e) => e[0] === 'data')
        .map((e) => e[2])
        .join('');
      assert.equal(data, 'hello world');
      assert.deepEqual(
        events.filter((e) => e[0] === 'frame'),
        [
          ['frame', Frame.HEADERS, Buffer.from('hdrs').toString('hex')],
          ['frame', Frame.HEADERS, ''],
        ],
      );
      assert.equal(midFrame, false);
    });
  }
  it('knows when the stream stopped inside a frame', () => {
    assert.equal(collect(stream.subarray(0, stream.length - 3), 5).midFrame, true);
    assert.equal(collect(Buffer.from([0x01]), 5).midFrame, true);
  });
  it('refuses an oversized non-DATA frame before buffering it', () => {
    const big = Buffer.concat([encodeVarint(Frame.HEADERS), encodeVarint(1 << 30)]);
    assert.throws(
      () => collect(big, 100, 1024),
      (e) => e instanceof H3Error && e.code === H3.EXCESSIVE_LOAD,
    );
  });
  it('streams a huge DATA frame without limit', () => {
    const head = Buffer.concat([encodeVarint(Frame.DATA), encodeVarint(1 << 30)]);
    assert.doesNotThrow(() => collect(head, 100, 16));
  });
});

describe('SETTINGS and single-varint frames', () => {
  it('round-trips settings', () => {
    const f = encodeSettings([
      [0x01, 0],
      [0x06, 16384],
      [0x1f * 7 + 0x21, 1],
    ]);
    assert.equal(f[0], Frame.SETTINGS);
    const m = parseSettings(f.subarray(2));
    assert.equal(m.get(0x06), 16384);
    assert.equal(m.get(0x01), 0);
  });
  it('rejects duplicates and HTTP/2 settings with H3_SETTINGS_ERROR', () => {
    const dup = encodeSettings([
      [0x06, 1],
      [0x06, 2],
    ]).subarray(2);
    assert.throws(
      () => parseSettings(dup),
      (e) => e instanceof H3Error && e.code === H3.SETTINGS_ERROR,
    );
    const h2 = encodeSettings([[0x04, 65535]]).subarray(2);
    assert.throws(
      () => parseSettings(h2),
      (e) => e instanceof H3Error && e.code === H3.SETTINGS_ERROR,
    );
  });
  it('rejects a truncated setting with H3_FRAME_ERROR', () => {
    assert.throws(
      () => parseSettings(Buffer.from([0x06])),
      (e) => e instanceof H3Error && e.code === H3.FRAME_ERROR,
    );
  });
  it('GOAWAY carries exactly one varint', () => {
    assert.equal(parseSingleVarint(encodeVarint(400), 'GOAWAY'), 400);
    assert.throws(
      () => parseSingleVarint(Buffer.from([0x01, 0x02]), 'GOAWAY'),
      (e) => e instanceof H3Error && e.code === H3.FRAME_ERROR,
    );
    assert.throws(
      () => parseSingleVarint(Buffer.alloc(0), 'GOAWAY'),
      (e) => e instanceof H3Error,
    );
  });
});
