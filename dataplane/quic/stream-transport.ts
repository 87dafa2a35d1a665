/**
 * The contract between a QUIC connection and the application above it (HTTP/3), in both
 * directions: `QuicApplication` is what the connection reports up; `QuicStreamTransport` is what
 * the application may ask of the connection. `QuicConnection` implements it over quiche; unit
 * tests implement it in memory, so the HTTP/3 layer runs without sockets or a handshake.
 */

/** What the QUIC layer tells the application above it. */
export interface QuicApplication {
  /** The handshake completed (called once). */
  onEstablished(): void;
  /** The stream has data or a FIN to read; read it with `streamRead`. */
  onStreamReadable(streamId: number): void;
  /** The stream's send queue drained below the low-water mark after being above it. */
  onStreamDrained(streamId: number): void;
  /** The peer reset the stream (RESET_STREAM) or asked us to stop sending (STOP_SENDING). */
  onStreamAborted(streamId: number, direction: 'read' | 'write', code: number): void;
  /** Packets or a timeout were processed (after the readable streams were reported). */
  onInput(): void;
  /** The connection is closed and forgotten; no call follows. */
  onClosed(error: { local: boolean; isApp: boolean; code: number; reason: string } | null): void;
}

/** The streams of one QUIC connection, as the HTTP/3 layer uses them. */
export interface QuicStreamTransport {
  /** The application the connection reports to (set once by the HTTP/3 session). */
  app: QuicApplication | null;
  /** The client's validated address (x-forwarded-for, hashing, logs). */
  readonly peer: { readonly host: string };
  /** The destination id of the client's first Initial (hex): stable for the connection's life. */
  readonly originalDcid: string;
  /** The application runs: the handshake completed, or 0-RTT early data was accepted. */
  readonly isEstablished: boolean;
  /** 0-RTT early data was accepted and the handshake has not completed yet. */
  readonly inEarlyData: boolean;
  /**
   * Reads stream data into `buf`: [bytes, fin], or null when nothing is buffered. A peer reset is
   * reported through `app.onStreamAborted` and returns null.
   */
  streamRead(streamId: number, buf: Uint8Array): [number, boolean] | null;
  /** Queues data (and FIN); false: above the high-water mark, wait for `onStreamDrained`. */
  streamWrite(streamId: number, data: Uint8Array, fin: boolean): boolean;
  /** Abruptly ends one direction of a stream (RESET_STREAM / STOP_SENDING) with `code`. */
  streamShutdown(streamId: number, direction: 'read' | 'write', code: number): void;
  /** Closes the connection with an application (HTTP/3) or transport error code. */
  close(isApp: boolean, code: number, reason: string): void;
  /** The peer's verified certificate chain (DER, leaf first), or null. */
  peerCertChain(): Uint8Array[] | null;
  /** The stream still exists: some of what was sent on it is not acknowledged yet. */
  streamAlive(streamId: number): boolean;
}
