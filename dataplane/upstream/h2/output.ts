/**
 * What one HTTP/2 connection writes in one event-loop turn, built in one buffer (issue #16):
 * frames are appended in order, request body is copied here once from wherever it was read
 * (the HTTP/3 listener hands over a view of its reused read buffer), and DATA for one stream
 * written back to back extends one frame instead of starting a frame per QUIC read. Once the
 * socket is done with a turn's bytes, their memory serves a later turn. No I/O here.
 */
import { Flag, FRAME_HEADER_LEN, FrameType, writeFrameHeader } from './frames.js';

const INITIAL_BYTES = 16 * 1024;
/** A buffer grown past this for a burst is not kept for the next turn (bounded idle memory). */
const KEEP_BYTES = 256 * 1024;

export class FrameOutput {
  private buf: Buffer | null = null;
  private len = 0;
  /** Where the last frame starts when it is DATA that later bytes of its stream may extend. */
  private openData = -1;
  private openStream = 0;

  /** Bytes waiting for the turn's write. */
  get length(): number {
    return this.len;
  }

  /** Bytes that are already a whole frame (or the preface). */
  append(bytes: Uint8Array): void {
    const buf = this.room(bytes.length);
    buf.set(bytes, this.len);
    this.len += bytes.length;
    this.openData = -1;
  }

  /**
   * `payload` as DATA on `streamId` (flow control is the caller's), copied now: the caller's
   * memory may be reused as soon as this returns. Frames stay within `maxFrameSize`.
   */
  data(streamId: number, payload: Uint8Array, maxFrameSize: number): void {
    let off = 0;
    while (off < payload.length) {
      let buf = this.buf as Buffer;
      let at = this.openData;
      let length = at >= 0 && this.openStream === streamId ? buf.readUIntBE(at, 3) : maxFrameSize;
      if (length >= maxFrameSize) {
        buf = this.room(FRAME_HEADER_LEN);
        at = this.len;
        writeFrameHeader(buf, at, 0, FrameType.DATA, 0, streamId);
        this.len += FRAME_HEADER_LEN;
        this.openData = at;
        this.openStream = streamId;
        length = 0;
      }
      const n = Math.min(payload.length - off, maxFrameSize - length);
      buf = this.room(n);
      buf.set(n === payload.length ? payload : payload.subarray(off, off + n), this.len);
      this.len += n;
      off += n;
      buf.writeUIntBE(length + n, this.openData, 3);
    }
  }

  /** END_STREAM: on the stream's DATA frame written just before when there is one, else an empty DATA frame. */
  endStream(streamId: number): void {
    if (this.openData >= 0 && this.openStream === streamId) {
      const buf = this.buf as Buffer;
      buf[this.openData + 4] = (buf[this.openData + 4] as number) | Flag.END_STREAM;
    } else {
      const buf = this.room(FRAME_HEADER_LEN);
      writeFrameHeader(buf, this.len, 0, FrameType.DATA, Flag.END_STREAM, streamId);
      this.len += FRAME_HEADER_LEN;
    }
    // Nothing may follow END_STREAM in that frame.
    this.openData = -1;
  }

  /** The turn's bytes (null when there are none). The memory is the caller's until `recycle`. */
  take(): Buffer | null {
    if (this.len === 0 || !this.buf) return null;
    const out = this.buf.subarray(0, this.len);
    this.buf = null;
    this.len = 0;
    this.openData = -1;
    return out;
  }

  /**
   * `taken` (from `take`) is no longer referenced (its write completed): its memory serves the
   * next turn when nothing was written since (else it is left to the garbage collector).
   */
  recycle(taken: Buffer): void {
    if (this.buf || this.len > 0) return;
    const whole = Buffer.from(taken.buffer, taken.byteOffset, taken.buffer.byteLength - taken.byteOffset);
    if (whole.length <= KEEP_BYTES) this.buf = whole;
  }

  /** A buffer with `n` free bytes after `len`, grown (content kept) when needed. */
  private room(n: number): Buffer {
    const buf = this.buf;
    if (buf && buf.length - this.len >= n) return buf;
    const size = Math.max(INITIAL_BYTES, (buf?.length ?? 0) * 2, this.len + n);
    const grown = Buffer.allocUnsafeSlow(size);
    if (buf && this.len > 0) buf.copy(grown, 0, 0, this.len);
    this.buf = grown;
    return grown;
  }
}
