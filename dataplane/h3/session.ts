/**
 * The role-independent half of an HTTP/3 connection (RFC 9114 §6.2, RFC 9204 §4.2): opens our
 * control and QPACK streams, reads the peer's unidirectional streams, enforces the control-stream
 * rules, and turns protocol violations into connection closes with the RFC's error codes.
 * Request streams (bidirectional) are left to the role: `H3ServerSession` or `H3ClientSession`.
 */
import type { QuicApplication, QuicStreamTransport } from '../quic/stream-transport.js';
import { H3, H3Error, h3ErrorName } from './errors.js';
import {
  encodeSettings,
  Frame,
  FrameReader,
  type FrameSink,
  isReservedH2Frame,
  parseSettings,
  parseSingleVarint,
  Setting,
  StreamType,
} from './frames.js';
import { encodeVarint, readVarint } from './varint.js';

/** One read buffer for the whole process: stream data is parsed (and copied where kept) at once. */
export const READ_BUFFER = new Uint8Array(65536);
/**
 * A stream read is under way (READ_BUFFER is lent to its consumers): a read that a callback
 * inside it would start waits for a microtask instead of overwriting the buffer.
 */
let reading = false;

export interface SessionOptions {
  /** Advertised SETTINGS_MAX_FIELD_SECTION_SIZE; also bounds HEADERS frames we accept. */
  maxFieldSectionSize: number;
}

enum UniKind {
  Unknown,
  Control,
  Encoder,
  Decoder,
  Ignored,
}

interface PeerUniStream {
  kind: UniKind;
  reader: FrameReader | null;
  /** Bytes of a stream-type varint that arrived split across reads (at most 7). */
  typePrefix: Uint8Array | null;
}

/** `C` is the QUIC connection underneath: the concrete one in production, an in-memory one in tests. */
export abstract class H3Session<C extends QuicStreamTransport = QuicStreamTransport> implements QuicApplication {
  /** The peer's SETTINGS once received. */
  peerSettings: Map<number, number> | null = null;
  /** Stream id limit from a GOAWAY the peer sent, if any. */
  peerGoawayId = -1;
  closed = false;
  private readonly peerUni = new Map<number, PeerUniStream>();
  private readonly seenCritical = new Set<UniKind>();
  private readonly controlSink: FrameSink;

  constructor(
    readonly quic: C,
    protected readonly isServer: boolean,
    protected readonly options: SessionOptions,
  ) {
    quic.app = this;
    this.controlSink = {
      onFrameData: () => this.fail(H3.FRAME_UNEXPECTED, 'DATA frame on the control stream'),
      onFrame: (type, payload) => this.onControlFrame(type, payload),
    };
  }

  /** Our own unidirectional stream ids: server 3, 7, 11; client 2, 6, 10 (RFC 9000 §2.1). */
  protected get controlStreamId(): number {
    return this.isServer ? 3 : 2;
  }

  onEstablished(): void {
    const base = this.controlStreamId;
    const settings = encodeSettings([
      [Setting.QPACK_MAX_TABLE_CAPACITY, 0],
      [Setting.QPACK_BLOCKED_STREAMS, 0],
      [Setting.MAX_FIELD_SECTION_SIZE, this.options.maxFieldSectionSize],
    ]);
    const control = new Uint8Array(1 + settings.length);
    control[0] = StreamType.CONTROL;
    control.set(settings, 1);
    this.quic.streamWrite(base, control, false);
    this.quic.streamWrite(base + 4, encodeVarint(StreamType.QPACK_ENCODER), false);
    this.quic.streamWrite(base + 8, encodeVarint(StreamType.QPACK_DECODER), false);
    this.onReady();
  }

  /** Hook for the role once our control streams are open. */
  protected onReady(): void {}

  /** Hook: a batch of packets or a timeout was processed. */
  onInput(): void {}

  onStreamReadable(streamId: number): void {
    if (this.closed) return;
    if (reading) {
      queueMicrotask(() => this.onStreamReadable(streamId));
      return;
    }
    reading = true;
    try {
      if ((streamId & 2) !== 0) {
        // Our own unidirectional streams are send-only; quiche never reports them readable.
        this.readPeerUni(streamId);
      } else {
        this.onRequestStreamReadable(streamId);
      }
    } catch (e) {
      this.onError(e, streamId);
    } finally {
      reading = false;
    }
  }

  protected abstract onRequestStreamReadable(streamId: number): void;

  /** Maps a thrown error to the RFC's action: close the connection or reset one stream. */
  protected onError(e: unknown, streamId: number): void {
    if (e instanceof SessionClosed) return;
    // Only request streams can be reset alone: the peer's unidirectional streams that we parse
    // are critical (control, QPACK), and asking to close one is not allowed (§6.2.1).
    if (e instanceof H3Error && e.scope === 'stream' && (streamId & 2) === 0) this.resetStream(streamId, e.code);
    else if (e instanceof H3Error) this.closeWith(e.code, e.message);
    else this.closeWith(H3.INTERNAL_ERROR, e instanceof Error ? e.message : String(e));
  }

  protected abstract resetStream(streamId: number, code: number): void;

  /** Closes the whole connection with an HTTP/3 error code. */
  closeWith(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.onConnectionError(code, reason);
    this.quic.close(true, code, reason.slice(0, 256));
  }

  /** Closes the connection and unwinds the parser that found the violation. */
  fail(code: number, reason: string): never {
    this.closeWith(code, reason);
    throw new SessionClosed(code, reason);
  }

  /** Hook: the session is failing with `code` (logging, counters). */
  protected onConnectionError(_code: number, _reason: string): void {}

  private readPeerUni(streamId: number): void {
    let s = this.peerUni.get(streamId);
    if (!s) {
      s = { kind: UniKind.Unknown, reader: null, typePrefix: null };
      this.peerUni.set(streamId, s);
    }
    for (;;) {
      const r = this.quic.streamRead(streamId, READ_BUFFER);
      if (r === null) return;
      const [n, fin] = r;
      let off = 0;
      if (s.kind === UniKind.Unknown && n > 0) off = this.identifyUni(streamId, s, READ_BUFFER, n);
      if (off < n) this.consumeUni(s, READ_BUFFER.subarray(off, n));
      if (fin) {
        if (s.kind === UniKind.Control || s.kind === UniKind.Encoder || s.kind === UniKind.Decoder) {
          this.fail(H3.CLOSED_CRITICAL_STREAM, 'the peer closed a critical stream');
        }
        this.peerUni.delete(streamId);
        return;
      }
      if (n === 0) return;
    }
  }

  /** Reads the stream-type varint, which may arrive split across reads; returns bytes consumed. */
  private identifyUni(streamId: number, s: PeerUniStream, buf: Uint8Array, n: number): number {
    const prefix = s.typePrefix;
    let head = buf.subarray(0, n);
    if (prefix) {
      head = new Uint8Array(prefix.length + Math.min(n, 8));
      head.set(prefix, 0);
      head.set(buf.subarray(0, Math.min(n, 8)), prefix.length);
    }
    const cur = { next: 0 };
    const type = readVarint(head, 0, head.length, cur);
    if (type < 0) {
      s.typePrefix = head.slice();
      return n;
    }
    s.typePrefix = null;
    const consumed = cur.next - (prefix?.length ?? 0);
    let kind: UniKind;
    switch (type) {
      case StreamType.CONTROL:
        kind = UniKind.Control;
        break;
      case StreamType.QPACK_ENCODER:
        kind = UniKind.Encoder;
        break;
      case StreamType.QPACK_DECODER:
        kind = UniKind.Decoder;
        break;
      case StreamType.PUSH:
        // We never send MAX_PUSH_ID, so a push stream is always an error; clients cannot push at all.
        this.fail(this.isServer ? H3.STREAM_CREATION_ERROR : H3.ID_ERROR, 'unexpected push stream');
        break;
      default:
        // Unknown and reserved stream types: stop reading and discard (§6.2.3).
        s.kind = UniKind.Ignored;
        this.quic.streamShutdown(streamId, 'read', H3.STREAM_CREATION_ERROR);
        return n;
    }
    if (this.seenCritical.has(kind)) this.fail(H3.STREAM_CREATION_ERROR, 'a second control or QPACK stream');
    this.seenCritical.add(kind);
    s.kind = kind;
    if (kind === UniKind.Control) s.reader = new FrameReader(16384);
    return consumed;
  }

  private consumeUni(s: PeerUniStream, data: Uint8Array): void {
    switch (s.kind) {
      case UniKind.Control:
        (s.reader as FrameReader).push(data, this.controlSink);
        return;
      case UniKind.Encoder:
        // With a zero-capacity table the only valid instruction is "Set Dynamic Table Capacity 0".
        for (const b of data) {
          if (b !== 0x20) this.fail(H3.QPACK_ENCODER_STREAM_ERROR, 'encoder instruction for a zero-capacity table');
        }
        return;
      default:
        // Decoder-stream instructions (stream cancellations) need no action without a dynamic table.
        return;
    }
  }

  private onControlFrame(type: number, payload: Uint8Array): void {
    if (this.peerSettings === null) {
      if (type !== Frame.SETTINGS) this.fail(H3.MISSING_SETTINGS, 'the control stream did not start with SETTINGS');
      this.peerSettings = parseSettings(payload);
      return;
    }
    switch (type) {
      case Frame.SETTINGS:
        this.fail(H3.FRAME_UNEXPECTED, 'a second SETTINGS frame');
        break;
      case Frame.GOAWAY: {
        const id = parseSingleVarint(payload, 'GOAWAY');
        if (this.peerGoawayId >= 0 && id > this.peerGoawayId) this.fail(H3.ID_ERROR, 'GOAWAY id increased');
        this.peerGoawayId = id;
        this.onGoaway(id);
        break;
      }
      case Frame.MAX_PUSH_ID:
        if (!this.isServer) this.fail(H3.FRAME_UNEXPECTED, 'MAX_PUSH_ID sent by a server');
        parseSingleVarint(payload, 'MAX_PUSH_ID');
        break;
      case Frame.CANCEL_PUSH:
        parseSingleVarint(payload, 'CANCEL_PUSH');
        break;
      default:
        if (type === Frame.HEADERS || type === Frame.PUSH_PROMISE || isReservedH2Frame(type)) {
          this.fail(H3.FRAME_UNEXPECTED, `frame 0x${type.toString(16)} on the control stream`);
        }
    }
  }

  /** Hook: the peer sent GOAWAY. */
  protected onGoaway(_id: number): void {}

  /** Sends GOAWAY on our control stream (server: first stream id not processed). */
  sendGoaway(id: number): void {
    const v = encodeVarint(id);
    const frame = new Uint8Array(2 + v.length);
    frame[0] = Frame.GOAWAY;
    frame[1] = v.length;
    frame.set(v, 2);
    this.quic.streamWrite(this.controlStreamId, frame, false);
  }

  onStreamAborted(streamId: number, direction: 'read' | 'write', code: number): void {
    if ((streamId & 2) !== 0 && direction === 'read') {
      const s = this.peerUni.get(streamId);
      if (s && s.kind !== UniKind.Ignored && s.kind !== UniKind.Unknown) {
        this.closeWith(H3.CLOSED_CRITICAL_STREAM, `the peer reset a critical stream (${h3ErrorName(code)})`);
      }
      return;
    }
    this.onRequestStreamAborted(streamId, direction, code);
  }

  protected abstract onRequestStreamAborted(streamId: number, direction: 'read' | 'write', code: number): void;

  abstract onStreamDrained(streamId: number): void;

  onClosed(error: { local: boolean; isApp: boolean; code: number; reason: string } | null): void {
    this.closed = true;
    this.onSessionClosed(error);
  }

  protected abstract onSessionClosed(
    error: { local: boolean; isApp: boolean; code: number; reason: string } | null,
  ): void;
}

/** Thrown by `fail` to unwind the parser that found the violation; swallowed at the session edge. */
export class SessionClosed extends Error {
  constructor(
    readonly code: number,
    reason: string,
  ) {
    super(reason);
  }
}
