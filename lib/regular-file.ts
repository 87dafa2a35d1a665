/**
 * Reading the files a config names (certificates, keys, CA bundles, token files, the config itself)
 * without letting the path decide what the process does: only a regular file under a size cap is
 * read. A FIFO would block the event loop forever (open and read both wait for a writer), a
 * device such as /dev/zero never ends, and /proc files report size 0 but can be large.
 *
 * The file is opened with O_NONBLOCK, so opening a FIFO (or anything swapped in for the file
 * after a check) returns at once; fstat on that descriptor then decides, race-free, whether it is
 * a regular file. Reading stops one byte past the cap whatever the file's reported size.
 * Reads stay synchronous: a regular file of at most a few MiB is read in well under a millisecond
 * from a local disk, and every caller (config loading, validation) is synchronous.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/** Certificates, keys, CA bundles and token files (a long chain with comments stays far below). */
export const PEM_MAX_BYTES = 1024 * 1024;
/** The YAML config: as much as the control API accepts in one request body. */
export const CONFIG_MAX_BYTES = 4 * 1024 * 1024;

const CHUNK = 64 * 1024;

/** A file refused for what it is (a directory, not a regular file) or its size; `code` says which. */
export class FileRefusedError extends Error {
  constructor(
    readonly code: 'EISDIR' | 'ENOTREGULAR' | 'ETOOLARGE',
    message: string,
  ) {
    super(message);
    this.name = 'FileRefusedError';
  }
}

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 * 1024) return `${(n / (1024 * 1024 * 1024)).toFixed(1)} GiB`;
  if (n >= 1024 * 1024) return `${Math.round((n / (1024 * 1024)) * 10) / 10} MiB`;
  if (n >= 1024) return `${Math.round((n / 1024) * 10) / 10} KiB`;
  return `${n} bytes`;
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * The bytes of the regular file at `path`, at most `maxBytes` of them. Throws FileRefusedError
 * for anything else (a directory, FIFO, device, socket; a larger file), and the usual
 * ErrnoException (ENOENT, EACCES, ...) when it cannot be opened.
 */
export function readRegularFile(path: string, maxBytes: number): Buffer {
  // O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever; O_NOCTTY: a
  // terminal device never becomes the process's controlling terminal.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) {
      throw new FileRefusedError(
        'EISDIR',
        `${path} is a directory, not a file; point the setting at the file inside it`,
      );
    }
    if (!st.isFile()) {
      throw new FileRefusedError(
        'ENOTREGULAR',
        `${path} is ${kindOf(st)}, not a regular file; Spooky reads only regular files here`,
      );
    }
    const tooLarge = (size: string) =>
      new FileRefusedError(
        'ETOOLARGE',
        `${path} is ${size}, over the ${formatBytes(maxBytes)} limit for this file; point the setting at the right file`,
      );
    if (st.size > maxBytes) throw tooLarge(formatBytes(st.size));
    const chunks: Buffer[] = [];
    let total = 0;
    // The reported size may be 0 (procfs) or stale (a file being appended to): read until EOF.
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(CHUNK, maxBytes + 1 - total));
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
      total += n;
      if (total > maxBytes) throw tooLarge(`more than ${formatBytes(maxBytes)}`);
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

/** readRegularFile as UTF-8 text. */
export function readRegularTextFile(path: string, maxBytes: number): string {
  return readRegularFile(path, maxBytes).toString('utf8');
}
