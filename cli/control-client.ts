/**
 * How the `spooky` CLI reaches spooky-control: the API's URL and bearer token (from flags, the
 * environment, or the config file given with --config), and JSON calls with a timeout. Every
 * failure is a ControlFailure: one sentence for stderr and the exit code. The token is never printed.
 */
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { CONFIG_MAX_BYTES, FileRefusedError, PEM_MAX_BYTES, readRegularTextFile } from '../lib/regular-file.js';
import { VERSION } from '../lib/version.js';

export const DEFAULT_CONTROL_URL = 'http://127.0.0.1:9902';
export const DEFAULT_STATE_DIR = '/var/lib/spooky';
/** Request timeouts: apply waits for every data plane to ACK, so it gets longer. */
export const APPLY_TIMEOUT_MS = 60_000;
export const DEFAULT_TIMEOUT_MS = 10_000;

/** A failure the CLI reports as one sentence on stderr and exits with `exitCode` (1 failure, 2 usage). */
export class ControlFailure extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'ControlFailure';
  }
}

/** The options every control command takes. */
export interface ConnectionOptions {
  control?: string;
  token?: string;
  tokenFile?: string;
  /** A config file, read only for the defaults below. */
  config?: string;
}

/** What a config file says about reaching its control API. */
export interface ConfigDefaults {
  url: string;
  token?: string;
  /** Absolute (relative paths are resolved against the config file's directory). */
  tokenFile?: string;
  stateDir: string;
}

type Env = Record<string, string | undefined>;

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** `host:port` as a URL authority: IPv6 in brackets, wildcard addresses replaced by loopback. */
export function controlUrlFor(address: string, port: number): string {
  const host = address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '::1' : address;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Reads the control API settings from a config file, tolerating every other problem in it. */
export function configDefaults(file: string): ConfigDefaults {
  let text: string;
  try {
    text = readRegularTextFile(file, CONFIG_MAX_BYTES);
  } catch (err) {
    if (err instanceof FileRefusedError)
      throw new ControlFailure(`spooky: cannot read the config file: ${err.message}`);
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code;
    throw new ControlFailure(`spooky: cannot read the config file ${file} (${reason})`, code === 'ENOENT' ? 2 : 1);
  }
  let data: unknown;
  try {
    data = parse(text, { merge: true });
  } catch (err) {
    throw new ControlFailure(`spooky: ${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const api = record(record(record(data).observability).control_api);
  const control = record(record(data).control);
  const address = typeof api.address === 'string' ? api.address : '127.0.0.1';
  const port = typeof api.port === 'number' ? api.port : 9902;
  const tokenFile = typeof api.auth_token_file === 'string' ? api.auth_token_file : undefined;
  return {
    url: controlUrlFor(address, port),
    token: typeof api.auth_token === 'string' ? api.auth_token : undefined,
    tokenFile: tokenFile === undefined ? undefined : resolve(dirname(resolve(file)), tokenFile),
    // Relative paths in the config resolve against its directory, as the daemons resolve them.
    stateDir: resolve(
      dirname(resolve(file)),
      typeof control.state_dir === 'string' ? control.state_dir : DEFAULT_STATE_DIR,
    ),
  };
}

/** Accepts `host:port` as well as a full http(s) URL; drops a trailing slash. */
export function normalizeControlUrl(raw: string, source = '--control '): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new ControlFailure(`spooky: ${source}${raw} is not a URL (expected e.g. ${DEFAULT_CONTROL_URL})`, 2);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ControlFailure(`spooky: ${source}${raw}: expected an http:// or https:// URL`, 2);
  }
  return url.href.replace(/\/+$/, '');
}

function readTokenFile(file: string): string {
  let token: string;
  try {
    token = readRegularTextFile(file, PEM_MAX_BYTES).trim();
  } catch (err) {
    if (err instanceof FileRefusedError) {
      throw new ControlFailure(`spooky: cannot use the token file: ${err.message}; pass --token or set SPOOKY_TOKEN`);
    }
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code;
    throw new ControlFailure(
      `spooky: cannot read the token file ${file} (${reason}); pass --token or set SPOOKY_TOKEN`,
    );
  }
  if (token === '') {
    throw new ControlFailure(`spooky: the token file ${file} is empty; pass --token or set SPOOKY_TOKEN`);
  }
  return token;
}

/**
 * URL: --control, SPOOKY_CONTROL, the --config file's control_api, the default.
 * Token: --token, SPOOKY_TOKEN, --token-file, the config's auth_token / auth_token_file,
 * `<control.state_dir>/control.token`.
 */
export function resolveConnection(opts: ConnectionOptions, env: Env = process.env): { url: string; token: string } {
  let cached: ConfigDefaults | undefined;
  const defaults = (): ConfigDefaults | undefined =>
    opts.config === undefined ? undefined : (cached ??= configDefaults(opts.config));
  const nonEmpty = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);

  const flag = nonEmpty(opts.control);
  const fromEnv = nonEmpty(env.SPOOKY_CONTROL);
  const url =
    flag !== undefined
      ? normalizeControlUrl(flag)
      : fromEnv !== undefined
        ? normalizeControlUrl(fromEnv, 'SPOOKY_CONTROL=')
        : (defaults()?.url ?? DEFAULT_CONTROL_URL);

  const direct = nonEmpty(opts.token) ?? nonEmpty(env.SPOOKY_TOKEN);
  if (direct !== undefined) return { url, token: direct };
  if (nonEmpty(opts.tokenFile) !== undefined) return { url, token: readTokenFile(opts.tokenFile!) };
  const d = defaults();
  if (d?.token !== undefined) return { url, token: d.token };
  if (d?.tokenFile !== undefined) return { url, token: readTokenFile(d.tokenFile) };
  return { url, token: readTokenFile(join(d?.stateDir ?? DEFAULT_STATE_DIR, 'control.token')) };
}

export interface ControlResponse<T> {
  status: number;
  body: T;
}

export interface RequestOptions {
  /** Sent as is; YAML unless contentType says otherwise. */
  body?: string;
  contentType?: string;
  timeoutMs?: number;
}

/** spooky-control records the User-Agent as part of `applied_by`: name the operator. */
function userAgent(): string {
  let user = process.env.SUDO_USER ?? '';
  try {
    user ||= userInfo().username;
  } catch {
    // no passwd entry (some containers)
  }
  return user ? `spooky/${VERSION} (${user})` : `spooky/${VERSION}`;
}

/** JSON calls to the control API. A 401 and every transport problem become ControlFailures. */
export class ControlClient {
  constructor(
    readonly url: string,
    private readonly token: string,
  ) {}

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<ControlResponse<T>> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const headers: Record<string, string> = {
      accept: 'application/json',
      authorization: `Bearer ${this.token}`,
      'user-agent': userAgent(),
    };
    if (opts.body !== undefined) headers['content-type'] = opts.contentType ?? 'application/yaml';
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${this.url}${path}`, {
        method,
        headers,
        body: opts.body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      throw this.transportFailure(err, timeoutMs);
    }
    if (res.status === 401) {
      throw new ControlFailure('spooky: the control API refused the token (401); pass --token or set SPOOKY_TOKEN');
    }
    try {
      return { status: res.status, body: JSON.parse(text) as T };
    } catch {
      throw new ControlFailure(
        `spooky: ${method} ${path} at ${this.url} answered ${res.status} without a JSON body (is this spooky-control?)`,
      );
    }
  }

  private transportFailure(err: unknown, timeoutMs: number): ControlFailure {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError' || e.name === 'AbortError') {
      return new ControlFailure(`spooky: the control API at ${this.url} did not answer within ${timeoutMs / 1000} s`);
    }
    const code = e.cause?.code;
    if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
      return new ControlFailure(`spooky: cannot reach the control API at ${this.url} (is spooky-control running?)`);
    }
    const reason = code ?? e.cause?.message ?? e.message;
    return new ControlFailure(`spooky: cannot reach the control API at ${this.url} (${reason})`);
  }
}

/** The client for a command's connection options. */
export function connect(opts: ConnectionOptions, env: Env = process.env): ControlClient {
  const { url, token } = resolveConnection(opts, env);
  return new ControlClient(url, token);
}

/** The `error` sentence of an ErrorBody-shaped answer, or a fallback naming the status. */
export function errorMessage(body: unknown, status: number): string {
  const error = record(body).error;
  return typeof error === 'string' && error !== '' ? error : `the control API answered ${status}`;
}
