/**
 * The router stage of the request path: takes a validated HTTP/3 request, routes it on the
 * snapshot it started with, applies brownout, adaptive admission and the global and per-upstream
 * in-flight limits, and hands it
 * to an UpstreamCall (pick, retries, streaming). Every failure becomes the status
 * request-path.md assigns, or a stream reset once response headers have gone out (never a
 * truncated body presented as complete).
 */
import type { Logger } from 'pino';
import type { BackendRuntime } from '../backend-runtime.js';
import type { BackendStates } from '../backend-states.js';
import { H3 } from '../h3/errors.js';
import { CONNECTION_SPECIFIC } from '../http/fields.js';
import type { DataPlaneMetrics } from '../metrics.js';
import type { Snapshot } from '../snapshot.js';
import type { UpstreamAgent } from '../upstream/agent.js';
import type { UpstreamError } from '../upstream/errors.js';
import type { ClientRequest, ClientStream, Fields, RequestHandler } from './client-stream.js';
import { earlyDataOutcome } from './early-data.js';
import { buildUpstreamHeaders, clientRequestId, newRequestId } from './request-headers.js';
import { type CallHost, type CallRecord, UpstreamCall } from './upstream-call.js';

export interface ForwarderOptions {
  snapshot: () => Snapshot;
  agent: UpstreamAgent;
  /** Health and drain per backend id (from the control plane). */
  backendStates: BackendStates;
  /** In-flight counts, limits, breakers and latency per backend. */
  runtime: BackendRuntime;
  metrics: DataPlaneMetrics;
  log: Logger;
}

/** Response fields that never cross to the client (connection-specific in HTTP/3; our own alt-svc). */
const DROP_RESPONSE = new Set([...CONNECTION_SPECIFIC, 'alt-svc']);

interface Exchange extends CallRecord {
  readonly stream: ClientStream;
  readonly request: ClientRequest | null;
  readonly started: number;
  pool: string;
  finished: boolean;
}

function newExchange(stream: ClientStream, request: ClientRequest | null, requestId: string): Exchange {
  return {
    stream,
    request,
    requestId,
    started: performance.now(),
    pool: '',
    backend: '',
    status: 0,
    bytesIn: 0,
    bytesOut: 0,
    retries: 0,
    error: undefined,
    finished: false,
  };
}

export class Forwarder implements RequestHandler {
  /** The `alt-svc` value added to every response (known once the listener is bound), or null. */
  altSvc: string | null = null;

  constructor(private readonly options: ForwarderOptions) {}

  /** Requests seen (for stats). */
  requests = 0;

  onRequest(stream: ClientStream, request: ClientRequest): void {
    this.requests++;
    const snap = this.options.snapshot();
    const ex = newExchange(stream, request, clientRequestId(request.headers) ?? newRequestId());
    const perf = snap.config.performance;
    const early = earlyDataOutcome(stream.earlyData, request.method, perf);
    if (early !== null) this.options.metrics.quicEarlyData.inc({ outcome: early });
    if (early === 'rejected_425') {
      // RFC 8470 §5.2: the client repeats the request once the handshake is complete.
      return this.generate(ex, 425, `${request.method} is not accepted in 0-RTT early data`);
    }
    const poolName = snap.config.routes.match(request.authority, request.path);
    if (poolName === undefined) return this.generate(ex, 404, 'no route for this host and path');
    ex.pool = poolName;
    const state = snap.pools.get(poolName);
    if (!state) return this.generate(ex, 500, 'route points at an unknown pool');
    if (request.contentLength > perf.max_request_body_bytes) {
      return this.generate(ex, 413, `request body over ${perf.max_request_body_bytes} bytes`);
    }
    const { runtime } = this.options;
    const limits = runtime.limits;
    const full =
      runtime.admit(poolName) ??
      (!limits.globalHasRoom() ? 'global_inflight' : !limits.upstreamHasRoom(poolName) ? 'upstream_inflight' : null);
    if (full) {
      this.options.metrics.shed(full);
      return this.generate(ex, 503, `overloaded: ${full}`, [['retry-after', '1']]);
    }
    const headers = buildUpstreamHeaders(request.headers, {
      clientIp: stream.clientIp,
      authority: request.authority,
      requestId: ex.requestId,
      protocol: stream.protocol,
      clientCertSubject: stream.clientCertSubject,
      earlyData: early === 'accepted',
    });
    new UpstreamCall(this.hostFor(ex), snap, state, stream, request, headers, ex).start();
  }

  /** The forwarder's services, bound to one exchange, for its UpstreamCall. */
  private hostFor(ex: Exchange): CallHost {
    const { agent, backendStates, runtime, metrics } = this.options;
    return {
      agent,
      backendStates,
      runtime,
      metrics,
      responseFields: (fields, requestId) => this.responseFields(fields, requestId),
      generate: (status, message, extra) => this.generate(ex, status, message, extra),
      finished: () => this.finish(ex),
      failedMidResponse: (err: UpstreamError) => {
        // Headers are out: the client must see a reset, never a short body as complete.
        ex.stream.reset(err.kind === 'aborted' ? H3.REQUEST_CANCELLED : H3.INTERNAL_ERROR);
      },
    };
  }

  onRejected(stream: ClientStream, status: number, reason: string): void {
    const ex = newExchange(stream, null, newRequestId());
    ex.error = reason;
    this.generate(ex, status, reason);
  }

  private responseFields(fields: Fields, requestId: string | null): Fields {
    const out: Array<readonly [string, string]> = [];
    for (const f of fields) if (!DROP_RESPONSE.has(f[0])) out.push(f);
    if (this.altSvc) out.push(['alt-svc', this.altSvc]);
    if (requestId !== null && !fields.some((f) => f[0] === 'x-request-id')) out.push(['x-request-id', requestId]);
    return out;
  }

  /** A response Spooky makes itself: text/plain, one line, with the request id. */
  private generate(ex: Exchange, status: number, message: string, extra: Fields = []): void {
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

  private finish(ex: Exchange): void {
    if (ex.finished) return;
    ex.finished = true;
    const route = ex.pool || 'none';
    this.options.metrics.requests.inc({ route, code: String(ex.status) });
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
