/**
 * One client request's way to a backend, as a stack of stages over the cluster's dispatch:
 * retry (resilience.retries, the retry budget) → pick (the cluster: health, drain, breaker, room)
 * → per attempt: accounting and metrics → circuit breaker → response check → the dispatcher.
 * This class only bridges the client stream and the exchange both ways (body, backpressure,
 * aborts) and turns the outcome into the client's response through the forwarder's hooks.
 */
import { requestHashKey } from '../balancer/hash-key.js';
import type { Cluster } from '../cluster/cluster.js';
import { compose, NoBackendError } from '../cluster/dispatch.js';
import { type RetryPolicy, retry } from '../cluster/retry.js';
import { H3 } from '../h3/errors.js';
import type { DataPlaneMetrics, OverloadReason } from '../metrics.js';
import type { UpstreamExchange, UpstreamHandler } from '../upstream/dispatcher.js';
import type { UpstreamError } from '../upstream/errors.js';
import type { ClientRequest, ClientStream, Fields } from './client-stream.js';

export { MAX_INTERIM_RESPONSES } from '../cluster/attempt.js';

/** The per-request hooks the call reports to (the forwarder's respond stage). */
export interface CallHost {
  readonly metrics: DataPlaneMetrics;
  /** Response head fields for the client: connection-specific ones dropped, alt-svc and request id added. */
  responseFields(fields: Fields, requestId: string | null): Fields;
  /** A response Spooky makes itself (503 shed, 502/504 after the last attempt). */
  generate(status: number, message: string, extra?: Fields): void;
  /** The client-visible outcome is settled (for the access log). */
  finished(): void;
  /** The backend failed after the response started: reset the client stream. */
  failedMidResponse(err: UpstreamError): void;
}

/** The access-log record the call fills in. */
export interface CallRecord {
  readonly requestId: string;
  backend: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  retries: number;
  error: string | undefined;
}

export interface CallLimits {
  readonly maxRequestBodyBytes: number;
  readonly retries: RetryPolicy;
}

export class UpstreamCall implements UpstreamHandler {
  private exchange: UpstreamExchange | null = null;
  private settled = false;

  constructor(
    private readonly host: CallHost,
    private readonly cluster: Cluster,
    private readonly limits: CallLimits,
    private readonly stream: ClientStream,
    private readonly request: ClientRequest,
    private readonly headers: Fields,
    private readonly record: CallRecord,
  ) {}

  start(): void {
    const { stream, request, record } = this;
    const p = this.cluster.pool;
    const hashKey =
      p.policy === 'sticky-cid'
        ? stream.connectionKey
        : p.policy === 'consistent-hash' && p.hashKey !== undefined
          ? requestHashKey(p.hashKey, request, stream.clientIp)
          : undefined;
    const dispatch = compose(
      this.cluster.dispatcher({ hashKey }, { onAttempt: (b) => (record.backend = b.id) }),
      retry({
        policy: this.limits.retries,
        budget: this.cluster.retryBudget,
        onRetry: (reason) => {
          record.retries++;
          this.host.metrics.retries.inc({ reason });
        },
      }),
    );
    const maxBody = this.limits.maxRequestBodyBytes;
    stream.onDrain = () => this.exchange?.resume();
    stream.onData = (chunk) => {
      record.bytesIn += chunk.length;
      if (record.bytesIn > maxBody) {
        this.exchange?.abort();
        stream.onData = null;
        stream.bodyRoom = null;
        stream.onEnd = null;
        if (!stream.headersSent) this.fail(413, `request body over ${maxBody} bytes`);
        else stream.reset(H3.EXCESSIVE_LOAD);
        return;
      }
      if (this.exchange && !this.exchange.write(chunk)) stream.pause();
    };
    // The HTTP/3 listener reads no more body than the backend takes now (UpstreamExchange.bodyRoom).
    // Without a body (content-length 0) nothing waits for room: the FIN is read whenever it comes.
    if (this.hasBody) {
      stream.bodyRoom = () => (this.exchange ? this.exchange.bodyRoom() : Number.POSITIVE_INFINITY);
    }
    stream.onEnd = (trailers) => {
      if (this.hasBody) this.exchange?.end(trailers);
    };
    stream.onAbort = (code, reason) => {
      this.exchange?.abort();
      record.error = `client aborted: ${reason} (0x${code.toString(16)})`;
      record.status ||= 499;
      this.settle();
    };
    const exchange = dispatch(
      {
        method: request.method,
        path: request.path,
        authority: request.authority,
        headers: this.headers,
        hasBody: this.hasBody,
      },
      this,
    );
    this.exchange = exchange;
    exchange.onRequestDrain = () => stream.resume();
  }

  /** Without content-length the body's presence is known only at FIN, so the stream stays open. */
  private get hasBody(): boolean {
    return this.request.contentLength !== 0;
  }

  // The response side (the call is the handler of the last attempt): relays what it answers.

  onInformational(status: number, fields: Fields): void {
    this.stream.respond(status, this.host.responseFields(fields, null));
  }

  onResponseStart(status: number, fields: Fields, endStream: boolean): void {
    this.record.status = status;
    // A response that ended with its headers ends there for the client too (trailers-only).
    this.stream.respond(status, this.host.responseFields(fields, this.record.requestId), endStream);
  }

  onData(chunk: Uint8Array): boolean {
    if (this.request.method === 'HEAD') return true;
    this.record.bytesOut += chunk.length;
    return this.stream.write(chunk);
  }

  onComplete(trailers: Fields | null): void {
    this.stream.end(trailers);
    this.settle();
  }

  onError(err: UpstreamError): void {
    if (err instanceof NoBackendError) this.shed(err.reason);
    else this.upstreamFailed(err);
  }

  private shed(reason: OverloadReason): void {
    this.host.metrics.shed(reason);
    this.fail(503, `overloaded: ${reason}`, [['retry-after', '1']]);
  }

  private fail(status: number, message: string, extra: Fields = []): void {
    this.host.generate(status, message, extra);
    this.settle();
  }

  private upstreamFailed(err: UpstreamError): void {
    this.record.error = err.message;
    const { stream } = this;
    stream.onData = null;
    stream.bodyRoom = null;
    stream.onEnd = null;
    stream.onAbort = null;
    if (!stream.headersSent) {
      this.fail(err.status, err.kind === 'headers_timeout' ? 'backend timed out' : 'backend failed');
      return;
    }
    this.host.failedMidResponse(err);
    this.settle();
  }

  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.host.finished();
  }
}
