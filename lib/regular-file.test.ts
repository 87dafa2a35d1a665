import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FileRefusedError, readRegularFile, readRegularTextFile } from './regular-file.js';

const dir = mkdtempSync(join(tmpdir(), 'spooky-regular-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function refused(fn: () => unknown, code: FileRefusedError['code'], message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FileRefusedError, `a FileRefusedError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return true;
  });
}

describe('readRegularFile', () => {
  it('reads a regular file, through a symlink too', () => {
    const file = join(dir, 'cert.pem');
    writeFileSync(file, 'hello\n');
    symlinkSync(file, join(dir, 'link.pem'));
    assert.equal(readRegularTextFile(file, 1024), 'hello\n');
    assert.equal(readRegularTextFile(join(dir, 'link.pem'), 1024), 'hello\n');
    assert.equal(readRegularFile(join(dir, 'cert.pem'), 6).length, 6, 'exactly the cap is fine');
  });

  it('reads an empty file and a file of many chunks', () => {
    writeFileSync(join(dir, 'empty'), '');
    assert.equal(readRegularFile(join(dir, 'empty'), 10).length, 0);
    const big = Buffer.alloc(200_000, 'x');
    writeFileSync(join(dir, 'big'), big);
    assert.ok(readRegularFile(join(dir, 'big'), 200_000).equals(big));
  });

  it('refuses a FIFO at once, with no writer (where readFileSync blocks forever)', () => {
    const fifo = join(dir, 'fifo.pem');
    execFileSync('mkfifo', [fifo]);
    refused(() => readRegularFile(fifo, 1024), 'ENOTREGULAR', /fifo\.pem is a FIFO \(named pipe\), not a regular file/);
  });

  it('refuses /dev/zero and /dev/null (character devices)', () => {
    refused(() => readRegularFile('/dev/zero', 1024), 'ENOTREGULAR', /\/dev\/zero is a character device/);
    refused(() => readRegularFile('/dev/null', 1024), 'ENOTREGULAR', /character device/);
  });

  it('refuses a directory', () => {
    mkdirSync(join(dir, 'adir'));
    refused(() => readRegularFile(join(dir, 'adir'), 1024), 'EISDIR', /adir is a directory, not a file/);
  });

  it('refuses a file over the cap by its size', () => {
    writeFileSync(join(dir, 'large'), Buffer.alloc(2 * 1024 * 1024));
    refused(() => readRegularFile(join(dir, 'large'), 1024 * 1024), 'ETOOLARGE', /is 2 MiB, over the 1 MiB limit/);
    refused(() => readRegularFile(join(dir, 'cert.pem'), 5), 'ETOOLARGE', /over the 5 bytes limit/);
  });

  it('stops one byte past the cap when the size is not known (procfs reports 0)', () => {
    // /proc/self/maps is a regular file of size 0 whose content is well over 64 bytes.
    refused(() => readRegularFile('/proc/self/maps', 64), 'ETOOLARGE', /more than 64 bytes/);
  });

  it('passes an open error (ENOENT) through as it is', () => {
    assert.throws(
      () => readRegularFile(join(dir, 'missing'), 10),
      (e: NodeJS.ErrnoException) => e.code === 'ENOENT',
    );
  });
});
