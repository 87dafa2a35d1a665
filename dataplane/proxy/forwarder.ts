/**
 * The router stage of the request path, in four steps: route (the snapshot the request started
 * with picks its pool's cluster), admit (0-RTT, body size, brownout, adaptive admission, the
 * global and per-upstream in-flight limits), dispatch (an UpstreamCall over the cluster: pick,
 * retries, breaker, streaming), respond (the per-request hooks: request id, response headers,
 * generated responses, metrics and the access log when the exchange ends). Every failure becomes
 * the status request-path.md assigns, or a stream reset once response headers have gone out
 * (never a truncated body presented as complete).
 */
import type { Logger } from 'pino';
import type { Cluster } from '../cluster/cluster.js';
import { H3 } from '../h3/errors.js';
import { CONNECTION_SPECIFIC } from '../http/fields.js';
import type { DataPlaneMetrics } from '../metrics.js';
import type { Snapshot } from '../snapshot.js';
import type { UpstreamError } from '../upstream/errors.js';
import type { ClientRequest, ClientStream, Fields, RequestHandler } from './client-stream.js';
import { earlyDataOutcome } from './early-data.js';
import { buildUpstreamHeaders, clientRequestId, newRequestId } from './request-headers.js';
import { type CallHost, type CallLimits, type CallRecord, UpstreamCall } from './upstream-call.js';

export interface ForwarderOptions {
  /** The current snapshot: its config and its clusters (one per pool). */
  snapshot: () => Snapshot;
  metrics: DataPlaneMetrics;
  log: Logger;
}

/** Response fields that never cross to the client (connection-specific in HTTP/3; our own alt-svc). */
const DROP_RESPONSE = new Set([...CONNECTION_SPECIFIC, 'alt-svc']);

/**
 * One client request as the forwarder tracks it: the access-log record its UpstreamCall fills in
 * and the hooks the call reports to (one object per request rather than a record plus a hooks
 * object of closures).
 */
class Exchange implements CallRecord, CallHost {
  readonly started = performance.now();
  pool = '';
  /** Accepted in 0-RTT early data (the upstream request says so). */
  earlyData = false;
  backend = '';
  status = 0;
  bytesIn = 0;
  bytesOut = 0;
  retries = 0;
  error: string | undefined = undefined;
  /** The access line was written: the outcome is settled. */
  done = false;

  constructor(
    private readonly forwarder: Forwarder,
    readonly stream: ClientStream,
    readonly request: ClientRequest | null,
    readonly requestId: string,
  ) {}

  get metrics(): DataPlaneMetrics {
    return this.forwarder.options.metrics;
  }

  responseFields(fields: Fields, requestId: string | null): Fields {
    return this.forwarder.responseFields(fields, requestId);
  }

  generate(status: number, message: string, extra?: Fields): void {
    this.forwarder.generate(this, status, message, extra);
  }

  finished(): void {
    this.forwarder.finish(this);
  }

  failedMidResponse(err: UpstreamError): void {
    // Headers are out: the client must see a reset, never a short body as complete.
    this.stream.reset(err.kind === 'aborted' ? H3.REQUEST_CANCELLED : H3.INTERNAL_ERROR);
  }
}

export class Forwarder implements RequestHandler {
  /** The `alt-svc` value added to every response (known once the listener is bound), or null. */
  altSvc: string | null = null;

  constructor(readonly options: ForwarderOptions) {}

  /** Requests seen (for stats). */
  requests = 0;
  /** Responses by status class, index 1–5 (1xx–5xx): the `stopped` line's summary. */
  readonly responsesByClass = [0, 0, 0, 0, 0, 0];

  onRequest(stream: ClientStream, request: ClientRequest): void {
    this.requests++;
    const snap = this.options.snapshot();
    const ex = new Exchange(this, stream, request, clientRequestId(request.headers) ?? newRequestId());
    const cluster = this.route(snap, ex, request);
    if (cluster === null || !this.admit(snap, ex, cluster)) return;
    this.dispatch(snap, ex, cluster);
  }

  /** Route: the pool's cluster, or the response that ends the request (425, 404, 500). */
  private route(snap: Snapshot, ex: Exchange, request: ClientRequest): Cluster | null {
    const perf = snap.config.performance;
    const early = earlyDataOutcome(ex.stream.earlyData, request.method, perf);
    ex.earlyData = early === 'accepted';
    if (early !== null) this.options.metrics.quicEarlyData.inc({ outcome: early });
    if (early === 'rejected_425') {
      // RFC 8470 §5.2: the client repeats the request once the handshake is complete.
      this.generate(ex, 425, `${request.method} is not accepted in 0-RTT early data`);
      return null;
    }
    const poolName = snap.config.routes.match(request.authority, request.path);
    if (poolName === undefined) {
      this.generate(ex, 404, 'no route for this host and path');
      return null;
    }
    ex.pool = poolName;
    const cluster = snap.clusters.get(poolName);
    if (!cluster) {
      this.generate(ex, 500, 'route points at an unknown pool');
      return null;
    }
    return cluster;
  }

  /** Admit: body size, then the cluster's admission (brownout, adaptive, in-flight limits). */
  private admit(snap: Snapshot, ex: Exchange, cluster: Cluster): boolean {
    const perf = snap.config.performance;
    if ((ex.request as ClientRequest).contentLength > perf.max_request_body_bytes) {
      this.generate(ex, 413, `request body over ${perf.max_request_body_bytes} bytes`);
      return false;
    }
    const full = cluster.admit();
    if (full) {
      this.options.metrics.shed(full);
      this.generate(ex, 503, `overloaded: ${full}`, [['retry-after', '1']]);
      return false;
    }
    return true;
  }

  /** Dispatch: the upstream request's headers, then an UpstreamCall over the cluster. */
  private dispatch(snap: Snapshot, ex: Exchange, cluster: Cluster): void {
    const { stream } = ex;
    const request = ex.request as ClientRequest;
    const headers = buildUpstreamHeaders(request.headers, {
      clientIp: stream.clientIp,
      authority: request.authority,
      requestId: ex.requestId,
      protocol: stream.protocol,
      clientCertSubject: stream.clientCertSubject,
      earlyData: ex.earlyData,
    });
    new UpstreamCall(ex, cluster, this.limitsOf(snap), stream, request, headers, ex).start();
  }

  private limits: { snap: Snapshot; limits: CallLimits } | null = null;

  /** The call limits of a snapshot (made once per snapshot, not per request). */
  private limitsOf(snap: Snapshot): CallLimits {
    if (this.limits?.snap !== snap) {
      this.limits = {
        snap,
        limits: {
          maxRequestBodyBytes: snap.config.performance.max_request_body_bytes,
          retries: snap.config.resilience.retries,
        },
      };
    }
    return this.limits.limits;
  }

  onRejected(stream: ClientStream, status: number, reason: string): void {
    const ex = new Exchange(this, stream, null, newRequestId());
    ex.error = reason;
    this.generate(ex, status, reason);
  }

  /** Response head fields for the client: connection-specific ones dropped, alt-svc and request id added. */
  responseFields(fields: Fields, requestId: string | null): Fields {
    const out: Array<readonly [string, string]> = [];
    for (const f of fields) if (!DROP_RESPONSE.has(f[0])) out.push(f);
    if (this.altSvc) out.push(['alt-svc', this.altSvc]);
    if (requestId !== null && !fields.some((f) => f[0] === 'x-request-id')) out.push(['x-request-id', requestId]);
    return out;
  }

  /** A response Spooky makes itself: text/plain, one line, with the request id. */
  generate(ex: Exchange, status: number, message: string, extra: Fields = []): void {
    ex.status = status;
    if (status >= 400 && !ex.error) ex.error = message;
    const { stream } = ex;
    if (stream.headersSent || stream.responseEnded) {
      stream.reset(H3.INTERNAL_ERROR);
      this.finish(ex);
      return;
    }
    stream.discardRequestBody();
    const body = Buffer.from(`${status} ${message}\n`);
    const fields: Array<readonly [string, string]> = [
      ['content-type', 'text/plain; charset=utf-8'],
      ['content-length', String(body.length)],
      ['x-request-id', ex.requestId],
      ...extra,
    ];
    if (this.altSvc) fields.push(['alt-svc', this.altSvc]);
    const head = ex.request?.method === 'HEAD';
    stream.respond(status, fields, head);
    if (!head) {
      stream.write(body);
      stream.end();
    }
    this.finish(ex);
  }

  /** The outcome is settled: metrics and the access line, once. */
  finish(ex: Exchange): void {
    if (ex.done) return;
    ex.done = true;
    const route = ex.pool || 'none';
    this.options.metrics.requests.inc({ route, code: String(ex.status) });
    const cls = Math.trunc(ex.status / 100);
    if (cls >= 1 && cls <= 5) this.responsesByClass[cls] = (this.responsesByClass[cls] ?? 0) + 1;
    this.options.metrics.requestDuration.observe({ route }, (performance.now() - ex.started) / 1000);
    if (!this.options.snapshot().config.log.accessLog) return;
    const ms = performance.now() - ex.started;
    const req = ex.request;
    this.options.log.info(
      {
        access: true,
        request_id: ex.requestId,
        client: ex.stream.clientIp,
        method: req?.method,
        authority: req?.authority,
        path: req?.path,
        status: ex.status,
        pool: ex.pool || undefined,
        backend: ex.backend || undefined,
        bytes_in: ex.bytesIn,
        bytes_out: ex.bytesOut,
        duration_ms: Math.round(ms * 10) / 10,
        retries: ex.retries || undefined,
        error: ex.error,
      },
      'request',
    );
  }
}
