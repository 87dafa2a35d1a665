/**
 * Crash-safe file replacement: write a temporary file next to the target, fsync it, rename it
 * over the target, fsync the directory. A reader sees the old file or the new one, never half.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fchmodSync,
  fchownSync,
  fsyncSync,
  lstatSync,
  openSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o640, gid?: number): void {
  stageFile(path, data, mode, gid).commit();
}

export interface StagedFile {
  /** Renames the written copy over the target (and syncs the directory). */
  commit(): void;
  /** Removes the written copy; the target is untouched. */
  abort(): void;
}

/**
 * Writes and syncs the new content next to `path` without replacing it yet, so a caller can find
 * out that the disk takes the write (full, read-only, a directory in the way) before acting on it.
 */
export function stageFile(path: string, data: string | Uint8Array, mode = 0o640, gid?: number): StagedFile {
  try {
    if (lstatSync(path).isDirectory()) throw new Error(`${path} is a directory`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fd = openSync(tmp, 'wx', mode);
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off);
      fchmodSync(fd, mode); // the umask may have narrowed the mode given to open
      if (gid !== undefined) {
        try {
          fchownSync(fd, -1, gid);
        } catch {
          // Best effort: the file stays in the writer's group.
        }
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  return {
    commit() {
      try {
        renameSync(tmp, path);
      } catch (e) {
        rmSync(tmp, { force: true });
        throw e;
      }
      syncDir(dirname(path));
    },
    abort() {
      rmSync(tmp, { force: true });
    },
  };
}

function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Directory fsync is not supported everywhere; the rename already happened.
  }
}
