/**
 * How the TCP listener's HTTP/2 sessions end when a client floods them (issue #12, item 10d).
 * Node ends every session its guards find abusive with GOAWAY INTERNAL_ERROR, whatever the cause,
 * and so does nghttp2's own rapid-reset limit; RFC 9113 names the peer's fault instead:
 * ENHANCE_YOUR_CALM for floods (§10.5), PROTOCOL_ERROR for invalid frames, FLOW_CONTROL_ERROR.
 */
import { constants, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { cancelledStreamsBucket } from '../resilience/cancelled-streams.js';
import type { TokenBucket } from '../resilience/token-bucket.js';

/** nghttp2 library errors (nghttp2.h) Node destroys a session with. */
const NGHTTP2_ERR_PROTO = -505;
const NGHTTP2_ERR_FLOW_CONTROL = -524;
const NGHTTP2_ERR_CALLBACK_FAILURE = -902;
const NGHTTP2_ERR_BAD_CLIENT_MAGIC = -903;
const NGHTTP2_ERR_FLOODED = -904;

/**
 * The RFC 9113 code for the error Node is about to end a session with, or undefined to let Node
 * choose (INTERNAL_ERROR). Node's guards fail nghttp2's callbacks: too many invalid frames (its
 * `maxSessionInvalidFrames`) is the peer's protocol error; the others (streams refused past the
 * concurrency limit, `maxSessionRejectedStreams`; custom settings) are floods, as are the PING
 * and SETTINGS acknowledgements a non-reading peer piles up (NGHTTP2_ERR_FLOODED).
 */
export function goawayCodeFor(error: unknown): number | undefined {
  if (!(error instanceof Error)) return undefined;
  const { code, errno } = error as NodeJS.ErrnoException;
  if (code === 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES') return constants.NGHTTP2_PROTOCOL_ERROR;
  switch (errno) {
    case NGHTTP2_ERR_FLOODED:
    case NGHTTP2_ERR_CALLBACK_FAILURE:
      return constants.NGHTTP2_ENHANCE_YOUR_CALM;
    case NGHTTP2_ERR_BAD_CLIENT_MAGIC:
    case NGHTTP2_ERR_PROTO:
      return constants.NGHTTP2_PROTOCOL_ERROR;
    case NGHTTP2_ERR_FLOW_CONTROL:
      return constants.NGHTTP2_FLOW_CONTROL_ERROR;
    default:
      return undefined;
  }
}

const watches = new WeakMap<ServerHttp2Session, TokenBucket>();

/**
 * Gives a server session the RFC's GOAWAY codes and a limit on streams the client cancels before
 * their response is complete (rapid reset, CVE-2023-44487); see watchStream.
 */
export function guardSession(session: ServerHttp2Session): void {
  // Node's internal error path calls destroy(error) without a code: supply the RFC's code.
  const destroy = session.destroy.bind(session);
  session.destroy = ((error?: Error, code?: number) =>
    destroy(error, code ?? goawayCodeFor(error))) as typeof session.destroy;
  watches.set(session, cancelledStreamsBucket(performance.now()));
}

/**
 * Counts `s` against its session's limit if it closes before `answered()` (its response complete
 * or reset by Spooky); past the limit the session ends with GOAWAY ENHANCE_YOUR_CALM.
 */
export function watchStream(session: ServerHttp2Session, s: ServerHttp2Stream, answered: () => boolean): void {
  const cancels = watches.get(session);
  if (!cancels) return;
  // Before the stream's own 'close' handlers, which mark it answered.
  s.prependOnceListener('close', () => {
    if (answered() || session.destroyed) return;
    if (cancels.tryTake(performance.now())) return;
    session.destroy(new Error('too many streams cancelled before their response'), constants.NGHTTP2_ENHANCE_YOUR_CALM);
  });
}
