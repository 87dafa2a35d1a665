/**
 * The last snapshot the data plane applied, on disk, so that it can start serving when the
 * control plane is unreachable at start. It holds the private key: mode 0600.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../lib/atomic-file.js';
import { Snapshot } from '../../proto/gen/spooky/v1/control.js';

export const SNAPSHOT_CACHE_FILE = 'dataplane-snapshot.pb';

export function writeSnapshotCache(stateDir: string, snapshot: Snapshot): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o750 });
  writeFileAtomic(join(stateDir, SNAPSHOT_CACHE_FILE), Snapshot.encode(snapshot).finish(), 0o600);
}

/** The cached snapshot, null when there is none; throws when the file exists but is unusable. */
export function readSnapshotCache(stateDir: string): Snapshot | null {
  let bytes: Buffer;
  try {
    bytes = readFileSync(join(stateDir, SNAPSHOT_CACHE_FILE));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return Snapshot.decode(bytes);
}
