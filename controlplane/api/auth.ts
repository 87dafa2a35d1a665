/**
 * The control API's bearer token: where it comes from (config, a file, or one generated under the
 * state directory) and a constant-time comparison.
 */

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../../lib/atomic-file.js';
import { FileRefusedError, PEM_MAX_BYTES, readRegularTextFile } from '../../lib/regular-file.js';
import { groupId } from '../../lib/system-accounts.js';

export const TOKEN_FILE_NAME = 'control.token';

export type TokenSource = 'config' | 'file' | 'generated' | 'state_dir';

export interface ResolvedToken {
  token: string;
  source: TokenSource;
  /** The file the token was read from or written to (not set for `config`). */
  path?: string;
}

const TOKEN_MODE = 0o640;
const STATE_DIR_MODE = 0o750;

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? String(err);
}

function uid(): string {
  return process.getuid ? ` (uid ${process.getuid()})` : '';
}

/** Reads and trims a token file; undefined when it does not exist and `missingOk`. */
function readTokenFile(path: string, what: string, missingOk: boolean): string | undefined {
  let text: string;
  try {
    text = readRegularTextFile(path, PEM_MAX_BYTES);
  } catch (err) {
    // A directory keeps the EISDIR wording below; a FIFO, a device or a huge file is named here.
    if (err instanceof FileRefusedError && err.code !== 'EISDIR') {
      throw new Error(`cannot use the control API token file: ${err.message}`);
    }
    const code = errCode(err);
    if (code === 'ENOENT' && missingOk) return undefined;
    const fix =
      code === 'ENOENT'
        ? `create it or fix ${what}`
        : code === 'EACCES' || code === 'EPERM'
          ? `make it readable by the user running spooky-control${uid()}, e.g. chmod 0640 and chgrp spooky`
          : code === 'EISDIR'
            ? `point ${what} at a file, not a directory`
            : 'check the file';
    throw new Error(`cannot read the control API token file ${path} (${code}): ${fix}`);
  }
  const token = text.trim();
  if (token === '' && !missingOk) {
    throw new Error(`the control API token file ${path} is empty: write the token into it or fix ${what}`);
  }
  return token === '' ? undefined : token;
}

/**
 * Writes `token` to `path` atomically: mode 0640, and when we are root, owned by `group` (the
 * configured security.privileges.group) if it exists, so the operators in it can read it.
 */
function writeTokenFile(dir: string, path: string, token: string, group: string | undefined): void {
  const gid = group !== undefined && process.getuid?.() === 0 ? (groupId(group) ?? undefined) : undefined;
  try {
    writeFileAtomic(path, `${token}\n`, TOKEN_MODE, gid);
  } catch (err) {
    throw new Error(
      `cannot write the control API token file ${path} (${errCode(err)}): make ${dir} writable by the user running spooky-control${uid()} or set observability.control_api.auth_token_file`,
    );
  }
}

/**
 * The API token: control_api.auth_token, else the contents of auth_token_file (trimmed), else the
 * token in `<state_dir>/control.token`, generated (32 random bytes, base64url) when absent.
 */
export function resolveApiToken(
  api: { auth_token?: string; auth_token_file?: string },
  stateDir: string,
  /** The group a generated token file belongs to (security.privileges.group); none when unset. */
  group?: string,
): ResolvedToken {
  if (api.auth_token !== undefined && api.auth_token !== '') return { token: api.auth_token, source: 'config' };
  if (api.auth_token_file !== undefined && api.auth_token_file !== '') {
    const path = resolve(api.auth_token_file);
    const token = readTokenFile(path, 'observability.control_api.auth_token_file', false)!;
    return { token, source: 'file', path };
  }
  const dir = resolve(stateDir);
  try {
    mkdirSync(dir, { recursive: true, mode: STATE_DIR_MODE });
  } catch (err) {
    throw new Error(
      `cannot create the state directory ${dir} (${errCode(err)}): create it (mode 0750) for the user running spooky-control${uid()} or fix control.state_dir`,
    );
  }
  const path = join(dir, TOKEN_FILE_NAME);
  const existing = readTokenFile(path, 'control.state_dir', true);
  if (existing !== undefined) return { token: existing, source: 'state_dir', path };
  const token = randomBytes(32).toString('base64url');
  writeTokenFile(dir, path, token, group);
  return { token, source: 'generated', path };
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time: compares SHA-256 digests, so neither content nor length differences leak timing. */
export function tokenMatches(expected: string, presented: string): boolean {
  const ok = timingSafeEqual(digest(expected), digest(presented));
  return ok && expected !== '';
}
