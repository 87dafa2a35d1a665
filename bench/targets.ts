/**
 * The processes a benchmark run drives: the HTTP/2 backend, Spooky's data plane, Caddy, and the
 * load generators (Spooky's own for HTTP/3, h2load for the HTTP/2 ceiling), plus the /proc
 * readings (CPU seconds, peak RSS) taken from the proxy under test.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { DAEMON_NODE_FLAGS } from '../lib/daemon-flags.js';

export const DIST = new URL('../', import.meta.url).pathname;

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export interface Proc {
  proc: ChildProcess;
  pid: number;
  output: () => string;
  stop(): Promise<void>;
}

/** Starts a process and resolves when `ready` matches its combined output (null: at once). */
export function startProcess(
  cmd: string,
  args: string[],
  ready: RegExp | null,
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<Proc & { match: RegExpMatchArray }> {
  const proc = spawn(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
  });
  children.add(proc);
  let out = '';
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
    children.delete(proc);
  };
  if (ready === null) {
    proc.stdout?.on('data', (d: Buffer) => {
      out = (out + d).slice(-100_000);
    });
    proc.stderr?.on('data', (d: Buffer) => {
      out = (out + d).slice(-100_000);
    });
    const match = [''] as RegExpMatchArray;
    return Promise.resolve({ proc, pid: proc.pid as number, output: () => out, stop, match });
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`${cmd} did not become ready: ${out.slice(-500)}`));
    }, opts.timeoutMs ?? 15000);
    const onData = (d: Buffer) => {
      out += d;
      if (out.length > 1_000_000) out = out.slice(-100_000);
      const m = out.match(ready);
      if (m) {
        clearTimeout(timer);
        proc.stdout?.off('data', onData);
        proc.stderr?.off('data', onData);
        // Keep draining so a chatty process never blocks on a full pipe.
        proc.stdout?.resume();
        proc.stderr?.resume();
        resolve({ proc, pid: proc.pid as number, output: () => out, stop, match: m });
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited early: ${out.slice(-500)}`));
    });
  });
}

/** A free port for TCP and UDP alike (Caddy needs to be told one). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const CLK_TCK = 100;

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Peak resident set size in MiB since the last `resetPeakRss`. */
export function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/** Resets the kernel's peak-RSS mark (Linux: write 5 to clear_refs), so each scenario has its own. */
export function resetPeakRss(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // Not permitted (another user's process): the peak then covers the whole run.
  }
}

export async function startBackend(): Promise<Proc & { port: number }> {
  const p = await startProcess(process.execPath, [join(DIST, 'bench/backend.js')], /^(\d+)\n/m);
  return { ...p, port: Number(p.match[1]) };
}

let spookyStarts = 0;

/** The last `bytes` of a file (the end of a log that may be hundreds of MiB). */
export function readTail(file: string, bytes = 256 * 1024): string {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(0, size - bytes);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Spooky's data plane, started as the daemons start it (nodeFlags: the Node flags before the
 * script), logging as operators run it: `info`, the access log on, JSON lines to a file (each
 * start its own file; `output()` reads its end). `accessLog: false` is the comparison row.
 */
export async function startSpooky(
  dir: string,
  backendPort: number,
  cert: { certFile: string; keyFile: string },
  nodeFlags: readonly string[] = DAEMON_NODE_FLAGS,
  opts: { workers?: string; ready?: RegExp; maxStreams?: number; accessLog?: boolean } = {},
) {
  const n = ++spookyStarts;
  const file = join(dir, `spooky-bench-${n}.yaml`);
  const logFile = join(dir, `spooky-${n}.log`);
  writeFileSync(
    file,
    `listen:
  address: 127.0.0.1
  port: 0
  tls: { cert: "${cert.certFile}", key: "${cert.keyFile}" }
upstream:
  bench:
    backends:
      - { id: backend, address: "http://127.0.0.1:${backendPort}" }
log:
  level: info
  format: json
  access_log: ${opts.accessLog ?? true}
  file: { path: "${logFile}" }
security:
  privileges: { enabled: false }
performance:
  quic_initial_max_streams_bidi: ${opts.maxStreams ?? 1000}
  # All load comes from one address here; in production it would be many sources.
  per_source_max_connections: 100000
  per_source_new_connections_per_sec: 100000
  per_source_new_connections_burst: 100000
  # Sixteen gtlsclient processes pipeline up to 100 requests each at one backend: the default
  # in-flight limits would answer many of them 503 (load shedding, which is right on an edge, but
  # then the benchmark measures how fast Spooky refuses). Caddy has no such limits.
  global_inflight_limit: 100000
  per_upstream_inflight_limit: 100000
  per_backend_inflight_limit: 100000
  workers: ${opts.workers ?? 1}
`,
  );
  writeFileSync(logFile, '');
  // Nothing to wait for on stdout: the `listening` line goes to the log file.
  const p = await startProcess(
    process.execPath,
    [...nodeFlags, join(DIST, 'dataplane/main.js'), '--config', file],
    null,
  );
  const ready = opts.ready ?? /"port":(\d+)/;
  for (let i = 0; i < 300 && !ready.test(readTail(logFile)); i++) {
    if (p.proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const head = readTail(logFile);
  if (!ready.test(head)) {
    await p.stop();
    throw new Error(`spooky did not become ready: ${p.output().slice(-500)}${head.slice(-500)}`);
  }
  const port = /"port":(\d+)/.exec(head);
  return { ...p, port: Number(port?.[1]), logFile, output: () => readTail(logFile) };
}

export async function startCaddy(dir: string, backendPort: number, cert: { certFile: string; keyFile: string }) {
  const port = await freePort();
  const file = join(dir, 'Caddyfile');
  writeFileSync(
    file,
    `{
  admin off
  auto_https off
  servers {
    protocols h1 h2 h3
  }
}
https://localhost:${port} {
  bind 127.0.0.1
  tls ${cert.certFile} ${cert.keyFile}
  reverse_proxy h2c://127.0.0.1:${backendPort}
}
`,
  );
  const env = { HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir };
  const p = await startProcess(
    'caddy',
    ['run', '--config', file, '--adapter', 'caddyfile'],
    /server running|serving initial configuration/,
    {
      env,
    },
  );
  return { ...p, port };
}

export interface H2loadResult {
  rps: number;
  requests: number;
  failed: number;
  meanMs: number | null;
}

/** The HTTP/2 ceiling: h2load straight at the backend. */
export async function runH2load(
  url: string,
  o: { connections: number; streams: number; durationS: number; warmupS: number; dataFile?: string },
): Promise<H2loadResult> {
  const args = [
    '-c',
    String(o.connections),
    '-m',
    String(o.streams),
    '-D',
    `${Math.round(o.durationS * 1000)}ms`,
    `--warm-up-time=${Math.round(o.warmupS * 1000)}ms`,
    ...(o.dataFile ? ['-d', o.dataFile] : []),
    url,
  ];
  const p = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(p);
  let out = '';
  p.stdout.on('data', (d) => {
    out += d;
  });
  p.stderr.on('data', (d) => {
    out += d;
  });
  await new Promise((r) => p.on('exit', r));
  children.delete(p);
  const rps = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out);
  const req = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed/.exec(out);
  const mean = /time for request:\s+\S+\s+\S+\s+(\S+)/.exec(out);
  if (!rps || !req) throw new Error(`cannot read h2load output: ${out.slice(-400)}`);
  const toMs = (s: string) =>
    s.endsWith('us')
      ? Number.parseFloat(s) / 1000
      : s.endsWith('ms')
        ? Number.parseFloat(s)
        : Number.parseFloat(s) * 1000;
  return { rps: Number(rps[1]), requests: Number(req[2]), failed: Number(req[3]), meanMs: mean ? toMs(mean[1]) : null };
}
