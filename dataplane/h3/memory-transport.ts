/**
 * For unit tests of the HTTP/3 layer without sockets or a handshake: a `QuicStreamTransport`
 * whose peer is the test. The test delivers stream bytes, FINs and resets as quiche would report
 * them; the transport records what the application writes, resets and closes.
 */
import type { QuicApplication, QuicStreamTransport } from '../quic/stream-transport.js';
import { encodeFrame, Frame } from './frames.js';
import { decodeFieldSection } from './qpack/decoder.js';
import { encodeFieldSection } from './qpack/encoder.js';
import { readVarint } from './varint.js';

interface Inbound {
  chunks: Uint8Array[];
  fin: boolean;
  finRead: boolean;
  /** RESET_STREAM code from the peer, reported on the next read. */
  resetCode: number | null;
  /** We sent STOP_SENDING: quiche discards what still arrives. */
  stopped: boolean;
}

export interface Shutdown {
  streamId: number;
  direction: 'read' | 'write';
  code: number;
}

export class MemoryTransport implements QuicStreamTransport {
  app: QuicApplication | null = null;
  peer = { host: '192.0.2.7', port: 4433 };
  originalDcid = '0a0b0c0d';
  isEstablished = true;
  inEarlyData = false;
  certChain: Uint8Array[] | null = null;
  /** What `streamWrite` answers (false: backpressure). */
  writeAccepted = true;
  /** Streams quiche would still hold (not every byte acknowledged). */
  readonly alive = new Set<number>();
  readonly written = new Map<number, { bytes: Uint8Array[]; fin: boolean }>();
  readonly shutdowns: Shutdown[] = [];
  closed: { isApp: boolean; code: number; reason: string } | null = null;
  private readonly inbound = new Map<number, Inbound>();
  /** STOP_SENDING codes from the peer, reported on our next write. */
  private readonly stopSending = new Map<number, number>();

  private in(streamId: number): Inbound {
    let s = this.inbound.get(streamId);
    if (!s) {
      s = { chunks: [], fin: false, finRead: false, resetCode: null, stopped: false };
      this.inbound.set(streamId, s);
    }
    return s;
  }

  /** The peer sends bytes (and maybe FIN) on a stream; the application hears it is readable. */
  deliver(streamId: number, data: Uint8Array, fin = false): void {
    const s = this.in(streamId);
    if (s.stopped || s.finRead || s.resetCode !== null) return;
    if (data.length > 0) s.chunks.push(data.slice());
    if (fin) s.fin = true;
    this.app?.onStreamReadable(streamId);
  }

  /** The peer sends RESET_STREAM: quiche reports the stream readable, and the read fails. */
  peerReset(streamId: number, code: number): void {
    const s = this.in(streamId);
    if (s.stopped || s.finRead) return;
    s.chunks = [];
    s.resetCode = code;
    this.app?.onStreamReadable(streamId);
  }

  /** The peer sends STOP_SENDING: our next write on the stream reports it. */
  peerStopSending(streamId: number, code: number): void {
    this.stopSending.set(streamId, code);
  }

  streamRead(streamId: number, buf: Uint8Array): [number, boolean] | null {
    const s = this.inbound.get(streamId);
    if (!s || s.finRead) return null;
    if (s.resetCode !== null) {
      const code = s.resetCode;
      s.resetCode = null;
      s.finRead = true;
      this.app?.onStreamAborted(streamId, 'read', code);
      return null;
    }
    let n = 0;
    while (s.chunks.length > 0 && n < buf.length) {
      const c = s.chunks[0];
      const take = Math.min(c.length, buf.length - n);
      buf.set(c.subarray(0, take), n);
      n += take;
      if (take === c.length) s.chunks.shift();
      else s.chunks[0] = c.subarray(take);
    }
    const fin = s.fin && s.chunks.length === 0;
    if (n === 0 && !fin) return null;
    if (fin) s.finRead = true;
    return [n, fin];
  }

  streamWrite(streamId: number, data: Uint8Array, fin: boolean): boolean {
    const stop = this.stopSending.get(streamId);
    if (stop !== undefined) {
      this.stopSending.delete(streamId);
      this.app?.onStreamAborted(streamId, 'write', stop);
      return true;
    }
    let w = this.written.get(streamId);
    if (!w) {
      w = { bytes: [], fin: false };
      this.written.set(streamId, w);
    }
    if (w.fin) throw new Error(`write on stream ${streamId} after its FIN`);
    w.bytes.push(data.slice());
    if (fin) w.fin = true;
    return this.writeAccepted;
  }

  streamShutdown(streamId: number, direction: 'read' | 'write', code: number): void {
    this.shutdowns.push({ streamId, direction, code });
    if (direction === 'read') {
      const s = this.in(streamId);
      s.stopped = true;
      s.chunks = [];
    }
  }

  close(isApp: boolean, code: number, reason: string): void {
    this.closed ??= { isApp, code, reason };
  }

  peerCertChain(): Uint8Array[] | null {
    return this.certChain;
  }

  streamAlive(streamId: number): boolean {
    return this.alive.has(streamId);
  }

  /** quiche retired the connection: the application hears once that it is gone. */
  finishClose(error: { local: boolean; isApp: boolean; code: number; reason: string } | null = null): void {
    this.app?.onClosed(error);
  }

  // --- Reading what the application sent ---

  /** Everything written on a stream, concatenated. */
  bytes(streamId: number): Uint8Array {
    return Buffer.concat(this.written.get(streamId)?.bytes ?? []);
  }

  finished(streamId: number): boolean {
    return this.written.get(streamId)?.fin ?? false;
  }

  /** The HTTP/3 frames written on a stream (from `offset`, e.g. 1 past a stream-type byte). */
  frames(streamId: number, offset = 0): Array<{ type: number; payload: Uint8Array }> {
    return parseFrames(this.bytes(streamId).subarray(offset));
  }

  /** Shutdowns of one stream, as `direction:code` strings. */
  shutdownsOf(streamId: number): string[] {
    return this.shutdowns.filter((s) => s.streamId === streamId).map((s) => `${s.direction}:0x${s.code.toString(16)}`);
  }
}

export function parseFrames(data: Uint8Array): Array<{ type: number; payload: Uint8Array }> {
  const out: Array<{ type: number; payload: Uint8Array }> = [];
  const cur = { next: 0 };
  let off = 0;
  while (off < data.length) {
    const type = readVarint(data, off, data.length, cur);
    const len = readVarint(data, cur.next, data.length, cur);
    if (type < 0 || len < 0 || cur.next + len > data.length) throw new Error('truncated frame');
    out.push({ type, payload: data.subarray(cur.next, cur.next + len) });
    off = cur.next + len;
  }
  return out;
}

/** A HEADERS frame carrying `fields` (QPACK, static table only). */
export function headersFrame(fields: ReadonlyArray<readonly [string, string]>): Uint8Array {
  return encodeFrame(Frame.HEADERS, encodeFieldSection(fields));
}

export function dataFrame(body: string | Uint8Array): Uint8Array {
  return encodeFrame(Frame.DATA, typeof body === 'string' ? Buffer.from(body) : body);
}

export function decodeHeaders(payload: Uint8Array): Array<[string, string]> {
  return decodeFieldSection(payload, 1 << 20);
}
