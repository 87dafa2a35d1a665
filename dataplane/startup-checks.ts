/**
 * Start-time warnings about the host, each with the fix (operations.md "Process lifecycle"):
 * a small UDP receive buffer ceiling drops QUIC bursts; a low file-descriptor limit caps
 * connections. Reads /proc through an injectable root so tests need no particular host.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const RECOMMENDED_RMEM_MAX = 64 * 1024 * 1024;
export const MIN_NOFILE = 65536;

export interface HostWarning {
  check: 'rmem_max' | 'nofile';
  message: string;
}

function readNumber(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The soft "Max open files" limit of this process, from /proc/self/limits. */
function softNofile(procRoot: string): number | undefined {
  try {
    const line = readFileSync(join(procRoot, 'self', 'limits'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft === 'unlimited' ? Number.POSITIVE_INFINITY : soft === undefined ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

export function hostWarnings(procRoot = '/proc'): HostWarning[] {
  const out: HostWarning[] = [];
  const rmem = readNumber(join(procRoot, 'sys', 'net', 'core', 'rmem_max'));
  if (rmem !== undefined && rmem < RECOMMENDED_RMEM_MAX) {
    out.push({
      check: 'rmem_max',
      message: `net.core.rmem_max is ${rmem} bytes, below the recommended 67108864 (64 MiB): UDP bursts will be dropped. Fix: sysctl -w net.core.rmem_max=67108864 net.core.rmem_default=16777216, and persist it in /etc/sysctl.d/99-spooky.conf`,
    });
  }
  const nofile = softNofile(procRoot);
  if (nofile !== undefined && nofile < MIN_NOFILE) {
    out.push({
      check: 'nofile',
      message: `the open-file limit is ${nofile}, below 65536: connections will fail under load. Fix: LimitNOFILE=1048576 in the systemd unit, or "spooky soft nofile 1048576" in /etc/security/limits.d/spooky.conf`,
    });
  }
  return out;
}
