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
  /**
   * The request itself was refused: the backend reset the stream with PROTOCOL_ERROR before any
   * response (RFC 9113 §8.1.1: its verdict on a malformed message), or the request could not be
   * encoded for the backend. Says nothing about the backend's health.
   */
  | 'request_rejected'
  /**
   * The backend answered, with a response Spooky does not relay: a status outside 100–599, or
   * more interim (1xx) responses than a request may have. The backend is up; the response is bad.
   */
  | 'bad_response'
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

  /**
   * Whether the failure speaks of the backend's availability, and so feeds its circuit breaker.
   * Failures a client's request can cause (a malformed request, a response the backend chose for
   * that request) must not: otherwise five bad requests open the breaker for every client.
   */
  get countsAgainstBackend(): boolean {
    return (
      this.kind === 'connect' ||
      this.kind === 'refused' ||
      this.kind === 'headers_timeout' ||
      this.kind === 'reset' ||
      this.kind === 'protocol'
    );
  }

  /** The status Spooky answers with when this happens before response headers were sent. */
  get status(): 502 | 504 {
    return this.kind === 'headers_timeout' ? 504 : 502;
  }
}
