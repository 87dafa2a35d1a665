/**
 * One spooky-control per control.socket, even when two start in the same instant. "Nobody
 * listens on it" and the bind are two steps; between them a second instance could remove the
 * first one's fresh socket and bind its own, leaving the first serving a path that no longer
 * exists. A lock file next to the socket decides. It names its owner by pid, the process's start
 * time and the boot, so a lock left by a process that is gone is recognised as such even when
 * its pid is in use again (PID 1 of a restarted container, a reboot).
 */
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

export interface SocketLock {
  release(): void;
}

/** `pid starttime bootid`: the same three again only for the same process. */
function identityOf(pid: number): string | null {
  try {
    // Field 22 of /proc/PID/stat (after the parenthesised command, which may hold spaces).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return `${pid} ${start} ${boot}`;
  } catch {
    return null; // no such process
  }
}

/**
 * Whether the process a lock names is still the one that wrote it: alive, and started when it
 * did in this boot (a reused pid is another process). Spooky runs on Linux: /proc is there.
 */
function alive(owner: string): boolean {
  const pid = Number(owner.split(' ')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  return identityOf(pid) === owner;
}

/** Takes `socketPath`.lock or throws saying who holds it. */
export function lockSocket(socketPath: string): SocketLock {
  const lock = `${socketPath}.lock`;
  const mine = identityOf(process.pid) ?? `${process.pid}`;
  // Written aside and linked into place: the lock never exists half-written.
  const draft = `${lock}.${process.pid}.${Date.now()}`;
  writeFileSync(draft, `${mine}\n`, { mode: 0o644 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(draft, lock);
        return {
          release: () => {
            try {
              if (readFileSync(lock, 'utf8').trim() === mine) rmSync(lock, { force: true });
            } catch {
              // Already gone.
            }
          },
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      let owner: string;
      try {
        owner = readFileSync(lock, 'utf8').trim();
      } catch {
        continue; // removed in between: try again
      }
      if (alive(owner)) throw new Error(`another spooky-control (pid ${owner.split(' ')[0]}) holds ${lock}`);
      // Stale. Moved aside (atomic) and checked: if what was moved is not what was judged, another
      // instance took the lock in between, and it is put back.
      const aside = `${lock}.stale.${process.pid}.${Date.now()}`;
      try {
        renameSync(lock, aside);
      } catch {
        continue;
      }
      if (readFileSync(aside, 'utf8').trim() !== owner) {
        try {
          linkSync(aside, lock);
        } finally {
          rmSync(aside, { force: true });
        }
        throw new Error(`another spooky-control is starting at the same time and holds ${lock}`);
      }
      rmSync(aside, { force: true });
    }
    throw new Error(`cannot take ${lock}: another spooky-control is starting at the same time`);
  } finally {
    rmSync(draft, { force: true });
  }
}
