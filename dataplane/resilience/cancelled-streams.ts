/**
 * Rapid reset (CVE-2023-44487): a client opens a request stream and cancels it at once, over and
 * over; each pair starts backend work and costs the client almost nothing. Streams a client
 * cancels before their response is complete are limited per connection, on HTTP/3 and HTTP/2
 * alike: a burst (a browser cancelling a page's images), then a steady rate. Below nghttp2's own
 * limit on received RST_STREAMs (1,000, then 33/s), so that Spooky's answers first.
 */
import { TokenBucket } from './token-bucket.js';

export const CANCELLED_STREAMS_BURST = 200;
export const CANCELLED_STREAMS_PER_SEC = 20;

/** A connection's allowance of cancelled streams, full at `nowMs`. */
export const cancelledStreamsBucket = (nowMs: number): TokenBucket =>
  new TokenBucket(CANCELLED_STREAMS_PER_SEC, CANCELLED_STREAMS_BURST, nowMs);
