/**
 * Spooky's own HTTP/3 client, on the same QUIC endpoint, frame reader and QPACK code as the
 * server. Used by `spooky get`, the tests and the load generator. Requests beyond the server's
 * stream limit wait for credit instead of failing.
 */
import type { Fields } from '../http/fields.js';
import type { QuicConnection } from '../quic/connection.js';
import { QuicEndpoint } from '../quic/endpoint.js';
import { quiche } from '../quic/quiche.js';
import { H3, H3Error, h3ErrorName } from './errors.js';
import { encodeFrameHeader, encodeHeadersFrame, Frame, FrameReader, type FrameSink } from './frames.js';
import { decodeFieldSection } from './qpack/decoder.js';
import { H3Session, READ_BUFFER } from './session.js';

export type { Fields };

export interface ClientOptions {
  /** SNI and certificate name; defaults to the host. */
  serverName?: string;
  /** Skip certificate verification (self-signed development certificates). */
  insecure?: boolean;
  /** PEM CA bundle to verify the server against. */
  ca?: Uint8Array;
  handshakeTimeoutMs?: number;
  maxIdleTimeoutMs?: number;
}

export interface ClientRequest {
  method?: string;
  path: string;
  authority: string;
  scheme?: string;
  headers?: Fields;
  /** The whole body, sent with backpressure. */
  body?: Uint8Array;
  trailers?: Fields;
  /** False: count response body bytes without keeping them (load generation). Default true. */
  collectBody?: boolean;
}

export interface ClientResponse {
  status: number;
  headers: Fields;
  /** The body, unless the request set `collectBody: false` (then empty; see bodyBytes). */
  body: Buffer;
  bodyBytes: number;
  trailers: Fields | null;
  /** 1xx responses received before the final one. */
  interim: Array<{ status: number; headers: Fields }>;
}

/** The server reset the stream or the connection ended before the response completed. */
export class RequestFailed extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'RequestFailed';
  }
}

const BODY_CHUNK = 64 * 1024;

export class H3ClientStream implements FrameSink {
  status = 0;
  headers: Fields = [];
  trailers: Fields | null = null;
  readonly interim: Array<{ status: number; headers: Fields }> = [];
  readonly chunks: Buffer[] = [];
  /** Response body bytes received. */
  bodyBytes = 0;
  collectBody = true;
  private readonly reader = new FrameReader(1 << 20);
  private drainWaiter: (() => void) | null = null;
  private settled = false;
  readonly done: Promise<ClientResponse>;
  private resolve!: (r: ClientResponse) => void;
  private reject!: (e: Error) => void;

  constructor(
    readonly id: number,
    private readonly session: H3ClientSession,
  ) {
    this.done = new Promise((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    // Callers that only await `done` must not see unhandled rejections from sibling paths.
    this.done.catch(() => {});
  }

  onFrameData(chunk: Uint8Array): void {
    if (this.status === 0) throw new H3Error(H3.FRAME_UNEXPECTED, 'DATA before response HEADERS');
    this.bodyBytes += chunk.length;
    if (this.collectBody) this.chunks.push(Buffer.from(chunk));
  }

  onFrame(type: number, payload: Uint8Array): void {
    if (type !== Frame.HEADERS)
      throw new H3Error(H3.FRAME_UNEXPECTED, `frame 0x${type.toString(16)} on a request stream`);
    const fields = decodeFieldSection(payload, 1 << 20);
    if (this.status !== 0) {
      this.trailers = fields;
      return;
    }
    const statusField = fields.find((f: readonly [string, string]) => f[0] === ':status');
    const status = statusField ? Number(statusField[1]) : Number.NaN;
    if (!(status >= 100 && status <= 999))
      throw new H3Error(H3.MESSAGE_ERROR, 'response without a valid :status', 'stream');
    const rest = fields.filter((f: readonly [string, string]) => f[0] !== ':status');
    if (status < 200) this.interim.push({ status, headers: rest });
    else {
      this.status = status;
      this.headers = rest;
    }
  }

  readAvailable(): void {
    for (;;) {
      const r = this.session.quic.streamRead(this.id, READ_BUFFER);
      if (r === null) return;
      const [n, fin] = r;
      if (n > 0) this.reader.push(READ_BUFFER.subarray(0, n), this);
      if (fin) {
        if (this.reader.midFrame) throw new H3Error(H3.FRAME_ERROR, 'response ended inside a frame');
        if (this.status === 0) this.fail(new RequestFailed(H3.MESSAGE_ERROR, 'stream ended without a response'));
        else this.complete();
        return;
      }
      if (n === 0) return;
    }
  }

  private complete(): void {
    if (this.settled) return;
    this.settled = true;
    this.session.forget(this);
    this.resolve({
      status: this.status,
      headers: this.headers,
      body: Buffer.concat(this.chunks),
      bodyBytes: this.bodyBytes,
      trailers: this.trailers,
      interim: this.interim,
    });
  }

  fail(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.session.forget(this);
    this.drainWaiter?.();
    this.reject(err);
  }

  drained(): void {
    const w = this.drainWaiter;
    this.drainWaiter = null;
    w?.();
  }

  /** Sends the request: HEADERS, then the body in DATA frames with backpressure, then FIN. */
  async send(req: ClientRequest): Promise<void> {
    const quic = this.session.quic;
    const fields: Array<readonly [string, string]> = [
      [':method', req.method ?? 'GET'],
      [':scheme', req.scheme ?? 'https'],
      [':authority', req.authority],
      [':path', req.path],
      ...(req.headers ?? []),
    ];
    const hasBody = req.body !== undefined && req.body.length > 0;
    const hasTrailers = req.trailers !== undefined && req.trailers.length > 0;
    quic.streamWrite(this.id, encodeHeadersFrame(fields), !hasBody && !hasTrailers);
    if (hasBody) {
      const body = req.body as Uint8Array;
      for (let off = 0; off < body.length && !this.settled; off += BODY_CHUNK) {
        const chunk = body.subarray(off, Math.min(off + BODY_CHUNK, body.length));
        const last = off + BODY_CHUNK >= body.length && !hasTrailers;
        quic.streamWrite(this.id, encodeFrameHeader(Frame.DATA, chunk.length), false);
        if (!quic.streamWrite(this.id, chunk, last)) {
          await new Promise<void>((r) => {
            this.drainWaiter = r;
          });
        }
      }
    }
    if (hasTrailers && !this.settled) {
      quic.streamWrite(this.id, encodeHeadersFrame(req.trailers as Fields), true);
    }
  }
}

/**
 * One quiche Config (TLS context included) per distinct client settings, shared by every
 * connection: building a TLS context per connection is slow, and sharing also lets session
 * resumption work across connections later.
 */
const configCache = new Map<string, ReturnType<typeof quiche.Config.withBoringSslCtx>>();

function clientConfig(opts: ClientOptions) {
  const key = `${opts.insecure ? 1 : 0}|${opts.maxIdleTimeoutMs ?? 30000}|${opts.ca ? Buffer.from(opts.ca).toString('base64') : ''}`;
  let cfg = configCache.get(key);
  if (cfg) return cfg;
  cfg = quiche.Config.withBoringSslCtx(!opts.insecure, false, opts.ca ?? null, null, null, null);
  cfg.setApplicationProtos(['h3']);
  cfg.setMaxIdleTimeout(opts.maxIdleTimeoutMs ?? 30000);
  cfg.setMaxRecvUdpPayloadSize(quiche.MAX_DATAGRAM_SIZE);
  cfg.setMaxSendUdpPayloadSize(quiche.MAX_DATAGRAM_SIZE);
  cfg.setInitialMaxData(16 * 1024 * 1024);
  cfg.setInitialMaxStreamDataBidiLocal(4 * 1024 * 1024);
  cfg.setInitialMaxStreamDataBidiRemote(1024 * 1024);
  cfg.setInitialMaxStreamDataUni(1024 * 1024);
  cfg.setInitialMaxStreamsBidi(0);
  cfg.setInitialMaxStreamsUni(16);
  cfg.setDisableActiveMigration(true);
  configCache.set(key, cfg);
  return cfg;
}

export class H3ClientSession extends H3Session<QuicConnection> {
  private readonly streams = new Map<number, H3ClientStream>();
  private nextStreamId = 0;
  private readonly waiting: Array<() => void> = [];
  private endpoint: QuicEndpoint | null = null;
  private established!: () => void;
  private failed!: (e: Error) => void;
  private readonly ready: Promise<void>;
  closeError: Error | null = null;

  private constructor(quic: QuicConnection) {
    super(quic, false, { maxFieldSectionSize: 1 << 20 });
    this.ready = new Promise((res, rej) => {
      this.established = res;
      this.failed = rej;
    });
    this.ready.catch(() => {});
  }

  /** Connects and completes the handshake (rejects on failure or after the handshake timeout). */
  static async connect(host: string, port: number, opts: ClientOptions = {}): Promise<H3ClientSession> {
    const cfg = clientConfig(opts);
    const serverName = opts.serverName ?? host;
    const { endpoint, connection } = await QuicEndpoint.connect(host, port, serverName, cfg);
    const session = new H3ClientSession(connection);
    session.endpoint = endpoint;
    connection.flush();
    const timeoutMs = opts.handshakeTimeoutMs ?? 5000;
    const timer = setTimeout(
      () => session.failed(new Error(`handshake with ${host}:${port} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      await session.ready;
    } catch (e) {
      await session.close();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return session;
  }

  protected override onReady(): void {
    this.established();
  }

  /** Starts a request and returns its stream (await `stream.done` for the response). */
  async request(req: ClientRequest): Promise<H3ClientStream> {
    if (this.closed) throw this.closeError ?? new Error('connection closed');
    for (;;) {
      if (this.closed) throw this.closeError ?? new Error('connection closed');
      if (this.peerGoawayId >= 0 && this.nextStreamId >= this.peerGoawayId) {
        throw new RequestFailed(H3.REQUEST_REJECTED, 'the server is going away');
      }
      if (this.quic.conn.peerStreamsLeftBidi() > 0) break;
      await new Promise<void>((r) => this.waiting.push(r));
    }
    const stream = new H3ClientStream(this.nextStreamId, this);
    if (req.collectBody === false) stream.collectBody = false;
    this.nextStreamId += 4;
    this.streams.set(stream.id, stream);
    stream.send(req).catch((e) => stream.fail(e));
    return stream;
  }

  /** Sends a request and collects the whole response. */
  async fetch(req: ClientRequest): Promise<ClientResponse> {
    const stream = await this.request(req);
    return stream.done;
  }

  forget(stream: H3ClientStream): void {
    this.streams.delete(stream.id);
    // Stream credit returns with the server's MAX_STREAMS, after the next input at the latest.
    queueMicrotask(() => this.wakeWaiters());
  }

  /** Every input may carry MAX_STREAMS: let waiting requests check for credit. */
  override onInput(): void {
    if (this.waiting.length > 0) this.wakeWaiters();
  }

  private wakeWaiters(): void {
    let credit = this.quic.conn.peerStreamsLeftBidi();
    while (credit-- > 0 && this.waiting.length > 0) this.waiting.shift()?.();
  }

  protected onRequestStreamReadable(streamId: number): void {
    const s = this.streams.get(streamId);
    if (!s) return;
    try {
      s.readAvailable();
    } catch (e) {
      if (e instanceof H3Error && e.scope === 'stream') {
        s.fail(new RequestFailed(e.code, e.message));
        this.quic.streamShutdown(streamId, 'read', e.code);
        return;
      }
      throw e;
    }
  }

  protected resetStream(streamId: number, code: number): void {
    this.quic.streamShutdown(streamId, 'read', code);
    this.quic.streamShutdown(streamId, 'write', code);
    this.streams.get(streamId)?.fail(new RequestFailed(code, `stream error ${h3ErrorName(code)}`));
  }

  protected onRequestStreamAborted(streamId: number, direction: 'read' | 'write', code: number): void {
    const s = this.streams.get(streamId);
    if (!s) return;
    if (direction === 'write' && code === H3.NO_ERROR) return; // server needs no more body (§4.1)
    s.fail(new RequestFailed(code, `server reset the stream: ${h3ErrorName(code)}`));
  }

  onStreamDrained(streamId: number): void {
    this.streams.get(streamId)?.drained();
  }

  protected onSessionClosed(error: { local: boolean; isApp: boolean; code: number; reason: string } | null): void {
    const msg = error
      ? `connection closed by ${error.local ? 'us' : 'the server'}: ${error.isApp ? h3ErrorName(error.code) : `transport 0x${error.code.toString(16)}`} ${error.reason}`
      : 'connection closed';
    this.closeError = new RequestFailed(error?.code ?? 0, msg.trim());
    this.failed(this.closeError);
    for (const s of [...this.streams.values()]) s.fail(this.closeError);
    for (const w of this.waiting.splice(0)) w();
    void this.endpoint?.close();
  }

  /** Closes the connection (H3_NO_ERROR) and the UDP socket. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.quic.close(true, H3.NO_ERROR, '');
    }
    await this.endpoint?.close();
  }
}
