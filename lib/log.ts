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

export function createLogger(opts: LogOptions): Logger {
  const dest = pino.destination({ dest: opts.destination ?? 1, sync: true });
  const base = { component: opts.component };
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
