/**
 * The Node.js line Spooky runs on. Node 20 is out of security support (April 2026), and the
 * daemons rely on what 24 brings (`reusePort` on dgram and net, its V8), so 24 LTS is the floor:
 * the daemons refuse to start below it and `spooky doctor` fails with the fix.
 */
import { VERSION } from './version.js';

export const NODE_FLOOR_MAJOR = 24;

/** The fix an operator on an older Node is given, wherever Spooky finds one. */
export const NODE_UPGRADE_FIX =
  'install Node.js 24 LTS or newer (your distribution or nodejs.org; in a Spooky checkout, `. scripts/use-node.sh` installs the pinned Node 24 from the npm registry into .node/ and puts it first on PATH)';

/** The major version of a Node version string ("24.22.3" or "v24.22.3"); NaN when unreadable. */
export function nodeMajor(version: string): number {
  const m = /^v?(\d+)\./.exec(version);
  return m ? Number(m[1]) : Number.NaN;
}

export const isSupportedNode = (version: string = process.versions.node): boolean =>
  nodeMajor(version) >= NODE_FLOOR_MAJOR;

/** What `--version` prints: Spooky's version and the runtime under it. */
export const VERSION_LINE = `${VERSION} (Node.js ${process.version})`;

/**
 * Exits 1 with one clear sentence when this process runs on a Node below the floor. Called first
 * thing by the daemons, so that an old runtime fails at start with the fix rather than later with
 * a stack.
 */
export function exitUnlessSupportedNode(program: string): void {
  if (isSupportedNode()) return;
  process.stderr.write(
    `${program}: Spooky needs Node.js ${NODE_FLOOR_MAJOR} or newer; this is ${process.version} (${process.execPath}). Fix: ${NODE_UPGRADE_FIX}\n`,
  );
  process.exit(1);
}
