/**
 * The control API's HTTP layer (shared/spec/operations.md, "Control API"): node:http, HTTP/1.1 +
 * JSON, bearer-token auth, capped bodies. What the calls do is up to the handlers.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { VERSION } from '../../lib/version.js';
import { tokenMatches } from './auth.js';
import type {
  AppliedConfigBody,
  ApplyBody,
  BackendInfo,
  BackendsBody,
  ConfigIssue,
  DataPlaneOutcome,
  DataPlanesBody,
  DrainBody,
  ErrorBody,
  HealthBody,
  ReadyBody,
  ValidateBody,
} from './types.js';

export interface ControlApiHandlers {
  /** null → 404 {error:'no config applied yet'}. */
  appliedConfig(): AppliedConfigBody | null;
  validate(yaml: string): ValidateBody;
  apply(yaml: string, by: string): Promise<ApplyResult>;
  rollback(by: string): Promise<ApplyResult>;
  /** The applied config again, its files re-read (a certificate renewed in place). */
  reload(by: string): Promise<ApplyResult>;
  /** Backends with health and in-flight counts (asked of the data planes now). */
  backends(): Promise<BackendInfo[]>;
  /** false → 404 unknown backend. */
  setDrained(id: string, drained: boolean, by: string): boolean;
  dataplanes(): DataPlanesBody;
  ready(): ReadyBody;
}

export type ApplyResult =
  | { kind: 'applied'; body: ApplyBody } // 200
  | { kind: 'invalid'; errors: ConfigIssue[] } // 422 {error, errors}
  | { kind: 'rejected'; version: number; dataplanes: DataPlaneOutcome[] } // 409: previous config stays active
  | { kind: 'no_previous' } // 409
  | { kind: 'nothing_applied' } // 409: reload before any config
  | { kind: 'busy' } // 409
  | { kind: 'failed'; message: string }; // 500: could not be made durable; nothing changed

export interface ControlApiOptions {
  address: string;
  port: number;
  token: string;
  handlers: ControlApiHandlers;
  log: Logger;
  /** Request body cap; default 4 MiB. */
  maxBodyBytes?: number;
}

export interface RunningControlApi {
  port: number;
  address: string;
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY = 4 * 1024 * 1024;

/** `outcome` is for the audit log of mutating calls. */
type Reply = { status: number; body: unknown; outcome?: string; headers?: Record<string, string> };
type Ctx = { params: string[]; body: string; by: string };
type Handler = (ctx: Ctx) => Reply | Promise<Reply>;

interface Route {
  pattern: RegExp;
  /** No token needed. */
  open?: boolean;
  /** Logged at info with its outcome. */
  mutating?: boolean;
  /** Needs a non-empty request body (the YAML). */
  needsBody?: boolean;
  methods: { GET?: Handler; POST?: Handler };
}

/** Thrown while reading the request: answered as is. */
class HttpError {
  constructor(readonly reply: Reply) {}
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': String(Buffer.byteLength(text)),
  });
  res.end(text);
}

const err = (status: number, error: string, outcome?: string, extra: Omit<ErrorBody, 'error'> = {}): Reply => ({
  status,
  body: { error, ...extra } satisfies ErrorBody,
  outcome,
});

function applyReply(r: ApplyResult): Reply {
  switch (r.kind) {
    case 'applied':
      return { status: 200, body: r.body, outcome: r.body.unchanged ? 'unchanged' : `applied v${r.body.version}` };
    case 'invalid': {
      const n = r.errors.length;
      return err(422, `config is invalid: ${n} error${n === 1 ? '' : 's'}`, 'invalid', { errors: r.errors });
    }
    case 'rejected': {
      const why = r.dataplanes
        .filter((d) => d.result === 'nack' || d.result === 'timeout')
        .map((d) => `${d.node_id}: ${d.result === 'nack' ? (d.error ?? 'nack') : 'timeout'}`)
        .join('; ');
      const msg = `config version ${r.version} was rejected (${why || 'no data plane ACKed'}); the previous config stays active`;
      return err(409, msg, 'rejected', { dataplanes: r.dataplanes });
    }
    case 'no_previous':
      return err(409, 'no previous config to roll back to', 'no_previous');
    case 'nothing_applied':
      return err(409, 'no config applied yet: nothing to reload', 'nothing_applied');
    case 'busy':
      return err(409, 'another apply is in progress', 'busy');
    case 'failed':
      return err(500, r.message, 'failed');
  }
}

function routes(h: ControlApiHandlers): Route[] {
  const drain = (drained: boolean): Handler => {
    return ({ params, by }) => {
      let id: string;
      try {
        id = decodeURIComponent(params[0]);
      } catch {
        return err(400, 'malformed backend id in the path (bad percent-encoding)', 'bad_request');
      }
      if (!h.setDrained(id, drained, by)) return err(404, `unknown backend "${id}"`, 'unknown_backend');
      return { status: 200, body: { id, drained } satisfies DrainBody, outcome: drained ? 'drained' : 'undrained' };
    };
  };
  return [
    {
      pattern: /^\/health$/,
      open: true,
      methods: {
        GET: () => ({
          status: 200,
          body: { status: 'ok', uptime_ms: Math.round(process.uptime() * 1000), version: VERSION } satisfies HealthBody,
        }),
      },
    },
    {
      pattern: /^\/ready$/,
      open: true,
      methods: {
        GET: () => {
          const r = h.ready();
          return { status: r.ready ? 200 : 503, body: r };
        },
      },
    },
    {
      pattern: /^\/v1\/config$/,
      mutating: true,
      needsBody: true,
      methods: {
        GET: () => {
          const c = h.appliedConfig();
          return c ? { status: 200, body: c } : err(404, 'no config applied yet');
        },
        POST: async ({ body, by }) => applyReply(await h.apply(body, by)),
      },
    },
    {
      pattern: /^\/v1\/config\/validate$/,
      needsBody: true,
      methods: { POST: ({ body }) => ({ status: 200, body: h.validate(body) }) },
    },
    {
      pattern: /^\/v1\/config\/rollback$/,
      mutating: true,
      methods: { POST: async ({ by }) => applyReply(await h.rollback(by)) },
    },
    {
      pattern: /^\/v1\/config\/reload$/,
      mutating: true,
      methods: { POST: async ({ by }) => applyReply(await h.reload(by)) },
    },
    {
      pattern: /^\/v1\/backends$/,
      methods: { GET: async () => ({ status: 200, body: { backends: await h.backends() } satisfies BackendsBody }) },
    },
    { pattern: /^\/v1\/backends\/([^/]+)\/drain$/, mutating: true, methods: { POST: drain(true) } },
    { pattern: /^\/v1\/backends\/([^/]+)\/undrain$/, mutating: true, methods: { POST: drain(false) } },
    { pattern: /^\/v1\/dataplanes$/, methods: { GET: () => ({ status: 200, body: h.dataplanes() }) } },
  ];
}

// Stop reading and close the connection: the rest of the body is never read.
const tooLarge = (max: number): Reply => ({
  ...err(413, `request body exceeds ${max} bytes`, 'too_large'),
  headers: { connection: 'close' },
});

/** Reads the body up to `max` bytes as UTF-8 text; HttpError 413 / 400 otherwise. */
function readBody(req: IncomingMessage, max: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (declared > max) return Promise.reject(new HttpError(tooLarge(max)));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.off('data', onData);
        req.pause();
        reject(new HttpError(tooLarge(max)));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    // A client that goes away mid-body: nobody is left to answer (resolved promises ignore this).
    const gone = () => reject(new HttpError(err(400, 'request body was cut off', 'aborted')));
    req.on('error', gone);
    req.on('close', gone);
    req.on('end', () => {
      try {
        resolve(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks)));
      } catch {
        reject(new HttpError(err(400, 'request body is not valid UTF-8 text', 'bad_request')));
      }
    });
  });
}

/** `token@<address>` plus the User-Agent (printable, capped): who made a change. */
function callerOf(req: IncomingMessage): string {
  const ua = (req.headers['user-agent'] ?? '').replace(/[^\x20-\x7e]/g, '').slice(0, 80);
  const by = `token@${req.socket.remoteAddress ?? 'unknown'}`;
  return ua ? `${by} (${ua})` : by;
}

export function startControlApi(opts: ControlApiOptions): Promise<RunningControlApi> {
  const { log, token } = opts;
  const max = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const table = routes(opts.handlers);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    let params: string[] = [];
    const route = table.find((r) => {
      const m = r.pattern.exec(path);
      if (m) params = m.slice(1);
      return m !== null;
    });
    if (!route) return send(res, 404, { error: `no such endpoint: ${path}` } satisfies ErrorBody);
    const by = callerOf(req);
    if (!route.open) {
      const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(req.headers.authorization ?? '');
      if (!m || !tokenMatches(token, m[1])) {
        log.warn({ method: req.method, path, remote: req.socket.remoteAddress }, 'control api: unauthorized');
        const error = m ? 'invalid token' : 'missing bearer token (Authorization: Bearer <token>)';
        return send(res, 401, { error } satisfies ErrorBody, { 'www-authenticate': 'Bearer realm="spooky"' });
      }
    }
    const fn = Object.hasOwn(route.methods, method) ? route.methods[method as 'GET' | 'POST'] : undefined;
    if (!fn) {
      const allow = Object.keys(route.methods).flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m]));
      return send(res, 405, { error: `method ${req.method} not allowed on ${path}` } satisfies ErrorBody, {
        allow: allow.join(', '),
      });
    }
    const mutating = route.mutating && method === 'POST';
    let reply: Reply;
    try {
      const body = method === 'POST' ? await readBody(req, max) : '';
      if (method === 'POST' && route.needsBody && body === '') {
        throw new HttpError(err(400, 'request body is empty: send the config YAML', 'bad_request'));
      }
      reply = await fn({ params, body, by });
    } catch (e) {
      if (e instanceof HttpError) reply = e.reply;
      else {
        log.error({ err: e, method: req.method, path }, 'control api: handler failed');
        reply = err(500, `internal error: ${e instanceof Error ? e.message : String(e)}`, 'error');
      }
    }
    if (mutating) {
      log.info({ method: req.method, path, by, outcome: reply.outcome, status: reply.status }, 'control api call');
    }
    send(res, reply.status, reply.body, reply.headers);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      log.error({ err: e, method: req.method, url: req.url }, 'control api: request failed');
      if (!res.headersSent) send(res, 500, { error: 'internal error' } satisfies ErrorBody);
      else res.destroy();
    });
  });

  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      reject(
        new Error(`control API cannot listen on ${opts.address}:${opts.port}: ${e.code ?? e.message}`, { cause: e }),
      );
    };
    server.once('error', onError);
    server.listen(opts.port, opts.address, () => {
      server.off('error', onError);
      server.on('error', (e) => log.error({ err: e }, 'control api: server error'));
      const addr = server.address() as AddressInfo;
      resolve({
        port: addr.port,
        address: addr.address,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
