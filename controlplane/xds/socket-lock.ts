/**
 * One spooky-control per control.socket, even when two start in the same instant. "Nobody
 * listens on it" and the bind are two steps; between them a second instance could remove the
 * first one's fresh socket and bind its own, leaving the first serving a path that no longer
 * exists. A lock file next to the socket, created exclusively and holding the owner's pid,
 * decides. A lock whose process is gone (killed, or the pid now belongs to something that is not
 * spooky-control) is replaced.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';

export interface SocketLock {
  release(): void;
}

/** Whether `pid` is a running spooky-control (this process counts: another server in it). */
function heldBy(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // A recycled pid: after a crash and a reboot the number may name any process.
    return /spooky|controlplane/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return true; // alive but unreadable: assume it is what the lock says
  }
}

/** Takes `socketPath`.lock or throws saying who holds it. */
export function lockSocket(socketPath: string): SocketLock {
  const lock = `${socketPath}.lock`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(lock, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return {
        release: () => {
          try {
            if (readFileSync(lock, 'utf8').trim() === String(process.pid)) rmSync(lock, { force: true });
          } catch {
            // Already gone.
          }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner = 0;
    try {
      owner = Number(readFileSync(lock, 'utf8').trim());
    } catch {
      continue; // removed in between: try again
    }
    if (heldBy(owner)) throw new Error(`another spooky-control (pid ${owner}) holds ${lock}`);
    rmSync(lock, { force: true });
  }
  throw new Error(`cannot take ${lock}: another spooky-control is starting at the same time`);
}
