/**
 * Looking up a user or group by name the way setuid/setgid will (NSS through `getent`, falling
 * back to /etc/passwd and /etc/group), so a missing service account is reported before anything
 * is bound rather than after the `listening` line.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, readFileSync, statSync } from 'node:fs';

/** The numeric id of `name` in `database` (`passwd` or `group`), or null when there is none. */
function lookup(database: 'passwd' | 'group', name: string): number | null {
  if (/^\d+$/.test(name)) return Number(name); // setuid/setgid take numeric ids too
  let line: string | undefined;
  try {
    line = execFileSync('getent', [database, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (e) {
    // Exit 2: no such entry. Without getent at all, read the local file.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return null;
    try {
      line = readFileSync(`/etc/${database}`, 'utf8')
        .split('\n')
        .find((l) => l.split(':')[0] === name);
    } catch {
      return null;
    }
  }
  const id = Number(line?.split(':')[2]);
  return line !== undefined && Number.isSafeInteger(id) ? id : null;
}

export interface ServiceAccount {
  uid: number;
  gid: number;
}

/** Resolves `security.privileges` user and group; throws with what to do when one is missing. */
export function resolveServiceAccount(user: string, group: string): ServiceAccount {
  const uid = lookup('passwd', user);
  if (uid === null)
    throw new Error(
      `user ${user} does not exist; create it (useradd --system ${user}) or change security.privileges.user`,
    );
  const gid = lookup('group', group);
  if (gid === null)
    throw new Error(
      `group ${group} does not exist; create it (groupadd --system ${group}) or change security.privileges.group`,
    );
  return { uid, gid };
}

/**
 * Gives group `gid` read, write and search access to `dir`, a directory this process owns (a
 * root-started spooky-control sharing its state_dir with the data plane it runs beside). Returns
 * true, or why it did not: a directory of someone else's, or a shared sticky one, is left alone.
 */
export function shareDirectoryWithGroup(dir: string, gid: number): true | string {
  try {
    const st = statSync(dir);
    if (st.gid === gid && (st.mode & 0o070) === 0o070) return true;
    if (st.uid !== process.getuid?.()) return `owned by uid ${st.uid}, not by this process`;
    if ((st.mode & 0o1000) !== 0) return 'a shared sticky directory';
    chownSync(dir, -1, gid);
    chmodSync(dir, (st.mode & 0o7777) | 0o070);
    return true;
  } catch (e) {
    return (e as Error).message;
  }
}
