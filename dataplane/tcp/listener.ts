/**
 * The TCP listener: HTTP/2 and HTTP/1.1 over TLS (ALPN h2, http/1.1) on the listen address and
 * the QUIC port, for clients that have not discovered HTTP/3 yet (Alt-Svc). Requests reach the
 * same RequestHandler (the forwarder) as HTTP/3 ones, as ClientRequest + ClientStream.
 * Node's parsers (nghttp2, llhttp) reject bad framing and smuggling attempts themselves; this
 * file adds what HTTP/3 validation adds on top: header limits (431), CONNECT (501), transfer
 * codings other than chunked (501), conflicting or malformed host / :authority and :scheme (400),
 * path normalisation, and the removal of connection-specific fields.
 */
import { ServerResponse as Http1Response, type IncomingMessage, type ServerResponse } from 'node:http';
import http2, {
  constants,
  type Http2SecureServer,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { normalizePath } from '../../model/router/normalize-path.js';
import type { AdmissionAttempt, AdmissionVerdict } from '../admission/connection-admission.js';
import { CONNECTION_SPECIFIC } from '../http/fields.js';
import { validAuthority, validScheme } from '../proxy/authority.js';
import type { ClientRequest, ClientStream, RequestHandler } from '../proxy/client-stream.js';
import { certificateSubject } from '../tls/subject.js';
import { guardSession, watchStream } from './h2-abuse.js';
import { H1ClientStream, H2ClientStream } from './stream.js';

export interface TcpLimits {
  /** Header fields per request, pseudo-headers (or their HTTP/1.1 equivalents) included. */
  maxHeaderCount: number;
  /** RFC 9113 §6.5.2 / RFC 9114 §4.2.2 size: name + value + 32 per field. */
  maxHeaderBytes: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS (default 100). */
  maxConcurrentStreams?: number;
  /** HTTP/1.1: a request head must be complete this long after the connection or the previous request (408). */
  requestHeaderTimeoutMs?: number;
}

type Log = { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };

export interface TcpListenerOptions {
  address: string;
  port: number;
  certPem: string;
  keyPem: string;
  handler: RequestHandler;
  limits: TcpLimits;
  log: Log;
  /**
   * Asked for each new TCP connection before TLS (caps and rates, per source and global): a
   * refusal closes it at once; an admitted connection holds the lease until its socket closes.
   */
  admit?: (attempt: AdmissionAttempt) => AdmissionVerdict;
  /** A connection whose TLS handshake has not completed this long after it opened is closed. */
  tlsHandshakeTimeoutMs?: number;
  /** An HTTP/2 connection without traffic this long gets GOAWAY (default 120 s). */
  idleTimeoutMs?: number;
  /** mTLS: the CA bundle client certificates must chain to; the handshake fails without one. */
  clientCaPem?: string | null;
  /** SO_REUSEPORT: one of several workers listening on the same port. */
  reusePort?: boolean;
}

const FIELD_OVERHEAD = 32;

type Refusal = { ok: false; status: 400 | 431 | 501; reason: string };
type Built = { ok: true; request: ClientRequest } | Refusal;

export interface Head {
  method: string;
  /** :path (HTTP/2) or the request target (HTTP/1.1). */
  target: string;
  /** :authority (HTTP/2), when sent. */
  authority: string | undefined;
  /** :scheme (HTTP/2); HTTP/1.1 has none. */
  scheme: string | undefined;
  /** Regular fields, flat [name, value, ...] as received. */
  raw: readonly string[];
  /** Pseudo-header fields (HTTP/2) or their implied equivalents (HTTP/1.1), for the limits. */
  pseudo: ReadonlyArray<readonly [string, string]>;
  /** The request is known to have no body (no framing in HTTP/1.1, END_STREAM in HTTP/2). */
  bodyless: boolean;
  /** :authority or Host is mandatory (HTTP/2, HTTP/1.1; not HTTP/1.0). */
  requireHost: boolean;
}

/** Turns a parsed request head into a ClientRequest, or the status to refuse it with. */
export function buildRequest(h: Head, limits: TcpLimits): Built {
  const count = h.raw.length / 2 + h.pseudo.length;
  if (count > limits.maxHeaderCount) {
    return { ok: false, status: 431, reason: `${count} header fields exceed the limit of ${limits.maxHeaderCount}` };
  }
  let size = 0;
  for (const [n, v] of h.pseudo) size += n.length + v.length + FIELD_OVERHEAD;
  for (let i = 0; i < h.raw.length; i++) size += h.raw[i].length + (i % 2 === 0 ? FIELD_OVERHEAD : 0);
  if (size > limits.maxHeaderBytes) {
    return { ok: false, status: 431, reason: `header section of ${size} bytes exceeds ${limits.maxHeaderBytes}` };
  }
  if (h.method === 'CONNECT') return { ok: false, status: 501, reason: 'CONNECT is not supported' };
  if (h.scheme !== undefined && !validScheme(h.scheme)) {
    return { ok: false, status: 400, reason: ':scheme must be https or http' };
  }
  const dropped = new Set<string>();
  let host: string | undefined;
  let contentLength = -1;
  const codings: string[] = [];
  for (let i = 0; i < h.raw.length; i += 2) {
    const name = h.raw[i].toLowerCase();
    const value = h.raw[i + 1];
    if (name === 'connection') for (const t of value.split(',')) dropped.add(t.trim().toLowerCase());
    else if (name === 'transfer-encoding') codings.push(...value.split(','));
    else if (name === 'host') {
      if (host !== undefined && host !== value) return { ok: false, status: 400, reason: 'conflicting host headers' };
      host = value;
    } else if (name === 'content-length') {
      const n = /^[0-9]{1,15}$/.test(value) ? Number(value) : Number.NaN;
      if (Number.isNaN(n) || (contentLength !== -1 && contentLength !== n)) {
        return { ok: false, status: 400, reason: `invalid content-length ${JSON.stringify(value)}` };
      }
      contentLength = n;
    }
  }
  const coding = transferCoding(codings);
  if (typeof coding === 'object' && coding !== null) return coding;
  const chunked = coding === 'chunked';
  const headers: Array<readonly [string, string]> = [];
  for (let i = 0; i < h.raw.length; i += 2) {
    const name = h.raw[i].toLowerCase();
    if (CONNECTION_SPECIFIC.has(name) || dropped.has(name)) continue;
    if (name === 'te') {
      // Only "trailers" means anything past this hop (gRPC); the forwarder expects nothing else.
      if (h.raw[i + 1].split(',').some((t) => t.trim().toLowerCase() === 'trailers')) headers.push(['te', 'trailers']);
      continue;
    }
    headers.push([name, h.raw[i + 1]]);
  }
  let authority = h.authority;
  let path = h.target;
  if (path.charCodeAt(0) !== 0x2f && !(path === '*' && h.method === 'OPTIONS')) {
    // HTTP/1.1 absolute-form: the target's authority wins over Host (RFC 9112 §3.2.2).
    const abs = /^https?:\/\/([^/?#]+)([^#]*)$/i.exec(path);
    if (!abs) return { ok: false, status: 400, reason: 'request target must start with "/"' };
    authority = abs[1];
    path = abs[2] === '' ? '/' : abs[2].charCodeAt(0) === 0x3f ? `/${abs[2]}` : abs[2];
    host = undefined;
  }
  if (authority !== undefined && host !== undefined && authority !== host) {
    return { ok: false, status: 400, reason: ':authority and host differ' };
  }
  const auth = authority ?? host;
  if (auth === undefined || auth === '') {
    // HTTP/1.0 may leave it out; then only host-less routes match.
    if (h.requireHost) return { ok: false, status: 400, reason: 'missing :authority or host' };
  } else if (!validAuthority(auth)) {
    return { ok: false, status: 400, reason: ':authority or host is not a valid host[:port]' };
  }
  const normalised = normalizePath(path);
  if ('problem' in normalised) return { ok: false, status: 400, reason: `request target: ${normalised.problem}` };
  if (contentLength === -1 && h.bodyless && !chunked) contentLength = 0;
  return {
    ok: true,
    request: {
      method: h.method,
      scheme: 'https',
      authority: auth ?? '',
      path: normalised.path,
      headers,
      contentLength,
    },
  };
}

/**
 * The request's transfer coding (HTTP/1.1 only: HTTP/2 forbids the field): null without one,
 * ok for `chunked` alone, else the refusal. llhttp has already checked that chunked comes last;
 * Spooky implements no other coding, so it may not pass one on as a plain body (RFC 9112 §6.1: 501).
 */
function transferCoding(values: readonly string[]): Refusal | 'chunked' | null {
  if (values.length === 0) return null;
  const list = values.map((v) => v.trim().toLowerCase()).filter((v) => v !== '');
  if (list.some((c) => c !== 'chunked')) {
    return { ok: false, status: 501, reason: 'transfer codings other than chunked are not implemented' };
  }
  if (list.length !== 1) return { ok: false, status: 400, reason: 'chunked must be applied exactly once' };
  return 'chunked';
}

/** `::ffff:1.2.3.4` → `1.2.3.4`: the same client looks the same over TCP and QUIC. */
function peerIp(addr: string | undefined): string {
  if (!addr) return '';
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

/** The TLS socket and the TCP socket under it share the peer's address and port. */
function handshakeKey(socket: Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}

/** performance.tls_handshake_timeout_ms's default. */
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

interface Conn {
  key: string;
  clientIp: string;
  /** The verified client certificate's subject (mTLS). */
  clientCertSubject: string | undefined;
  /** HTTP/1.1 exchanges in progress on the connection. */
  active: number;
}

export class TcpListener {
  private readonly server: Http2SecureServer;
  /** Every TCP connection (for admission counts and a forced close). */
  private readonly sockets = new Set<Socket>();
  private readonly sessions = new Map<ServerHttp2Session, Conn>();
  private readonly h1 = new Map<TLSSocket, Conn>();
  private nextKey = 0;
  private draining = false;
  /** Connections still in their TLS handshake, by peer address and port, with their deadline. */
  private readonly handshaking = new Map<string, { socket: Socket; timer: NodeJS.Timeout }>();
  private handshakeTimeoutMs: number;
  private closing: Promise<void> | null = null;

  /** Header limits, replaced by `setLimits` when a snapshot changes them. */
  private limits: TcpLimits;

  constructor(private readonly options: TcpListenerOptions) {
    const { limits } = options;
    this.limits = limits;
    const ca = options.clientCaPem ?? null;
    // Node's own handshake timer (120 s, restarted by every byte) stays as a backstop; the
    // deadline of tls_handshake_timeout_ms (at most 120 s) is set per connection in onConnection.
    this.handshakeTimeoutMs = options.tlsHandshakeTimeoutMs ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS;
    this.server = http2.createSecureServer({
      cert: options.certPem,
      key: options.keyPem,
      allowHTTP1: true,
      // mTLS as on QUIC: no valid client certificate, no handshake.
      ...(ca !== null ? { ca, requestCert: true, rejectUnauthorized: true } : {}),
      // Slack over our own limits so an oversized head gets our 431 rather than a bare reset.
      maxHeaderListPairs: limits.maxHeaderCount * 2 + 16,
      settings: {
        maxConcurrentStreams: limits.maxConcurrentStreams ?? 100,
        maxHeaderListSize: limits.maxHeaderBytes * 2 + 4096,
      },
    });
    const srv = this.http1Settings();
    srv.keepAliveTimeout = 5000;
    srv.insecureHTTPParser = false;
    // HTTP/1.1 slow headers (slowloris): Node checks its connections every
    // connectionsCheckingInterval (30 s by default, so a 10 s limit fired after up to 40 s).
    srv.connectionsCheckingInterval = 1000;
    this.applyHttp1Limits();
    // HTTP/2 is served through the core stream API: drop the compatibility layer that adding a
    // 'request' listener (needed for HTTP/1.1) would otherwise install.
    this.server.removeAllListeners('newListener');
    this.server.on('connection', (socket: Socket) => this.onConnection(socket));
    this.server.on('secureConnection', (socket: TLSSocket) => this.onSecureConnection(socket));
    this.server.on('session', (session: ServerHttp2Session) => this.onSession(session));
    this.server.on('stream', (s: ServerHttp2Stream, h: IncomingHttpHeaders, flags: number, raw?: string[]) =>
      this.onStream(s, h, flags, raw),
    );
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    this.server.on('connect', (req: IncomingMessage, socket: Socket) => this.onConnect(req, socket));
  }

  private http1Settings() {
    return this.server as Http2SecureServer & {
      maxHeadersCount: number;
      maxHeaderSize: number;
      keepAliveTimeout: number;
      insecureHTTPParser: boolean;
      headersTimeout: number;
      requestTimeout: number;
      connectionsCheckingInterval: number;
    };
  }

  /** The HTTP/1.1 parser's own limits, from ours (new connections take them). */
  private applyHttp1Limits(): void {
    const srv = this.http1Settings();
    // Slack over our limits, as for HTTP/2: Node 24's parser answers 431 by itself past
    // maxHeadersCount (Node 20 truncated), and an oversized head should get our 431 and its log line.
    srv.maxHeadersCount = this.limits.maxHeaderCount * 2 + 16;
    srv.maxHeaderSize = this.limits.maxHeaderBytes * 2 + 8192;
    srv.headersTimeout = this.limits.requestHeaderTimeoutMs ?? 60_000;
    // No cap on a whole request's duration: a long upload is bounded by the backend idle
    // timeout between body bytes, not by a clock that cuts it at 5 minutes (Node's default).
    srv.requestTimeout = 0;
  }

  /** Limits of an applied snapshot: every request from now on is held to them. */
  setLimits(limits: TcpLimits): void {
    this.limits = limits;
    this.applyHttp1Limits();
  }

  /** Connections opened from now on get this long to complete their TLS handshake. */
  setTlsHandshakeTimeout(ms: number): void {
    this.handshakeTimeoutMs = ms;
  }

  /** Open TCP connections. */
  get connectionCount(): number {
    return this.sockets.size;
  }

  listen(): Promise<{ port: number }> {
    const { address, port, reusePort = false } = this.options;
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      this.server.once('error', onError);
      this.server.listen({ host: address, port, reusePort }, () => {
        this.server.off('error', onError);
        this.server.on('error', (e) => this.options.log.warn({ err: e.message }, 'TCP listener error'));
        const a = this.server.address();
        resolve({ port: typeof a === 'object' && a ? a.port : port });
      });
    });
  }

  /** New connections use this certificate; established ones keep theirs. */
  setCertificate(certPem: string, keyPem: string, clientCaPem: string | null = this.options.clientCaPem ?? null): void {
    this.server.setSecureContext({ cert: certPem, key: keyPem, ...(clientCaPem !== null ? { ca: clientCaPem } : {}) });
  }

  /**
   * Graceful close: no new connections; HTTP/2 GOAWAY (streams in flight finish); HTTP/1.1 idle
   * connections closed, busy ones answered with `connection: close`; everything left is
   * destroyed after `drainMs`.
   */
  close(drainMs: number): Promise<void> {
    this.closing ??= this.doClose(drainMs);
    return this.closing;
  }

  private async doClose(drainMs: number): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const session of this.sessions.keys()) session.close();
    for (const [socket, conn] of this.h1) if (conn.active === 0) socket.end();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), drainMs);
    });
    const forced = await Promise.race([closed.then(() => false), timedOut]);
    clearTimeout(timer);
    if (forced) {
      const open = this.sockets.size;
      for (const session of this.sessions.keys()) session.destroy();
      for (const socket of this.sockets) socket.destroy();
      this.options.log.warn({ connections: open, drain_ms: drainMs }, 'TCP connections closed after the drain timeout');
    }
    await closed;
  }

  private onConnection(socket: Socket): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    // The three-way handshake proved the source address: judged by its per-source share.
    const verdict = this.options.admit?.({ peer: { host: peerIp(socket.remoteAddress) }, addressValidated: true });
    if (verdict && !verdict.ok) {
      socket.destroy();
      return;
    }
    const lease = verdict?.lease;
    this.sockets.add(socket);
    // A deadline from accept, not an idle timer: a ClientHello dripped a byte at a time
    // must not hold the connection (and its admission share) for minutes.
    const key = handshakeKey(socket);
    const timer = setTimeout(() => socket.destroy(), this.handshakeTimeoutMs);
    timer.unref();
    this.handshaking.set(key, { socket, timer });
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.handshakeDone(key, socket);
      lease?.release();
    });
  }

  /** The TLS handshake of the connection from `key` completed (or the connection closed). */
  private handshakeDone(key: string, socket?: Socket): void {
    const pending = this.handshaking.get(key);
    if (!pending || (socket && pending.socket !== socket)) return;
    clearTimeout(pending.timer);
    this.handshaking.delete(key);
  }

  private newConn(remoteAddress: string | undefined, socket?: TLSSocket): Conn {
    this.nextKey = (this.nextKey + 1) % Number.MAX_SAFE_INTEGER;
    let clientCertSubject: string | undefined;
    if (this.options.clientCaPem) {
      try {
        const cert = socket?.getPeerX509Certificate();
        clientCertSubject = cert ? certificateSubject(cert.raw) : undefined;
      } catch {
        clientCertSubject = undefined;
      }
    }
    return { key: `tcp-${this.nextKey}`, clientIp: peerIp(remoteAddress), clientCertSubject, active: 0 };
  }

  private onSecureConnection(socket: TLSSocket): void {
    this.handshakeDone(handshakeKey(socket));
    if (socket.alpnProtocol === 'h2') return; // the session handler has it
    this.h1.set(socket, this.newConn(socket.remoteAddress, socket));
    socket.once('close', () => this.h1.delete(socket));
    if (this.draining) socket.end();
  }

  private onSession(session: ServerHttp2Session): void {
    this.sessions.set(session, this.newConn(session.socket?.remoteAddress, session.socket as TLSSocket | undefined));
    guardSession(session);
    session.on('error', () => {}); // its streams see 'close'
    session.once('close', () => this.sessions.delete(session));
    session.setTimeout(this.options.idleTimeoutMs ?? 120_000, () => session.close());
    if (this.draining) session.close();
  }

  private onStream(s: ServerHttp2Stream, h: IncomingHttpHeaders, flags: number, rawHeaders?: string[]): void {
    const session = s.session as ServerHttp2Session;
    const conn =
      this.sessions.get(session) ??
      this.newConn(session.socket?.remoteAddress, session.socket as TLSSocket | undefined);
    const stream = new H2ClientStream(s, conn.clientIp, conn.key);
    watchStream(session, s, () => stream.responseEnded);
    stream.clientCertSubject = conn.clientCertSubject;
    const raw: string[] = [];
    const pseudo: Array<readonly [string, string]> = [];
    const all = rawHeaders ?? Object.entries(h).flatMap(([k, v]) => (v === undefined ? [] : [k, String(v)]));
    for (let i = 0; i + 1 < all.length; i += 2) {
      if (all[i].charCodeAt(0) === 0x3a) pseudo.push([all[i], all[i + 1]]);
      else raw.push(all[i], all[i + 1]);
    }
    const authority = h[constants.HTTP2_HEADER_AUTHORITY];
    this.dispatch(stream, {
      method: String(h[constants.HTTP2_HEADER_METHOD] ?? ''),
      target: String(h[constants.HTTP2_HEADER_PATH] ?? ''),
      authority: authority === undefined ? undefined : String(authority),
      scheme: pseudo.find(([n]) => n === ':scheme')?.[1],
      raw,
      pseudo,
      bodyless: (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0,
      requireHost: true,
    });
  }

  private h1Conn(req: IncomingMessage): Conn {
    const socket = req.socket as TLSSocket;
    let conn = this.h1.get(socket);
    if (!conn) {
      conn = this.newConn(socket.remoteAddress, socket);
      this.h1.set(socket, conn);
    }
    return conn;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const conn = this.h1Conn(req);
    const socket = req.socket;
    conn.active++;
    res.once('close', () => {
      conn.active--;
      // A response that went out before the drain began had no `connection: close`.
      if (this.draining && conn.active === 0 && !socket.destroyed) socket.end();
    });
    const stream = new H1ClientStream(req, res, conn.clientIp, conn.key, () => this.draining);
    stream.clientCertSubject = conn.clientCertSubject;
    this.dispatch(stream, this.h1Head(req));
  }

  private h1Head(req: IncomingMessage): Head {
    const method = req.method ?? '';
    const target = req.url ?? '';
    const framed = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    const pseudo: Head['pseudo'] = [
      [':method', method],
      [':scheme', 'https'],
      [':path', target],
    ];
    const requireHost = req.httpVersionMajor === 1 && req.httpVersionMinor >= 1;
    return {
      method,
      target,
      authority: undefined,
      scheme: undefined,
      raw: req.rawHeaders,
      pseudo,
      bodyless: !framed,
      requireHost,
    };
  }

  /** HTTP/1.1 CONNECT arrives as its own event (Node detaches the socket): answer 501. */
  private onConnect(req: IncomingMessage, socket: Socket): void {
    const conn = this.h1Conn(req);
    const res = new Http1Response(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket);
    res.once('finish', () => {
      res.detachSocket(socket);
      socket.end();
    });
    const stream = new H1ClientStream(req, res, conn.clientIp, conn.key, () => true);
    this.options.handler.onRejected(stream, 501, 'CONNECT is not supported');
  }

  private dispatch(stream: ClientStream, head: Head): void {
    const built = buildRequest(head, this.limits);
    if (built.ok) this.options.handler.onRequest(stream, built.request);
    else this.options.handler.onRejected(stream, built.status, built.reason);
  }
}
