/**
 * HTTP/2 framing (RFC 9113 §4, §6): the frame header, the frames the client writes, and a reader
 * that cuts a byte stream into frames. No I/O and no connection state: connection.ts decides
 * what a frame means.
 */

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME_HEADER_LEN = 9;
/** SETTINGS_MAX_FRAME_SIZE's initial value, and the most we accept (we never announce more). */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
export const MAX_WINDOW = 2 ** 31 - 1;

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** RFC 9113 §7. */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

const ERROR_NAMES = new Map(Object.entries(ErrorCode).map(([k, v]) => [v as number, k]));

/** `PROTOCOL_ERROR`, or the number for codes RFC 9113 does not name. */
export function errorName(code: number): string {
  return ERROR_NAMES.get(code) ?? `0x${code.toString(16)}`;
}

/** A connection error (RFC 9113 §5.4.1): GOAWAY with `code`, then the connection closes. */
export class H2ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'H2ConnectionError';
  }
}

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** A frame header at `at` in `buf`. */
export function writeFrameHeader(
  buf: Buffer,
  at: number,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): void {
  buf[at] = length >>> 16;
  buf[at + 1] = (length >>> 8) & 0xff;
  buf[at + 2] = length & 0xff;
  buf[at + 3] = type;
  buf[at + 4] = flags;
  buf.writeUInt32BE(streamId & MAX_WINDOW, at + 5);
}

/** One frame with its payload copied after the header. */
export function frame(type: number, flags: number, streamId: number, payload?: Uint8Array): Buffer {
  const len = payload ? payload.length : 0;
  const buf = Buffer.allocUnsafe(FRAME_HEADER_LEN + len);
  writeFrameHeader(buf, 0, len, type, flags, streamId);
  if (payload) buf.set(payload, FRAME_HEADER_LEN);
  return buf;
}

export function settingsFrame(settings: ReadonlyArray<readonly [number, number]>): Buffer {
  const p = Buffer.allocUnsafe(settings.length * 6);
  settings.forEach(([id, value], i) => {
    p.writeUInt16BE(id, i * 6);
    p.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(FrameType.SETTINGS, 0, 0, p);
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const p = Buffer.allocUnsafe(4);
  p.writeUInt32BE(increment, 0);
  return frame(FrameType.WINDOW_UPDATE, 0, streamId, p);
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  const p = Buffer.allocUnsafe(4);
  p.writeUInt32BE(code, 0);
  return frame(FrameType.RST_STREAM, 0, streamId, p);
}

export function goawayFrame(lastStreamId: number, code: number, debug = ''): Buffer {
  const d = Buffer.from(debug, 'utf8');
  const p = Buffer.allocUnsafe(8 + d.length);
  p.writeUInt32BE(lastStreamId, 0);
  p.writeUInt32BE(code, 4);
  d.copy(p, 8);
  return frame(FrameType.GOAWAY, 0, 0, p);
}

export function pingFrame(payload: Uint8Array, ack: boolean): Buffer {
  return frame(FrameType.PING, ack ? Flag.ACK : 0, 0, payload);
}

/**
 * HEADERS, then CONTINUATION frames if the block is larger than the peer's frame size limit
 * (RFC 9113 §6.10: nothing may come between them, so they are written as one buffer).
 */
export function headersFrames(streamId: number, block: Uint8Array, endStream: boolean, maxFrameSize: number): Buffer {
  if (block.length <= maxFrameSize) {
    return frame(FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), streamId, block);
  }
  const parts: Buffer[] = [];
  for (let off = 0; off < block.length; off += maxFrameSize) {
    const chunk = block.subarray(off, Math.min(off + maxFrameSize, block.length));
    const last = off + maxFrameSize >= block.length;
    const first = off === 0;
    const flags = (last ? Flag.END_HEADERS : 0) | (first && endStream ? Flag.END_STREAM : 0);
    parts.push(frame(first ? FrameType.HEADERS : FrameType.CONTINUATION, flags, streamId, chunk));
  }
  return Buffer.concat(parts);
}

/**
 * Cuts bytes into frames. A frame longer than `maxFrameSize` (what we announced) is a
 * FRAME_SIZE_ERROR connection error (§4.2); the reader never buffers more than one frame.
 */
export class FrameReader {
  private pending: Buffer | null = null;

  constructor(private readonly maxFrameSize: number) {}

  /** Calls `onFrame` for every complete frame in what has arrived so far. */
  push(chunk: Buffer, onFrame: (f: Frame) => void): void {
    let buf = chunk;
    if (this.pending) {
      // Complete the frame that straddled the last chunk by copying just its missing bytes, so a
      // large body is not copied once more per socket read.
      const head = this.pending;
      const need = head.length < FRAME_HEADER_LEN ? FRAME_HEADER_LEN - head.length : 0;
      const withHeader = need > 0 ? Buffer.concat([head, chunk.subarray(0, need)]) : head;
      if (withHeader.length < FRAME_HEADER_LEN) {
        this.pending = withHeader;
        return;
      }
      const total = FRAME_HEADER_LEN + this.lengthOf(withHeader, 0);
      const take = total - head.length;
      if (chunk.length < take) {
        this.pending = Buffer.concat([head, chunk]);
        return;
      }
      this.pending = null;
      this.emit(Buffer.concat([head, chunk.subarray(0, take)]), 0, onFrame);
      buf = chunk.subarray(take);
    }
    let off = 0;
    while (buf.length - off >= FRAME_HEADER_LEN) {
      const length = this.lengthOf(buf, off);
      if (buf.length - off < FRAME_HEADER_LEN + length) break;
      off = this.emit(buf, off, onFrame);
    }
    // The rest is kept as a copy: `buf` may be a slice of a pooled socket buffer.
    if (off < buf.length) this.pending = Buffer.from(buf.subarray(off));
  }

  /** The length field of the frame at `off`; a frame above the limit is a FRAME_SIZE_ERROR. */
  private lengthOf(buf: Buffer, off: number): number {
    const length = (buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!;
    if (length > this.maxFrameSize) {
      throw new H2ConnectionError(
        ErrorCode.FRAME_SIZE_ERROR,
        `a ${length}-byte frame, above the ${this.maxFrameSize} announced`,
      );
    }
    return length;
  }

  /** Hands the complete frame at `off` to `onFrame`; returns the offset after it. */
  private emit(buf: Buffer, off: number, onFrame: (f: Frame) => void): number {
    const length = this.lengthOf(buf, off);
    const start = off + FRAME_HEADER_LEN;
    const end = start + length;
    onFrame({
      type: buf[off + 3]!,
      flags: buf[off + 4]!,
      streamId: buf.readUInt32BE(off + 5) & MAX_WINDOW,
      payload: buf.subarray(start, end),
    });
    return end;
  }
}

/**
 * The content of a HEADERS or DATA payload without its padding (and HEADERS' priority fields):
 * a pad length at least the rest of the payload is a PROTOCOL_ERROR (§6.1, §6.2).
 */
export function unpad(f: Frame): Buffer {
  let p = f.payload;
  let padLength = 0;
  if (f.flags & Flag.PADDED) {
    if (p.length < 1) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'padded frame without a pad length');
    padLength = p[0]!;
    p = p.subarray(1);
  }
  if (f.type === FrameType.HEADERS && f.flags & Flag.PRIORITY) {
    if (p.length < 5) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS too short for its priority');
    p = p.subarray(5);
  }
  // Padding may fill the rest of the payload (an empty DATA), never more (§6.1, §6.2).
  if (padLength > p.length) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'padding longer than the frame');
  return p.subarray(0, p.length - padLength);
}
