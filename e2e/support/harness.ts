/**
 * End-to-end test support: starts the real `spooky-dataplane` process on an OS-chosen port,
 * real HTTP/2 backends, and real clients (gtlsclient, Spooky's client), and cleans every process
 * up even when a test fails.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DevCertificate, generateSelfSigned } from '../../cli/certs.js';
import { DAEMON_NODE_FLAGS } from '../../lib/daemon-flags.js';

export const REPO = new URL('../../../', import.meta.url).pathname;
export const DIST = join(REPO, 'dist');

/**
 * How many workers a test's data plane runs when its config does not say: 1, or
 * SPOOKY_E2E_WORKERS (CI runs the proxy, control, drain and traffic suites again with 2).
 */
export const E2E_WORKERS = process.env.SPOOKY_E2E_WORKERS ?? '1';

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export function tempDir(prefix = 'spooky-e2e-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

let certCache: DevCertificate | null = null;
/** One self-signed certificate per test process. */
export function devCert(): DevCertificate {
  certCache ??= generateSelfSigned(tempDir('spooky-cert-'));
  return certCache;
}

export interface RunningDataplane {
  port: number;
  proc: ChildProcess;
  /** Every log line so far (JSON objects). */
  logs: Array<Record<string, unknown>>;
  stderr: () => string;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/** A YAML config for the data plane with the given pools, on 127.0.0.1 port 0. */
export function dataplaneConfig(upstream: string, extra = ''): string {
  const cert = devCert();
  return `listen:
  address: 127.0.0.1
  port: 0
  tls:
    cert: ${cert.certFile}
    key: ${cert.keyFile}
upstream:
${upstream}
log:
  level: info
  format: json
security:
  privileges:
    enabled: false
${extra}${extra.includes('control:') ? '' : `control:\n  socket: ${join(tempDir('spooky-ctl-'), 'none.sock')}\n`}`;
}

/** How a daemon is started: its environment, start-up timeout, arguments after `--config FILE`, and Node flags. */
export interface DaemonOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  args?: readonly string[];
  nodeFlags?: readonly string[];
}

/** Starts spooky-dataplane with `configText`; resolves once it logs `listening`. */
export async function startDataplane(
  configText: string,
  opts: DaemonOptions & { file?: string } = {},
): Promise<RunningDataplane> {
  const file = opts.file ?? join(tempDir(), 'spooky.yaml');
  writeFileSync(file, configText);
  return startDaemon('dataplane/main.js', file, opts);
}

/** spooky-control with its control API port (from its `listening` line). */
export interface RunningControl extends RunningDataplane {
  apiUrl: string;
}

/** Starts spooky-control on `file` (written by the caller); resolves once it logs `listening`. */
export async function startControl(file: string, opts: { timeoutMs?: number } = {}): Promise<RunningControl> {
  const d = await startDaemon('controlplane/main.js', file, opts);
  const listening = d.logs.find((o) => o.msg === 'listening');
  return { ...d, apiUrl: `http://${String(listening?.api)}` };
}

/**
 * Starts a Spooky daemon on a config file (with `args` after `--config FILE`, and `nodeFlags`
 * for Node itself); resolves once it logs `listening` (JSON logs).
 */
export async function startDaemon(main: string, file: string, opts: DaemonOptions = {}): Promise<RunningDataplane> {
  const timeoutMs = opts.timeoutMs ?? 15000;
  const argv = [
    ...DAEMON_NODE_FLAGS,
    ...(opts.nodeFlags ?? []),
    join(DIST, main),
    '--config',
    file,
    ...(opts.args ?? []),
  ];
  // Data planes run E2E_WORKERS workers unless the test chose (its config names performance.workers).
  if (
    main === 'dataplane/main.js' &&
    !argv.includes('--workers') &&
    !/^\s*workers:|[{,]\s*workers:/m.test(readFileSync(file, 'utf8'))
  ) {
    argv.push('--workers', E2E_WORKERS);
  }
  const proc = spawn(process.execPath, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  children.add(proc);
  const logs: Array<Record<string, unknown>> = [];
  let err = '';
  proc.stderr?.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) =>
    proc.on('exit', (code) => {
      children.delete(proc);
      resolve(code);
    }),
  );
  let buf = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${main} did not start within ${timeoutMs} ms: ${err}`)),
      timeoutMs,
    );
    proc.stdout?.on('data', (d) => {
      buf += d;
      let i = buf.indexOf('\n');
      while (i >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        i = buf.indexOf('\n');
        try {
          const o = JSON.parse(line) as Record<string, unknown>;
          logs.push(o);
          if (o.msg === 'listening') {
            clearTimeout(timer);
            resolve(Number(o.port ?? 0));
          }
        } catch {
          // not JSON: ignore
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${main} exited with ${code} before listening: ${err}`));
    });
  });
  return {
    port,
    proc,
    logs,
    stderr: () => err,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), 15000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `read` every 50 ms until `ok` holds, for at most `limitMs`; returns the last value read. */
export async function until<T>(limitMs: number, read: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const end = performance.now() + limitMs;
  for (;;) {
    const v = await read();
    if (ok(v) || performance.now() > end) return v;
    await sleep(50);
  }
}

/** Runs a command with a hard time limit (killed past it). */
export function run(
  cmd: string,
  args: string[],
  timeoutMs = 30000,
  env: NodeJS.ProcessEnv = process.env,
): Promise<CommandResult> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    children.add(p);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => {
      stdout += d;
    });
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      children.delete(p);
      resolve({ code, stdout, stderr });
    });
  });
}

/** gtlsclient against 127.0.0.1:port; the URL's authority is what Spooky sees. */
export function gtlsclient(port: number, urls: string[], extra: string[] = []): Promise<CommandResult> {
  return run(
    'gtlsclient',
    ['--exit-on-all-streams-close', '--no-quic-dump', ...extra, '127.0.0.1', String(port), ...urls],
    60000,
  );
}

/** Response statuses gtlsclient printed (`http: stream 0x0 [:status: 200]` style lines, in order). */
export function gtlsStatuses(out: string): number[] {
  return [...out.matchAll(/\[:status: (\d+)\]/g)].map((m) => Number(m[1]));
}

/** Whether something accepts TCP connections on host:port. */
export function tcpListens(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.setTimeout(2000, () => s.destroy());
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('close', () => resolve(false));
  });
}
