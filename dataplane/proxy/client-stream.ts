/**
 * One client request as the proxy sees it, whatever carried it: an HTTP/3 stream (QUIC) or an
 * HTTP/2 stream / HTTP/1.1 exchange on the TCP listener. The router, the upstream call and the
 * access log depend on this interface only, so every listener gets the same routing,
 * balancing, limits and metrics.
 */
import type { Fields } from '../http/fields.js';

export type { Fields };

/** A validated request head (RFC 9114 §4.3 / RFC 9113 §8.3 / RFC 9112 rules applied). */
export interface ClientRequest {
  readonly method: string;
  readonly scheme: string;
  /** `:authority`, else the `host` header, else ''. */
  readonly authority: string;
  readonly path: string;
  /** Regular (non-pseudo) fields in arrival order, names lowercase. */
  readonly headers: Fields;
  /** Declared content-length, or -1 when absent. */
  readonly contentLength: number;
}

export interface ClientStream {
  /** 'h3', 'h2' or 'http/1.1': for logs and metrics. */
  readonly protocol: string;
  /** The client's address (x-forwarded-for, client_ip hashing, access log). */
  readonly clientIp: string;
  /** Stable for the client connection's life: sticky-cid hashes it. */
  readonly connectionKey: string;
  /** The verified client certificate's subject (mTLS), when there is one. */
  readonly clientCertSubject: string | undefined;
  /**
   * The request's HEADERS were read while the QUIC connection was still in 0-RTT early data
   * (handshake not complete), so the request may be a replay (RFC 8470). Always false on TCP.
   */
  readonly earlyData: boolean;
  readonly headersSent: boolean;
  readonly responseEnded: boolean;
  /**
   * Request body bytes, valid only during the call (the HTTP/3 listener lends a view of the
   * buffer it reads every stream into): whoever keeps them copies them.
   */
  onData: ((chunk: Uint8Array) => void) | null;
  /**
   * Set by the consumer: the most body bytes `onData` takes now without a copy (the upstream
   * exchange's `bodyRoom`); at 0 the listener waits for `resume()`. A listener that pulls the body
   * (HTTP/3 reads it out of QUIC) reads no more than this, so the rest waits under the client's
   * flow control; the TCP listeners, which are pushed to, ignore it.
   */
  bodyRoom: (() => number) | null;
  /** The request body ended, with trailers if the client sent any. */
  onEnd: ((trailers: Fields | null) => void) | null;
  /** The exchange was aborted: client reset, connection gone, or a malformed body. */
  onAbort: ((code: number, reason: string) => void) | null;
  /** The response send queue drained after `write` returned false. */
  onDrain: (() => void) | null;
  /** Sends a response head (1xx interim or final); `endStream` for a response without body. */
  respond(status: number, headers: Fields, endStream?: boolean): void;
  /** Response body bytes; false: wait for onDrain. */
  write(chunk: Uint8Array): boolean;
  /** Ends the response, with trailers when given. */
  end(trailers?: Fields | null): void;
  /** Aborts the exchange; `code` is an HTTP/3 error code, mapped by each transport. */
  reset(code: number): void;
  /** Stops / resumes reading the request body (flow control slows the client). */
  pause(): void;
  resume(): void;
  /** The rest of the request body is unwanted (answered early). */
  discardRequestBody(): void;
}

/** What a listener hands validated requests to (the forwarder). */
export interface RequestHandler {
  onRequest(stream: ClientStream, request: ClientRequest): void;
  /** The request was malformed or over a limit before it could be dispatched: answer `status`. */
  onRejected(stream: ClientStream, status: number, reason: string): void;
}
