/**
 * Looking up a user or group by name the way setuid/setgid will (NSS through `getent`, falling
 * back to /etc/passwd and /etc/group), so a missing service account is reported before anything
 * is bound rather than after the `listening` line.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, readFileSync, statSync } from 'node:fs';

/**
 * name → id from the text of an /etc/passwd or /etc/group file (the id is the third field in
 * both); the first entry of a name wins, as with getent.
 */
export function parseAccountFile(text: string): Map<string, number> {
  const map = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    if (name && id !== undefined && /^\d+$/.test(id) && !map.has(name)) map.set(name, Number(id));
  }
  return map;
}

/** The numeric id of `name` in `database` (`passwd` or `group`), or null when there is none. */
function lookup(database: 'passwd' | 'group', name: string): number | null {
  if (/^\d+$/.test(name)) return Number(name); // setuid/setgid take numeric ids too
  let text: string;
  try {
    text = execFileSync('getent', [database, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (e) {
    // Exit 2: no such entry. Without getent at all, read the local file.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return null;
    try {
      text = readFileSync(`/etc/${database}`, 'utf8');
    } catch {
      return null;
    }
  }
  return parseAccountFile(text).get(name) ?? null;
}

/** The gid of group `name` (a name or a number), or null when there is no such group. */
export function groupId(name: string): number | null {
  return lookup('group', name);
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
