import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ErrorCode,
  Flag,
  type Frame,
  FrameReader,
  FrameType,
  frame,
  H2ConnectionError,
  headersFrames,
  unpad,
} from './frames.js';

const sample = Buffer.concat([
  frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(12, 1)),
  frame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from('head')),
  frame(FrameType.DATA, 0, 1, Buffer.alloc(16_000, 0x61)),
  frame(FrameType.PING, 0, 0, Buffer.alloc(8, 7)),
  frame(FrameType.DATA, Flag.END_STREAM, 1),
]);

function read(chunks: Buffer[]): Array<[number, number, number, string]> {
  const r = new FrameReader(16_384);
  const out: Array<[number, number, number, string]> = [];
  const on = (f: Frame) => out.push([f.type, f.flags, f.streamId, Buffer.from(f.payload).toString('hex')]);
  for (const c of chunks) r.push(c, on);
  return out;
}

describe('FrameReader', () => {
  const whole = read([sample]);

  it('reads the same frames however the bytes are cut', () => {
    assert.equal(whole.length, 5);
    for (let cut = 1; cut < sample.length; cut += 97) {
      assert.deepEqual(read([sample.subarray(0, cut), sample.subarray(cut)]), whole, `cut at ${cut}`);
    }
    // Byte by byte, across every header and payload boundary.
    const bytes: Buffer[] = [];
    for (let i = 0; i < sample.length; i++) bytes.push(sample.subarray(i, i + 1));
    assert.deepEqual(read(bytes), whole);
  });

  it('refuses a frame above the announced size as soon as its header is in', () => {
    const big = frame(FrameType.DATA, 0, 1, Buffer.alloc(16_385));
    assert.throws(
      () => read([big.subarray(0, 9)]),
      (e: unknown) => e instanceof H2ConnectionError && e.code === ErrorCode.FRAME_SIZE_ERROR,
    );
  });
});

describe('unpad and headersFrames', () => {
  it('strips padding and HEADERS priority; padding longer than the frame is a PROTOCOL_ERROR', () => {
    const padded = frame(FrameType.DATA, Flag.PADDED, 1, Buffer.from([2, 0x61, 0x62, 0, 0]));
    assert.equal(unpad({ ...readOne(padded) }).toString(), 'ab');
    const prio = frame(FrameType.HEADERS, Flag.PRIORITY | Flag.END_HEADERS, 1, Buffer.from([0, 0, 0, 3, 9, 0x68]));
    assert.equal(unpad(readOne(prio)).toString(), 'h');
    const empty = frame(FrameType.DATA, Flag.PADDED, 1, Buffer.from([2, 0, 0]));
    assert.equal(unpad(readOne(empty)).length, 0, 'padding may fill the rest');
    const over = frame(FrameType.DATA, Flag.PADDED, 1, Buffer.from([3, 0, 0]));
    assert.throws(() => unpad(readOne(over)), H2ConnectionError);
  });

  it('splits a header block over HEADERS and CONTINUATION, END_STREAM on the first only', () => {
    const block = Buffer.alloc(40_000, 0x41);
    const frames: Frame[] = [];
    new FrameReader(16_384).push(headersFrames(5, block, true, 16_384), (f) => frames.push(f));
    assert.deepEqual(
      frames.map((f) => [f.type, f.flags, f.payload.length]),
      [
        [FrameType.HEADERS, Flag.END_STREAM, 16_384],
        [FrameType.CONTINUATION, 0, 16_384],
        [FrameType.CONTINUATION, Flag.END_HEADERS, 40_000 - 2 * 16_384],
      ],
    );
  });
});

function readOne(buf: Buffer): Frame {
  let out: Frame | null = null;
  new FrameReader(1 << 20).push(buf, (f) => {
    out = f;
  });
  return out as unknown as Frame;
}
