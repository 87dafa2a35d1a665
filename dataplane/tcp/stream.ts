/**
 * ClientStream adapters for the TCP listener: one HTTP/2 stream (node:http2 core API) or one
 * HTTP/1.1 exchange (node:http request/response), with the semantics of H3ServerStream:
 * respond/write/end/reset, body callbacks, backpressure both ways, never a truncated body shown
 * as complete.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { H3 } from '../h3/errors.js';
import { type Fields, fieldsFromNodeHeaders, fieldsFromRaw, nodeHeaderObject } from '../http/fields.js';
import type { ClientStream } from '../proxy/client-stream.js';

/** Request trailers (names lowercase, pseudo-headers dropped), or null when there are none. */
const trailerFields = (fields: Fields): Fields | null => (fields.length > 0 ? fields : null);

abstract class TcpClientStream implements ClientStream {
  abstract readonly protocol: string;
  /** Set by the listener from the connection's verified client certificate (mTLS). */
  clientCertSubject: string | undefined = undefined;
  /** Node's TLS server never accepts early data. */
  readonly earlyData = false;
  onData: ((chunk: Uint8Array) => void) | null = null;
  /** Node's streams push the body: the room is not asked (ClientStream.bodyRoom). */
  bodyRoom: (() => number) | null = null;
  onEnd: ((trailers: Fields | null) => void) | null = null;
  onAbort: ((code: number, reason: string) => void) | null = null;
  onDrain: (() => void) | null = null;
  headersSent = false;
  /** The response is complete (or abandoned): nothing more goes out. */
  protected outDone = false;
  /** The request body ended (or is no longer read). */
  protected inDone = false;

  constructor(
    readonly clientIp: string,
    readonly connectionKey: string,
  ) {}

  get responseEnded(): boolean {
    return this.outDone;
  }

  abstract respond(status: number, headers: Fields, endStream?: boolean): void;
  abstract write(chunk: Uint8Array): boolean;
  abstract end(trailers?: Fields | null): void;
  abstract reset(code: number): void;
  abstract pause(): void;
  abstract resume(): void;

  discardRequestBody(): void {
    if (this.inDone) return;
    this.clearCallbacks();
    this.resume(); // keep reading so flow control never stalls the connection
  }

  protected bodyEnded(trailers: Fields | null): void {
    if (this.inDone) return;
    this.inDone = true;
    const cb = this.onEnd;
    this.onData = null;
    this.onEnd = null;
    cb?.(trailers);
  }

  /** The client went away (reset, connection closed) before the response was complete. */
  protected aborted(code: number, reason: string): void {
    const cb = this.onAbort;
    this.clearCallbacks();
    this.outDone = true;
    this.inDone = true;
    cb?.(code, reason);
  }

  protected clearCallbacks(): void {
    this.onData = null;
    this.bodyRoom = null;
    this.onEnd = null;
    this.onAbort = null;
    this.onDrain = null;
  }
}

/** One HTTP/2 request stream. */
export class H2ClientStream extends TcpClientStream implements ClientStream {
  readonly protocol = 'h2';
  private trailersOut: Fields | null = null;
  private requestTrailers: Fields | null = null;

  constructor(
    private readonly s: ServerHttp2Stream,
    clientIp: string,
    connectionKey: string,
  ) {
    super(clientIp, connectionKey);
    s.on('error', () => {}); // 'close' follows and reports it
    s.on('data', (chunk: Buffer) => this.onData?.(chunk));
    s.on('trailers', (h: IncomingHttpHeaders) => {
      this.requestTrailers = trailerFields(fieldsFromNodeHeaders(h));
    });
    s.on('end', () => this.bodyEnded(this.requestTrailers));
    s.on('drain', () => this.onDrain?.());
    s.on('wantTrailers', () => {
      try {
        // Empty trailers: Node ends the stream with an empty DATA frame instead.
        s.sendTrailers(nodeHeaderObject(this.trailersOut ?? []));
      } catch {
        s.close(constants.NGHTTP2_INTERNAL_ERROR);
      }
    });
    s.on('close', () => {
      if (!this.outDone) {
        const rst = s.rstCode ?? constants.NGHTTP2_CANCEL;
        const code =
          rst === constants.NGHTTP2_NO_ERROR || rst === constants.NGHTTP2_CANCEL
            ? H3.REQUEST_CANCELLED
            : H3.GENERAL_PROTOCOL_ERROR;
        this.aborted(code, `client reset the stream or closed the connection (HTTP/2 code ${rst})`);
      }
    });
  }

  private get usable(): boolean {
    return !this.s.destroyed && !this.s.closed;
  }

  respond(status: number, headers: Fields, endStream = false): void {
    if (this.outDone || this.headersSent || !this.usable) return;
    const obj = nodeHeaderObject(
      headers,
      Object.assign(Object.create(null), { [constants.HTTP2_HEADER_STATUS]: status }),
    );
    try {
      if (status < 200) {
        if (status !== 101) this.s.additionalHeaders(obj);
        return;
      }
      this.s.respond(obj, { endStream, waitForTrailers: !endStream });
    } catch {
      // Fields Node refuses to send (a bug upstream of here): the client sees a reset.
      this.reset(H3.INTERNAL_ERROR);
      return;
    }
    this.headersSent = true;
    if (endStream) this.finished();
  }

  write(chunk: Uint8Array): boolean {
    if (this.outDone || chunk.length === 0 || !this.usable) return true;
    return this.s.write(chunk);
  }

  end(trailers?: Fields | null): void {
    if (this.outDone) return;
    this.trailersOut = trailers && trailers.length > 0 ? trailers : null;
    if (this.usable) this.s.end();
    this.finished();
  }

  private finished(): void {
    this.outDone = true;
    this.onDrain = null;
    if (!this.inDone) {
      // Answered before the request body ended: read and drop the rest (an early RST_STREAM
      // could overtake the queued end of the response and truncate it).
      this.clearCallbacks();
      this.inDone = true;
      this.s.resume();
    }
  }

  reset(code: number): void {
    this.clearCallbacks();
    this.outDone = true;
    this.inDone = true;
    if (this.usable) {
      this.s.close(code === H3.REQUEST_CANCELLED ? constants.NGHTTP2_CANCEL : constants.NGHTTP2_INTERNAL_ERROR);
    }
  }

  pause(): void {
    this.s.pause();
  }

  resume(): void {
    this.s.resume();
  }
}

/** One HTTP/1.1 exchange (request and response on a keep-alive connection). */
export class H1ClientStream extends TcpClientStream implements ClientStream {
  readonly protocol = 'http/1.1';

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    clientIp: string,
    connectionKey: string,
    /** True while the listener drains: responses carry `connection: close`. */
    private readonly draining: () => boolean,
  ) {
    super(clientIp, connectionKey);
    req.on('error', () => {}); // res 'close' follows and reports it
    res.on('error', () => {});
    req.on('data', (chunk: Buffer) => this.onData?.(chunk));
    req.on('end', () => this.bodyEnded(trailerFields(fieldsFromRaw(req.rawTrailers))));
    res.on('drain', () => this.onDrain?.());
    res.on('close', () => {
      if (!this.outDone) this.aborted(H3.REQUEST_CANCELLED, 'client closed the connection');
    });
  }

  respond(status: number, headers: Fields, endStream = false): void {
    if (this.outDone || this.headersSent || this.res.destroyed) return;
    if (status < 200) {
      // HTTP/1.0 clients must not see interim responses; 101 would switch protocols.
      if (this.req.httpVersionMinor === 0 || this.res.headersSent) return;
      if (status === 100) this.res.writeContinue();
      else if (status === 103) {
        try {
          this.res.writeEarlyHints(nodeHeaderObject(headers) as Record<string, string | string[]>);
        } catch {
          // Early hints without a usable link header: skip them.
        }
      }
      return;
    }
    const flat: string[] = [];
    for (const [name, value] of headers) flat.push(name, value);
    if (this.draining()) flat.push('connection', 'close');
    try {
      this.res.writeHead(status, flat);
    } catch {
      this.reset(H3.INTERNAL_ERROR);
      return;
    }
    this.headersSent = true;
    if (endStream) this.end();
  }

  write(chunk: Uint8Array): boolean {
    if (this.outDone || chunk.length === 0 || this.res.destroyed) return true;
    return this.res.write(chunk);
  }

  end(trailers?: Fields | null): void {
    if (this.outDone) return;
    this.outDone = true;
    this.onDrain = null;
    if (!this.inDone) {
      // Node reads and drops the rest of the body (or closes the connection) itself.
      this.clearCallbacks();
      this.inDone = true;
      this.req.resume();
    }
    if (this.res.destroyed) return;
    // Trailers need chunked framing; with content-length (or HTTP/1.0) Node drops them.
    if (trailers && trailers.length > 0) this.res.addTrailers(nodeHeaderObject(trailers) as Record<string, string>);
    this.res.end();
  }

  /** A truncated response must never look complete: the connection goes. */
  reset(_code: number): void {
    this.clearCallbacks();
    this.outDone = true;
    this.inDone = true;
    this.res.destroy();
    this.req.socket.destroy();
  }

  pause(): void {
    this.req.pause();
  }

  resume(): void {
    this.req.resume();
  }
}
