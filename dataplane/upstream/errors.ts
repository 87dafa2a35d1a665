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

/** DNS, TCP and TLS failures (certificate errors included): nothing reached the backend. */
const CONNECT_CODE =
  /^(ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|UND_ERR_CONNECT_TIMEOUT|ERR_TLS|ERR_SSL|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_)/;
/** A response llhttp cannot parse (HPE_*) or that overflows undici's limits: nothing retryable. */
const PROTOCOL_CODE = /^(HPE_|UND_ERR_HEADERS_OVERFLOW$)/;
/** A request undici will not send as it is: the request's fault, not the backend's. */
const UNSENDABLE_CODE = /^UND_ERR_(INVALID_ARG|NOT_SUPPORTED|REQ_CONTENT_LENGTH_MISMATCH)$/;

/**
 * The classifier of a failure undici reports (the HTTP/1.1 client). The HTTP/2 client
 * (h2/connection.ts) makes its UpstreamErrors itself, with the same kinds for the same
 * failures, so breakers and retries see one vocabulary whichever protocol the backend speaks.
 * `connected`: the request had reached a connected socket; before that, any failure (a reset
 * TLS handshake, a pool closed under it) means nothing reached the backend.
 */
export function classifyUpstreamFailure(err: unknown, origin: string, connected: boolean): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const e: NodeJS.ErrnoException = err instanceof Error ? err : new Error(String(err));
  const code = e.code ?? '';
  const make = (kind: UpstreamErrorKind, what: string) =>
    new UpstreamError(kind, `${what} ${origin}: ${e.message}`, { cause: e });
  if (CONNECT_CODE.test(code)) return make('connect', 'cannot connect to');
  if (UNSENDABLE_CODE.test(code)) return make('request_rejected', 'cannot send the request to');
  // undici 7 leaves HTTPParserError's code undefined (it looks llhttp's number up by name).
  if (PROTOCOL_CODE.test(code) || e.name === 'HTTPParserError') return make('protocol', 'bad exchange with');
  if (!connected) return make('connect', 'cannot connect to');
  // The connection closed before or during the response (ECONNRESET, UND_ERR_SOCKET, a body cut
  // short of its content-length), or the client was destroyed under it.
  return make('reset', 'connection lost with');
}
