import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { groupId } from '../../lib/system-accounts.js';
import { resolveApiToken, TOKEN_FILE_NAME, tokenMatches } from './auth.js';

const isRoot = process.getuid?.() === 0;
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'spooky-auth-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('resolveApiToken', () => {
  it('generates a token under state_dir (created 0750), mode 0640, and reuses it', () => {
    const stateDir = join(dir, 'state', 'nested');
    const first = resolveApiToken({}, stateDir);
    assert.equal(first.source, 'generated');
    assert.equal(first.path, join(stateDir, TOKEN_FILE_NAME));
    assert.match(first.token, /^[A-Za-z0-9_-]{43,}$/);
    assert.equal(statSync(first.path!).mode & 0o777, 0o640);
    assert.equal(statSync(stateDir).mode & 0o777, 0o750 & ~process.umask());
    assert.equal(readFileSync(first.path!, 'utf8').trim(), first.token);
    assert.deepEqual(readdirSync(stateDir), [TOKEN_FILE_NAME], 'no temp file left behind');

    const second = resolveApiToken({}, stateDir);
    assert.deepEqual(second, { token: first.token, source: 'state_dir', path: first.path });

    const elsewhere = resolveApiToken({}, join(dir, 'other-state'));
    assert.notEqual(elsewhere.token, first.token);
  });

  it('auth_token wins over everything', () => {
    const file = join(dir, 'ignored.token');
    writeFileSync(file, 'from-file-0123456789\n');
    const r = resolveApiToken({ auth_token: 'from-config-0123456789', auth_token_file: file }, join(dir, 's1'));
    assert.deepEqual(r, { token: 'from-config-0123456789', source: 'config' });
  });

  it('auth_token_file is read and trimmed', () => {
    const file = join(dir, 'api.token');
    writeFileSync(file, '  file-token-0123456789abcdef \n\n');
    const r = resolveApiToken({ auth_token_file: file }, join(dir, 's2'));
    assert.deepEqual(r, { token: 'file-token-0123456789abcdef', source: 'file', path: file });
  });

  it('a missing auth_token_file names the file and the fix', () => {
    const file = join(dir, 'missing.token');
    assert.throws(
      () => resolveApiToken({ auth_token_file: file }, join(dir, 's3')),
      (e: Error) => e.message.includes(file) && /ENOENT/.test(e.message) && /auth_token_file/.test(e.message),
    );
  });

  it('an empty auth_token_file is an error', () => {
    const file = join(dir, 'empty.token');
    writeFileSync(file, ' \n');
    assert.throws(() => resolveApiToken({ auth_token_file: file }, join(dir, 's4')), /is empty/);
  });

  it('a token path that is a directory names the file and says what to fix', () => {
    const notFile = join(dir, 'a-directory');
    mkdirSync(notFile);
    assert.throws(
      () => resolveApiToken({ auth_token_file: notFile }, join(dir, 's7')),
      (e: Error) => e.message.includes(notFile) && /EISDIR/.test(e.message) && /not a directory/.test(e.message),
    );
    const stateDir = join(dir, 's8');
    mkdirSync(join(stateDir, TOKEN_FILE_NAME), { recursive: true });
    assert.throws(
      () => resolveApiToken({}, stateDir),
      (e: Error) => e.message.includes(join(stateDir, TOKEN_FILE_NAME)) && /EISDIR/.test(e.message),
    );
  });

  it('an unreadable token file names the file and says what to fix', { skip: isRoot && 'root reads anything' }, () => {
    const file = join(dir, 'locked.token');
    writeFileSync(file, 'locked-token-0123456789');
    chmodSync(file, 0o000);
    assert.throws(
      () => resolveApiToken({ auth_token_file: file }, join(dir, 's5')),
      (e: Error) => e.message.includes(file) && /EACCES/.test(e.message) && /chmod 0640/.test(e.message),
    );
    // Same for the state_dir token: never silently replaced by a new one.
    const stateDir = join(dir, 's6');
    mkdirSync(stateDir);
    const stateFile = join(stateDir, TOKEN_FILE_NAME);
    writeFileSync(stateFile, 'state-token-0123456789');
    chmodSync(stateFile, 0o000);
    assert.throws(
      () => resolveApiToken({}, stateDir),
      (e: Error) => e.message.includes(stateFile),
    );
  });
});

describe('resolveApiToken: the token file group', () => {
  it('gives a generated token file the configured group (security.privileges.group), not a fixed one', {
    skip: !isRoot && 'chgrp to another group needs root',
  }, () => {
    // `daemon` (gid 1 on Debian) stands for an operator-configured group other than spooky.
    const daemon = groupId('daemon');
    assert.ok(daemon !== null && daemon !== 0, 'this test needs a group named daemon');
    const byName = resolveApiToken({}, join(dir, 'group-by-name'), 'daemon');
    assert.equal(statSync(byName.path!).gid, daemon);
    const byNumber = resolveApiToken({}, join(dir, 'group-by-number'), String(daemon));
    assert.equal(statSync(byNumber.path!).gid, daemon);
  });

  it('leaves the group alone when the configured group does not exist', () => {
    const r = resolveApiToken({}, join(dir, 'group-missing'), 'no-such-group-spooky-test');
    assert.equal(statSync(r.path!).gid, process.getgid?.());
  });
});

describe('tokenMatches', () => {
  it('matches only the exact token', () => {
    const t = 'abcdefghijklmnop0123456789';
    assert.equal(tokenMatches(t, t), true);
    assert.equal(tokenMatches(t, `${t}x`), false);
    assert.equal(tokenMatches(t, t.slice(0, -1)), false);
    assert.equal(tokenMatches(t, t.toUpperCase()), false);
    assert.equal(tokenMatches(t, ''), false);
    assert.equal(tokenMatches('', ''), false, 'an empty expected token never matches');
  });
});
