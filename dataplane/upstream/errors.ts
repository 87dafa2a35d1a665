/**
 * Every way an upstream exchange can fail, in one place (undici keeps its errors in one module
 * too). The proxy maps `kind` to the status it generates and to the circuit breaker's signal.
 */
export type UpstreamErrorKind =
  /** TCP/TLS connect failed or timed out: nothing reached the backend. */
  | 'connect'
  /** The backend refused the stream before processing it (HTTP/2 REFUSED_STREAM): safe to retry. */
  | 'refused'
  /** No response headers within the backend timeout. */
  | 'headers_timeout'
  /** No body bytes in either direction within the idle timeout. */
  | 'idle_timeout'
  /** The backend reset the stream or the connection died mid-exchange. */
  | 'reset'
  /** The backend answered something that cannot be forwarded. */
  | 'protocol'
  /** We aborted the exchange (client went away). */
  | 'aborted';

export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UpstreamError';
  }

  /** The status Spooky answers with when this happens before response headers were sent. */
  get status(): 502 | 504 {
    return this.kind === 'headers_timeout' ? 504 : 502;
  }
}
