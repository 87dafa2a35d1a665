/**
 * A QUIC client that speaks no HTTP/3 by itself: tests write exact bytes on exact streams to
 * play a broken or hostile peer, and read back how the server closed the connection.
 */
import type { QuicApplication, QuicConnection } from '../../dataplane/quic/connection.js';
import { QuicEndpoint } from '../../dataplane/quic/endpoint.js';
import { quiche } from '../../dataplane/quic/quiche.js';

export interface CloseInfo {
  local: boolean;
  isApp: boolean;
  code: number;
  reason: string;
}

export class RawQuicClient implements QuicApplication {
  readonly received = new Map<number, Buffer[]>();
  readonly finished = new Set<number>();
  readonly resets = new Map<number, number>();
  closeInfo: CloseInfo | null = null;
  /** True once the connection is gone, however it ended (including a silent idle timeout). */
  isClosed = false;
  private readonly closed: Promise<CloseInfo | null>;
  private onClose!: (c: CloseInfo | null) => void;
  private onOpen!: () => void;
  private readonly opened: Promise<void>;
  private endpoint!: QuicEndpoint;
  quic!: QuicConnection;

  private constructor() {
    this.closed = new Promise((r) => {
      this.onClose = r;
    });
    this.opened = new Promise((r) => {
      this.onOpen = r;
    });
  }

  static async connect(port: number, host = '127.0.0.1'): Promise<RawQuicClient> {
    const cfg = quiche.Config.withBoringSslCtx(false, false, null, null, null, null);
    cfg.setApplicationProtos(['h3']);
    cfg.setMaxIdleTimeout(10000);
    cfg.setInitialMaxData(10_000_000);
    cfg.setInitialMaxStreamDataBidiLocal(1_000_000);
    cfg.setInitialMaxStreamDataBidiRemote(1_000_000);
    cfg.setInitialMaxStreamDataUni(1_000_000);
    cfg.setInitialMaxStreamsBidi(0);
    cfg.setInitialMaxStreamsUni(16);
    const c = new RawQuicClient();
    const { endpoint, connection } = await QuicEndpoint.connect(host, port, 'localhost', cfg);
    c.endpoint = endpoint;
    c.quic = connection;
    connection.app = c;
    connection.flush();
    const t = setTimeout(() => c.onClose({ local: true, isApp: false, code: -1, reason: 'handshake timeout' }), 5000);
    await Promise.race([c.opened, c.closed]);
    clearTimeout(t);
    return c;
  }

  onEstablished(): void {
    this.onOpen();
  }

  onStreamReadable(streamId: number): void {
    const buf = new Uint8Array(65536);
    for (;;) {
      const r = this.quic.streamRead(streamId, buf);
      if (!r) return;
      const [n, fin] = r;
      const list = this.received.get(streamId) ?? [];
      list.push(Buffer.from(buf.subarray(0, n)));
      this.received.set(streamId, list);
      if (fin) this.finished.add(streamId);
      if (n === 0 || fin) return;
    }
  }

  onStreamDrained(): void {}
  onInput(): void {}

  onStreamAborted(streamId: number, _direction: 'read' | 'write', code: number): void {
    this.resets.set(streamId, code);
  }

  onClosed(error: CloseInfo | null): void {
    this.closeInfo = error;
    this.isClosed = true;
    this.onClose(error);
  }

  write(streamId: number, bytes: Uint8Array | number[], fin = false): void {
    this.quic.streamWrite(streamId, bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes), fin);
    this.quic.flush();
  }

  /** Waits until the server closes the connection (or `ms` pass: then resolves null). */
  async waitClosed(ms = 5000): Promise<CloseInfo | null> {
    let t: NodeJS.Timeout | undefined;
    const r = await Promise.race([this.closed, new Promise<null>((res) => (t = setTimeout(() => res(null), ms)))]);
    clearTimeout(t);
    return r;
  }

  /** Waits for a reset or FIN on a stream. */
  async waitStream(streamId: number, ms = 5000): Promise<'fin' | 'reset' | 'timeout'> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (this.resets.has(streamId)) return 'reset';
      if (this.finished.has(streamId)) return 'fin';
      await new Promise((r) => setTimeout(r, 20));
    }
    return 'timeout';
  }

  async close(): Promise<void> {
    this.quic.close(true, 0x100, '');
    await this.endpoint.close();
  }
}
