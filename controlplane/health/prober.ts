/**
 * One active health probe (request-path.md, "Health"): `method path` against a backend with its own
 * protocol (HTTP/2 or HTTP/1.1, cleartext or TLS per upstream_tls) on a fresh connection that is
 * closed afterwards. Never throws: every outcome is a ProbeResult.
 */
import { request as http1Request } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { backendServername, upstreamTlsOptions } from '../../lib/upstream-tls.js';
import type { RuntimeBackend, RuntimeConfig } from '../../model/config/runtime.js';

export interface ProbeSpec {
  method: string;
  path: string;
  timeoutMs: number;
  expectedStatus: string;
}

export interface ProbeResult {
  ok: boolean;
  status?: number;
  /** Why the probe failed: 'timeout', 'connect ECONNREFUSED', 'tls <code>', 'status 503', 'error <code>'. */
  error?: string;
  /** Time to the response headers (or to the failure), in milliseconds. */
  latencyMs: number;
}

export const USER_AGENT = 'spooky-health-check';
/** The probe reads and discards at most this much of the body, then closes the connection. */
export const MAX_BODY_BYTES = 64 * 1024;

/** Whether `status` matches an expected_status value: "200", "2xx", "200-399" or a comma list of those. */
export function statusMatches(expected: string, status: number): boolean {
  return String(expected)
    .split(',')
    .some((raw) => {
      const item = raw.trim().toLowerCase();
      const cls = /^([1-5])xx$/.exec(item);
      if (cls !== null) return Math.floor(status / 100) === Number(cls[1]);
      const range = /^(\d{3})-(\d{3})$/.exec(item);
      if (range !== null) return status >= Number(range[1]) && status <= Number(range[2]);
      return /^\d{3}$/.test(item) && Number(item) === status;
    });
}

type Phase = 'connect' | 'tls' | 'request';

/** A failure reason named after where the probe was when it failed. */
function describeError(err: unknown, phase: Phase): string {
  const code = (err as { code?: unknown } | null)?.code;
  const name = typeof code === 'string' && code !== '' ? code : 'ERROR';
  return phase === 'request' ? `error ${name}` : `${phase} ${name}`;
}

function openSocket(backend: RuntimeBackend, tls: RuntimeConfig['upstreamTls'], onPhase: (p: Phase) => void): Socket {
  const { host, port } = backend;
  if (!backend.tls) {
    const socket = netConnect({ host, port });
    socket.once('connect', () => onPhase('request'));
    return socket;
  }
  const servername = backendServername(host, tls.serverName);
  const socket = tlsConnect({
    host,
    port,
    ...upstreamTlsOptions(tls),
    ...(servername !== undefined ? { servername } : {}),
    ALPNProtocols: [backend.protocol === 'h2' ? 'h2' : 'http/1.1'],
  });
  socket.once('connect', () => onPhase('tls'));
  socket.once('secureConnect', () => onPhase('request'));
  return socket;
}

/**
 * One probe of `backend`. The timeout covers connect, TLS and the response headers; the body is
 * then drained (at most MAX_BODY_BYTES) within the same deadline, and the status decides.
 */
export function probeBackend(
  backend: RuntimeBackend,
  spec: ProbeSpec,
  tls: RuntimeConfig['upstreamTls'],
): Promise<ProbeResult> {
  return new Promise<ProbeResult>((resolve) => {
    const started = performance.now();
    const elapsed = () => Math.round((performance.now() - started) * 100) / 100;
    let phase: Phase = 'connect';
    let status: number | undefined;
    let latencyMs = 0;
    let settled = false;
    let socket: Socket | undefined;
    const closers: Array<() => void> = [];

    const finish = (failure?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      for (const close of closers) {
        try {
          close();
        } catch {
          // closing is best effort; the socket is destroyed below anyway
        }
      }
      socket?.destroy();
      if (status === undefined) {
        resolve({ ok: false, error: failure ?? 'error closed', latencyMs: elapsed() });
      } else if (statusMatches(spec.expectedStatus, status)) {
        resolve({ ok: true, status, latencyMs });
      } else {
        resolve({ ok: false, status, error: `status ${status}`, latencyMs });
      }
    };
    const onError = (err: unknown): void => finish(describeError(err, phase));
    const onHeaders = (code: number | undefined, body: Readable): void => {
      status = code ?? 0;
      latencyMs = elapsed();
      let bytes = 0;
      body.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes >= MAX_BODY_BYTES) finish();
      });
      body.once('end', () => finish());
    };
    const timer = setTimeout(() => finish('timeout'), spec.timeoutMs);

    try {
      socket = openSocket(backend, tls, (p) => {
        phase = p;
        if (p === 'request' && backend.tls && backend.protocol === 'h2') {
          const alpn = (socket as { alpnProtocol?: string | false } | undefined)?.alpnProtocol;
          if (alpn !== 'h2') finish('tls ALPN_NOT_H2');
        }
      });
      socket.on('error', onError);
      const connection = socket;
      if (backend.protocol === 'h2') {
        const session = http2Connect(backend.origin, { createConnection: () => connection });
        session.on('error', onError);
        closers.push(() => session.destroy());
        const stream = session.request(
          { ':method': spec.method, ':path': spec.path, 'user-agent': USER_AGENT },
          { endStream: true },
        );
        stream.on('error', onError);
        stream.once('response', (headers) => onHeaders(Number(headers[':status']), stream));
        stream.once('close', () => finish(stream.rstCode ? `error RST_STREAM ${stream.rstCode}` : undefined));
        closers.unshift(() => stream.destroy());
      } else {
        const req = http1Request({
          method: spec.method,
          path: spec.path,
          headers: { host: new URL(backend.origin).host, 'user-agent': USER_AGENT, connection: 'close' },
          createConnection: () => connection,
        });
        req.on('error', onError);
        req.once('response', (res) => {
          res.on('error', onError);
          res.once('close', () => finish());
          onHeaders(res.statusCode, res);
        });
        req.once('close', () => finish());
        closers.push(() => req.destroy());
        req.end();
      }
    } catch (err) {
      finish(describeError(err, 'request'));
    }
  });
}
