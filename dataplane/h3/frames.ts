/**
 * HTTP/3 frames (RFC 9114 §7): types, encoders, and an incremental reader that streams DATA
 * payloads through without buffering and collects every other known frame whole (bounded).
 */
import type { Fields } from '../http/fields.js';
import { H3, H3Error } from './errors.js';
import { encodeFieldSection } from './qpack/encoder.js';
import { readVarint, varintLength, writeVarint } from './varint.js';

export const Frame = {
  DATA: 0x00,
  HEADERS: 0x01,
  CANCEL_PUSH: 0x03,
  SETTINGS: 0x04,
  PUSH_PROMISE: 0x05,
  GOAWAY: 0x07,
  MAX_PUSH_ID: 0x0d,
} as const;

export const Setting = {
  QPACK_MAX_TABLE_CAPACITY: 0x01,
  MAX_FIELD_SECTION_SIZE: 0x06,
  QPACK_BLOCKED_STREAMS: 0x07,
  ENABLE_CONNECT_PROTOCOL: 0x08,
  H3_DATAGRAM: 0x33,
} as const;

export const StreamType = { CONTROL: 0x00, PUSH: 0x01, QPACK_ENCODER: 0x02, QPACK_DECODER: 0x03 } as const;

/** HTTP/2 frame types that RFC 9114 §7.2.8 reserves: receiving one is H3_FRAME_UNEXPECTED. */
export function isReservedH2Frame(type: number): boolean {
  return type === 0x02 || type === 0x06 || type === 0x08 || type === 0x09;
}

/** Frame types this implementation understands; everything else is skipped unread. */
function isKnownFrame(type: number): boolean {
  return (
    type <= 0x0d &&
    (type <= 0x01 ||
      type === 0x03 ||
      type === 0x04 ||
      type === 0x05 ||
      type === 0x07 ||
      type === 0x0d ||
      isReservedH2Frame(type))
  );
}

export function encodeFrameHeader(type: number, length: number): Uint8Array {
  const out = new Uint8Array(varintLength(type) + varintLength(length));
  writeVarint(out, writeVarint(out, 0, type), length);
  return out;
}

/** A whole HEADERS frame carrying `fields` as a QPACK field section (static table only). */
export function encodeHeadersFrame(fields: Fields): Uint8Array {
  const block = encodeFieldSection(fields);
  const head = encodeFrameHeader(Frame.HEADERS, block.length);
  const frame = new Uint8Array(head.length + block.length);
  frame.set(head, 0);
  frame.set(block, head.length);
  return frame;
}

/**
 * What a stream's FIN rides on when no other bytes are left to send: a reserved frame type with
 * an empty payload (RFC 9114 §7.2.8), which every peer ignores. quiche 0.18 counts a stream as
 * complete once all its *data* is acknowledged, so a bare FIN written after the data can be
 * collected unsent (or never retransmitted) and the peer then waits for the idle timeout.
 */
export const END_OF_STREAM: Uint8Array = encodeFrameHeader(0x21, 0);

export function encodeFrame(type: number, payload: Uint8Array): Uint8Array {
  const tl = varintLength(type);
  const ll = varintLength(payload.length);
  const out = new Uint8Array(tl + ll + payload.length);
  writeVarint(out, writeVarint(out, 0, type), payload.length);
  out.set(payload, tl + ll);
  return out;
}

export function encodeSettings(settings: ReadonlyArray<readonly [number, number]>): Uint8Array {
  let len = 0;
  for (const [id, v] of settings) len += varintLength(id) + varintLength(v);
  const payload = new Uint8Array(len);
  let off = 0;
  for (const [id, v] of settings) off = writeVarint(payload, writeVarint(payload, off, id), v);
  return encodeFrame(Frame.SETTINGS, payload);
}

/** SETTINGS payload → map. Duplicates and HTTP/2-only settings are H3_SETTINGS_ERROR (§7.2.4). */
export function parseSettings(payload: Uint8Array): Map<number, number> {
  const out = new Map<number, number>();
  const cur = { next: 0 };
  let off = 0;
  while (off < payload.length) {
    const id = readVarint(payload, off, payload.length, cur);
    if (id < 0) throw new H3Error(H3.FRAME_ERROR, 'truncated SETTINGS frame');
    const v = readVarint(payload, cur.next, payload.length, cur);
    if (v < 0) throw new H3Error(H3.FRAME_ERROR, 'truncated SETTINGS frame');
    off = cur.next;
    if (id >= 0x02 && id <= 0x05)
      throw new H3Error(H3.SETTINGS_ERROR, `HTTP/2 setting 0x${id.toString(16)} in SETTINGS`);
    if (out.has(id)) throw new H3Error(H3.SETTINGS_ERROR, `duplicate setting 0x${id.toString(16)}`);
    out.set(id, v);
  }
  return out;
}

/** GOAWAY, MAX_PUSH_ID and CANCEL_PUSH carry exactly one varint. */
export function parseSingleVarint(payload: Uint8Array, frameName: string): number {
  const cur = { next: 0 };
  const v = readVarint(payload, 0, payload.length, cur);
  if (v < 0 || cur.next !== payload.length) throw new H3Error(H3.FRAME_ERROR, `malformed ${frameName} frame`);
  return v;
}

export interface FrameSink {
  /** A piece of a DATA frame's payload. The view is only valid during the call. */
  onFrameData(chunk: Uint8Array): void;
  /** A whole known non-DATA frame. The payload is only valid during the call. */
  onFrame(type: number, payload: Uint8Array): void;
}

enum State {
  Header,
  Data,
  Buffered,
  Skip,
}

/**
 * Parses the frames of one stream as bytes arrive. `maxFrame` bounds the payload of buffered
 * (non-DATA) frames; a larger one throws H3_EXCESSIVE_LOAD before anything is buffered.
 */
export class FrameReader {
  private state = State.Header;
  private readonly head = new Uint8Array(16);
  private headLen = 0;
  private remaining = 0;
  private type = 0;
  private buf: Uint8Array | null = null;
  private filled = 0;
  private readonly cursor = { next: 0 };

  constructor(private readonly maxFrame: number) {}

  /** True when the stream stopped inside a frame (a truncated frame at FIN is H3_FRAME_ERROR). */
  get midFrame(): boolean {
    return this.state !== State.Header || this.headLen > 0;
  }

  push(chunk: Uint8Array, sink: FrameSink): void {
    let off = 0;
    const end = chunk.length;
    while (off < end) {
      switch (this.state) {
        case State.Header:
          off = this.readHeader(chunk, off, sink);
          break;
        case State.Data: {
          const n = Math.min(this.remaining, end - off);
          this.remaining -= n;
          if (this.remaining === 0) this.state = State.Header;
          sink.onFrameData(chunk.subarray(off, off + n));
          off += n;
          break;
        }
        case State.Buffered: {
          const buf = this.buf as Uint8Array;
          const n = Math.min(buf.length - this.filled, end - off);
          buf.set(chunk.subarray(off, off + n), this.filled);
          this.filled += n;
          off += n;
          if (this.filled === buf.length) {
            this.buf = null;
            this.state = State.Header;
            sink.onFrame(this.type, buf);
          }
          break;
        }
        case State.Skip: {
          const n = Math.min(this.remaining, end - off);
          this.remaining -= n;
          off += n;
          if (this.remaining === 0) this.state = State.Header;
          break;
        }
      }
    }
  }

  /** Accumulates the (at most 16-byte) frame header; returns the offset after consumed bytes. */
  private readHeader(chunk: Uint8Array, off: number, sink: FrameSink): number {
    const take = Math.min(this.head.length - this.headLen, chunk.length - off);
    this.head.set(chunk.subarray(off, off + take), this.headLen);
    const avail = this.headLen + take;
    const cur = this.cursor;
    const type = readVarint(this.head, 0, avail, cur);
    const len = type < 0 ? -1 : readVarint(this.head, cur.next, avail, cur);
    if (len < 0) {
      this.headLen = avail;
      return off + take;
    }
    // Only the header bytes are consumed from this chunk; the rest is payload.
    const consumed = cur.next - this.headLen;
    this.headLen = 0;
    this.type = type;
    this.startFrame(type, len, sink);
    return off + consumed;
  }

  private startFrame(type: number, len: number, sink: FrameSink): void {
    if (type === Frame.DATA) {
      this.remaining = len;
      this.state = len === 0 ? State.Header : State.Data;
      return;
    }
    if (!isKnownFrame(type)) {
      this.remaining = len;
      this.state = len === 0 ? State.Header : State.Skip;
      return;
    }
    if (len > this.maxFrame) {
      throw new H3Error(
        H3.EXCESSIVE_LOAD,
        `frame 0x${type.toString(16)} of ${len} bytes exceeds ${this.maxFrame}`,
        'stream',
      );
    }
    if (len === 0) {
      sink.onFrame(type, new Uint8Array(0));
      return;
    }
    this.buf = new Uint8Array(len);
    this.filled = 0;
    this.state = State.Buffered;
  }
}
