/**
 * Logging setup shared by every Spooky process: pino, `plain` (readable) or `json` lines, the
 * themed level aliases of the config resolved before they reach here.
 */
import pino, { type Logger } from 'pino';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface LogOptions {
  level: LogLevel;
  format: 'plain' | 'json';
  component: string;
  /** Write to this file descriptor or path instead of stdout. */
  destination?: number | string;
}

/** Fields that must never reach a log line. */
const REDACT = ['token', 'auth_token', 'authorization', 'key', 'password', '*.authorization', '*.auth_token'];

/** The logger without a component that each logger of createLogger and componentLogger derives from. */
const roots = new WeakMap<Logger, Logger>();
/** Every logger derived from a root (one per component), for setLogLevel. */
const families = new WeakMap<Logger, Set<Logger>>();

function adopt(root: Logger, log: Logger): Logger {
  roots.set(log, root);
  let family = families.get(root);
  if (!family) families.set(root, (family = new Set()));
  family.add(log);
  return log;
}

/**
 * A logger of `opts.component`. Its `component` field is a child binding of a root logger without
 * one, so componentLogger can name another component without a second `component` key (pino
 * repeats a key a child binds again).
 */
export function createLogger(opts: LogOptions): Logger {
  const root = createRootLogger(opts);
  return adopt(root, root.child({ component: opts.component }));
}

/**
 * A logger of another component of the same process (e.g. `access`), at `log`'s current level.
 * `redact: false` is for a component whose lines Spooky builds field by field and that never
 * carry a secret (the access log): pino's redaction with wildcard paths passes every field of
 * every line through the redactor, which cost a third of the data plane's allocations per request.
 */
export function componentLogger(log: Logger, component: string, opts: { redact?: boolean } = {}): Logger {
  const root = roots.get(log);
  const childOpts = opts.redact === false ? { redact: [] } : {};
  if (!root) return log.child({ component }, childOpts);
  return adopt(root, root.child({ component }, { level: log.level, ...childOpts }));
}

/**
 * Sets the level of `log` and of every other component's logger of the same process (a pino
 * child keeps the level it was created with when its parent's changes).
 */
export function setLogLevel(log: Logger, level: string): void {
  const root = roots.get(log);
  for (const member of (root && families.get(root)) ?? [log]) member.level = level;
}

/** Why a log file cannot be opened, in words (a daemon prints it and exits 1). */
export function describeOpenError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOENT') return 'its directory does not exist; create it or fix log.file.path';
  if (err.code === 'EACCES' || err.code === 'EPERM') {
    return 'permission denied; the user the service runs as needs write access to the file and its directory';
  }
  if (err.code === 'EISDIR') return 'it is a directory; log.file.path names the file to write';
  return err.message;
}

/** A batch that reaches this size is written at once rather than at the end of the turn. */
const BATCH_BYTES = 64 * 1024;

/** Every writer of this process (one per logger root), flushed by one 'exit' listener. */
const liveWriters = new Set<WeakRef<BatchedLineWriter>>();
let exitHooked = false;

function flushAllWriters(): void {
  for (const ref of liveWriters) {
    const w = ref.deref();
    if (w) w.flush();
    else liveWriters.delete(ref);
  }
}

/**
 * Lines logged within one event-loop turn leave in one write(2) at its end, not one each: under
 * load a turn carries dozens of access lines, and a write per line cost more than the line. The
 * write stays synchronous, so nothing is ever in flight: at exit (process.exit, a crash) the
 * 'exit' handler writes what the turn had left, and only SIGKILL can lose one turn's lines.
 */
export class BatchedLineWriter {
  private pending: string[] = [];
  private bytes = 0;
  private scheduled = false;

  constructor(private readonly sink: { write(data: string): unknown }) {
    if (!exitHooked) process.on('exit', flushAllWriters);
    exitHooked = true;
    liveWriters.add(new WeakRef(this));
  }

  write(line: string): boolean {
    this.pending.push(line);
    this.bytes += line.length;
    if (this.bytes >= BATCH_BYTES) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
    return true;
  }

  readonly flush = (): void => {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const data = this.pending.length === 1 ? (this.pending[0] as string) : this.pending.join('');
    this.pending = [];
    this.bytes = 0;
    this.sink.write(data);
  };
}

function createRootLogger(opts: LogOptions): Logger {
  // Opened synchronously: a path that cannot be opened throws here (ENOENT, EACCES, EISDIR).
  // sonic-boom in sync mode writes a batch whole (retrying EAGAIN on a non-blocking pipe).
  const dest = new BatchedLineWriter(pino.destination({ dest: opts.destination ?? 1, sync: true }));
  const base = null;
  if (opts.format === 'json') {
    return pino({ level: opts.level, base, redact: REDACT, timestamp: pino.stdTimeFunctions.isoTime }, dest);
  }
  // Plain: "2026-11-24T07:30:00.000Z INFO  dataplane listening address=... port=..."
  const stream = {
    write(line: string) {
      const o = JSON.parse(line) as Record<string, unknown>;
      const { time, level, msg, component, ...rest } = o;
      const fields = Object.entries(rest)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
        .join(' ');
      dest.write(
        `${time} ${String(pino.levels.labels[level as number] ?? level)
          .toUpperCase()
          .padEnd(5)} ${component} ${msg}${fields ? ` ${fields}` : ''}\n`,
      );
    },
  };
  return pino({ level: opts.level, base, redact: REDACT, timestamp: pino.stdTimeFunctions.isoTime }, stream);
}
