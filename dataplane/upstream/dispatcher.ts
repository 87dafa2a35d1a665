/**
 * The one interface every upstream transport implements (client-h2.ts, client-h1.ts), in the
 * shape of undici's Dispatcher: the caller hands a request and a handler, gets an exchange
 * handle back for the request body, and receives the response through the handler's callbacks.
 */
import type { Fields } from '../http/fields.js';
import type { UpstreamError } from './errors.js';

export type { Fields };

export interface UpstreamRequest {
  readonly method: string;
  /** Path with query, as the client sent it. */
  readonly path: string;
  readonly authority: string;
  /** Already translated: no pseudo-headers, no connection-specific fields. */
  readonly headers: Fields;
  /** False when the request has no body (the stream is ended with the headers). */
  readonly hasBody: boolean;
}

export interface UpstreamTimeouts {
  connectMs: number;
  /** Until response headers: past it the exchange fails with `headers_timeout` (504). */
  headersMs: number;
  /** Between body bytes in either direction. */
  idleMs: number;
}

export interface UpstreamHandler {
  /** A 1xx informational response (103 Early Hints, 100 Continue). */
  onInformational(status: number, headers: Fields): void;
  /**
   * The final response head. `endStream`: the response ended with it, no body and no trailers (a
   * gRPC trailers-only response carries its grpc-status here); onComplete(null) follows.
   */
  onResponseStart(status: number, headers: Fields, endStream: boolean): void;
  /** Body bytes; return false to pause the backend until `exchange.resume()`. */
  onData(chunk: Uint8Array): boolean;
  onComplete(trailers: Fields | null): void;
  /** Called at most once, and never after onComplete. */
  onError(error: UpstreamError): void;
}

export interface UpstreamExchange {
  /**
   * Request body bytes; false means wait for the handler's `onRequestDrain`. `chunk` is valid
   * only during the call (ClientStream.onData): an exchange that keeps bytes copies them.
   */
  write(chunk: Uint8Array): boolean;
  /**
   * How many request body bytes `write` would send on now, without keeping a copy (Infinity for
   * a transport that copies what it is given anyway). 0: wait, `onRequestDrain` is then owed.
   * A caller that can leave the body where it is (the HTTP/3 listener, in QUIC's buffers) reads
   * no more than this, so a backend's flow control holds the client back without a copy here.
   */
  bodyRoom(): number;
  /** Ends the request body (with trailers when given). */
  end(trailers?: Fields | null): void;
  /** Cancels the exchange; no handler callback follows. */
  abort(): void;
  pause(): void;
  resume(): void;
  /** Set by the caller: the request body may be written again. */
  onRequestDrain: (() => void) | null;
}

export interface Dispatcher {
  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamExchange;
  /** Exchanges in flight on this dispatcher. */
  readonly inFlight: number;
  /** Finishes in-flight exchanges, then closes connections. */
  close(): Promise<void>;
  /** Closes everything now. */
  destroy(): void;
}
