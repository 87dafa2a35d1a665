/**
 * Dropping root after the listeners are bound (security.privileges): supplementary groups
 * cleared, then the group, then the user — in that order, since after setuid the process may no
 * longer change its groups — and a check that root cannot be regained.
 */

export interface Dropped {
  uid: number;
  gid: number;
}

/** Throws an Error whose message says what failed and what to do. */
export function dropPrivileges(user: string, group: string): Dropped {
  if (process.getuid?.() !== 0) throw new Error('dropping privileges needs a process started as root');
  try {
    process.setgroups?.([]);
    process.setgid?.(group);
  } catch (e) {
    throw new Error(
      `cannot switch to group ${group}: ${(e as Error).message}; create it (groupadd --system ${group}) or change security.privileges.group`,
    );
  }
  try {
    process.setuid?.(user);
  } catch (e) {
    throw new Error(
      `cannot switch to user ${user}: ${(e as Error).message}; create it (useradd --system ${user}) or change security.privileges.user`,
    );
  }
  const uid = process.getuid?.() ?? -1;
  const gid = process.getgid?.() ?? -1;
  if (uid === 0 || (process.geteuid?.() ?? 0) === 0 || gid === 0)
    throw new Error(`still root after switching to ${user}:${group}`);
  // The saved set-user-id must not be root either: setuid(0) has to fail now.
  let regained = false;
  try {
    process.setuid?.(0);
    regained = true;
  } catch {
    // EPERM: as it must be.
  }
  if (regained) throw new Error('root could be regained after dropping privileges');
  return { uid, gid };
}
