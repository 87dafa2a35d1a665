/**
 * spooky-control's local listener, control.socket: its directory must exist (said clearly when it
 * does not), a socket another control plane serves is never taken over (a lock file decides
 * between two that start together, and a live listener is checked too), a file left by a killed
 * predecessor is replaced, and the socket is opened only to the data planes' service group.
 */
import { chmodSync, chownSync, type Stats as FileStats, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ServiceAccount } from '../../lib/system-accounts.js';
import { lockSocket, type SocketLock } from './socket-lock.js';

/** Whether `account` (no supplementary groups: the data plane clears them) may search directory `st`. */
export function searchable(st: Pick<FileStats, 'uid' | 'gid' | 'mode'>, account: ServiceAccount): boolean {
  if (account.uid === 0) return true;
  if (st.uid === account.uid) return (st.mode & 0o100) !== 0;
  if (st.gid === account.gid) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

/** What a data plane needs to reach the socket: its directory must exist (say so clearly). */
function socketDirectory(socketPath: string): { dir: string; st: FileStats } {
  const dir = dirname(socketPath);
  let st: FileStats;
  try {
    st = statSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error(
        `its directory ${dir} does not exist; create it (systemd: RuntimeDirectory=spooky; deploy/install.sh does) or set control.socket to a path in an existing directory`,
      );
    throw e;
  }
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  return { dir, st };
}

/**
 * Whether the unix socket at `path` may be replaced: absent, or a file nothing listens on
 * (ECONNREFUSED: left by a killed predecessor). Anything else (a server that accepts, one that
 * does not answer within a second, a socket we may not even try) is someone's: null means free,
 * a string says whose.
 */
function socketInUse(path: string): Promise<string | null> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    const done = (why: string | null) => {
      clearTimeout(timer);
      s.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done('something holds it and does not answer'), 1000);
    s.once('connect', () => done('another spooky-control listens on it'));
    s.once('error', (e: NodeJS.ErrnoException) =>
      done(e.code === 'ECONNREFUSED' || e.code === 'ENOENT' ? null : `it cannot be checked (${e.code ?? e.message})`),
    );
  });
}

/**
 * Makes `socketPath` this process's before anything else is touched (state_dir included): its
 * directory exists, no other spooky-control holds its lock or listens on it. Resolves with the
 * lock (release at stop).
 */
export async function claimControlSocket(socketPath: string): Promise<SocketLock> {
  socketDirectory(socketPath);
  const inUse = (why: string) =>
    new Error(
      `${socketPath} is in use: ${why}; give this instance its own control.socket (and its data planes the same path)`,
    );
  // A socket another control plane still serves is never taken over: its data planes would
  // come here on their next reconnect (two instances on one host with the default path).
  let lock: SocketLock;
  try {
    lock = lockSocket(socketPath);
  } catch (e) {
    throw inUse((e as Error).message);
  }
  try {
    // An instance from before the lock file, or one whose lock was removed by hand.
    const listener = await socketInUse(socketPath);
    if (listener !== null) throw inUse(listener);
    return lock;
  } catch (e) {
    lock.release();
    throw e;
  }
}

/** Binds `server` on the claimed unix socket `socketPath` (see claimControlSocket). */
export async function bindControlSocket(
  server: grpc.Server,
  socketPath: string,
  log: Logger,
  dataplaneAccount?: ServiceAccount,
): Promise<void> {
  const { dir, st } = socketDirectory(socketPath);
  // A socket file left by a killed predecessor would make bind fail with EADDRINUSE.
  rmSync(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    );
  });
  // Data planes run as the same service group; nobody else may push snapshots at them.
  chmodSync(socketPath, 0o660);
  if (dataplaneAccount) openTo(socketPath, dir, st, dataplaneAccount, log);
}

/** Makes the socket usable by a data plane that dropped to `account` (we run as root). */
function openTo(socketPath: string, dir: string, st: FileStats, account: ServiceAccount, log: Logger): void {
  chownSync(socketPath, account.uid, account.gid);
  if (!searchable(st, account)) {
    // Only a directory of our own, never a shared sticky one like /tmp, gets its group changed.
    if (st.uid !== process.getuid?.() || (st.mode & 0o1000) !== 0)
      throw new Error(
        `the data plane's user (uid ${account.uid}, gid ${account.gid}) cannot reach ${dir} (mode ${(st.mode & 0o7777).toString(8)}, owner ${st.uid}:${st.gid}); give its group search permission or move control.socket`,
      );
    chownSync(dir, -1, account.gid);
    chmodSync(dir, (st.mode & 0o7777) | 0o010);
    log.info({ dir, gid: account.gid }, 'control.socket directory opened to the data plane group');
  }
  for (let up = dirname(dir); ; up = dirname(up)) {
    if (!searchable(statSync(up), account))
      throw new Error(`the data plane's user (uid ${account.uid}) cannot search ${up}; move control.socket`);
    if (dirname(up) === up) break;
  }
}
