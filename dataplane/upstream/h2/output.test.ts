import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Flag, type Frame, FrameReader, FrameType, frame, rstStreamFrame } from './frames.js';
import { FrameOutput } from './output.js';

function framesOf(bytes: Buffer | null): Frame[] {
  const out: Frame[] = [];
  new FrameReader(1 << 20).push(bytes ?? Buffer.alloc(0), (f) => out.push({ ...f, payload: Buffer.from(f.payload) }));
  return out;
}

const summary = (fs: Frame[]) => fs.map((f) => [f.type, f.flags, f.streamId, f.payload.toString('latin1')]);

describe('FrameOutput: one turn of an HTTP/2 connection in one buffer', () => {
  it('DATA written back to back on one stream extends one frame; another frame or stream starts a new one', () => {
    const o = new FrameOutput();
    o.data(1, Buffer.from('ab'), 16_384);
    o.data(1, Buffer.from('cd'), 16_384);
    o.data(3, Buffer.from('x'), 16_384);
    o.data(1, Buffer.from('ef'), 16_384);
    o.append(rstStreamFrame(5, 8));
    o.data(1, Buffer.from('gh'), 16_384);
    assert.deepEqual(summary(framesOf(o.take())), [
      [FrameType.DATA, 0, 1, 'abcd'],
      [FrameType.DATA, 0, 3, 'x'],
      [FrameType.DATA, 0, 1, 'ef'],
      [FrameType.RST_STREAM, 0, 5, '\0\0\0\b'],
      [FrameType.DATA, 0, 1, 'gh'],
    ]);
  });

  it('frames stay within the peer maximum frame size', () => {
    const o = new FrameOutput();
    o.data(1, Buffer.alloc(7, 0x61), 5);
    o.data(1, Buffer.alloc(4, 0x62), 5);
    assert.deepEqual(
      framesOf(o.take()).map((f) => f.payload.toString()),
      ['aaaaa', 'aabbb', 'b'],
    );
  });

  it('END_STREAM rides on the stream DATA frame just written, else it is an empty DATA frame', () => {
    const o = new FrameOutput();
    o.data(1, Buffer.from('body'), 16_384);
    o.endStream(1);
    o.data(3, Buffer.from('x'), 16_384);
    o.append(frame(FrameType.PING, 0, 0, Buffer.alloc(8)));
    o.endStream(3);
    o.endStream(5);
    o.data(5, Buffer.from('late'), 16_384); // a new frame: nothing extends a frame that ended the stream
    assert.deepEqual(summary(framesOf(o.take())), [
      [FrameType.DATA, Flag.END_STREAM, 1, 'body'],
      [FrameType.DATA, 0, 3, 'x'],
      [FrameType.PING, 0, 0, '\0'.repeat(8)],
      [FrameType.DATA, Flag.END_STREAM, 3, ''],
      [FrameType.DATA, Flag.END_STREAM, 5, ''],
      [FrameType.DATA, 0, 5, 'late'],
    ]);
  });

  it('copies what it is given: the caller may reuse its memory at once; growth keeps the bytes', () => {
    const o = new FrameOutput();
    const lent = Buffer.alloc(10_000, 0x61);
    o.data(1, lent, 16_384);
    lent.fill(0x7a);
    o.data(1, Buffer.alloc(30_000, 0x62), 100_000); // past the first buffer: it grows
    const [f] = framesOf(o.take());
    assert.equal(f?.payload.length, 40_000);
    assert.equal(f?.payload.subarray(0, 10_000).toString(), 'a'.repeat(10_000));
    assert.equal(f?.payload.subarray(10_000).toString(), 'b'.repeat(30_000));
  });

  it('take hands the bytes over; recycle gives the same memory to the next turn, a burst-sized buffer is not kept', () => {
    const o = new FrameOutput();
    assert.equal(o.take(), null);
    o.append(Buffer.from('one'));
    const first = o.take() as Buffer;
    assert.equal(o.length, 0);
    o.recycle(first);
    o.append(Buffer.from('two'));
    const second = o.take() as Buffer;
    assert.equal(second.buffer, first.buffer, 'recycled');
    assert.equal(second.toString(), 'two');
    // Not recycled yet (the socket still holds it): the next turn writes elsewhere.
    o.append(Buffer.from('three'));
    const third = o.take() as Buffer;
    assert.notEqual(third.buffer, second.buffer);
    assert.equal(second.toString(), 'two', 'what the socket holds is untouched');
    // A write that completes while the next turn already has bytes does not replace its buffer.
    o.append(Buffer.from('four'));
    o.recycle(second);
    assert.equal((o.take() as Buffer).toString(), 'four');
    o.recycle(third);
    o.append(Buffer.alloc(300 * 1024));
    const big = o.take() as Buffer;
    o.recycle(big);
    o.append(Buffer.from('small'));
    assert.notEqual((o.take() as Buffer).buffer, big.buffer);
  });
});
