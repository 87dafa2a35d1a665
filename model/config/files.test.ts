import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  checkCaBundle,
  checkCertificatePair,
  checkReadableFile,
  checkWritableFilePath,
  type FileCheckIssue,
  resolveConfigPath,
  type TlsFilesRef,
} from './files.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const CERT_PATH = ['listen', 'tls', 'cert'];
const KEY_PATH = ['listen', 'tls', 'key'];
const CA_PATH = ['upstream', 'api', 'tls', 'ca'];

let dir: string;

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

// EC keys keep generation fast; -nodes leaves the key unencrypted.
function selfSigned(name: string, cn: string): void {
  openssl(
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
    ...['-keyout', `${name}.key`, '-out', `${name}.pem`, '-subj', `/CN=${cn}`, '-days', '30'],
  );
}

function issued(name: string, cn: string, issuer: string, ca: boolean): void {
  openssl(
    ...['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
    ...['-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`],
  );
  writeFileSync(join(dir, `${name}.ext`), ca ? 'basicConstraints=critical,CA:TRUE\n' : 'basicConstraints=CA:FALSE\n');
  openssl(
    ...['x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-set_serial', '7'],
    ...['-days', '30', '-extfile', `${name}.ext`, '-out', `${name}.pem`],
  );
}

function write(name: string, text: string): string {
  writeFileSync(join(dir, name), text);
  return name;
}

function read(name: string): string {
  return readFileSync(join(dir, name), 'utf8');
}

function ref(file: string, path: string[]): TlsFilesRef {
  return { file: join(dir, file), path };
}

function pair(cert: string, key: string, now?: Date): FileCheckIssue[] {
  return checkCertificatePair(ref(cert, CERT_PATH), ref(key, KEY_PATH), dir, now);
}

function validTo(name: string): Date {
  return new Date(new X509Certificate(read(name)).validTo);
}

function only(issues: FileCheckIssue[], severity: FileCheckIssue['severity'], path: string[], pattern: RegExp): void {
  assert.equal(issues.length, 1, JSON.stringify(issues, null, 2));
  assert.equal(issues[0].severity, severity);
  assert.deepEqual(issues[0].path, path);
  assert.match(issues[0].message, pattern);
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'spooky-files-'));
  selfSigned('server', 'server.test');
  selfSigned('other', 'other.test');
  selfSigned('root', 'Test Root CA');
  issued('inter', 'Test Intermediate CA', 'root', true);
  issued('leaf', 'leaf.test', 'inter', false);
  write('chain-ok.pem', read('leaf.pem') + read('inter.pem'));
  write('chain-bad.pem', read('inter.pem') + read('leaf.pem'));
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('resolveConfigPath', () => {
  it('resolves relative paths against the config directory and keeps absolute ones', () => {
    assert.equal(resolveConfigPath('certs/a.pem', '/etc/spooky'), '/etc/spooky/certs/a.pem');
    assert.equal(resolveConfigPath('/srv/a.pem', '/etc/spooky'), '/srv/a.pem');
  });
});

describe('checkCertificatePair', () => {
  it('accepts a matching self-signed certificate and key', () => {
    assert.deepEqual(pair('server.pem', 'server.key'), []);
  });

  it('resolves relative file names against baseDir', () => {
    const issues = checkCertificatePair(
      { file: 'server.pem', path: CERT_PATH },
      { file: 'server.key', path: KEY_PATH },
      dir,
    );
    assert.deepEqual(issues, []);
  });

  it('reports a missing file with its absolute path on the key that names it', () => {
    const issues = checkCertificatePair({ file: 'nope.pem', path: CERT_PATH }, ref('server.key', KEY_PATH), dir);
    only(issues, 'error', CERT_PATH, new RegExp(`no such file \\(${join(dir, 'nope.pem')}\\)`));
  });

  it('reports a directory given as the certificate', () => {
    mkdirSync(join(dir, 'adir'), { recursive: true });
    only(pair('adir', 'server.key'), 'error', CERT_PATH, /is a directory/);
  });

  it('reports a key that belongs to another certificate on the key path', () => {
    only(pair('server.pem', 'other.key'), 'error', KEY_PATH, /does not match the certificate in .*server\.pem/);
  });

  it('accepts a chain written leaf first, then the intermediate', () => {
    assert.deepEqual(pair('chain-ok.pem', 'leaf.key'), []);
  });

  it('reports a chain written intermediate first, once', () => {
    only(pair('chain-bad.pem', 'leaf.key'), 'error', CERT_PATH, /out of order.*leaf certificate first/);
  });

  it('rejects a passphrase-protected key and says how to decrypt it', () => {
    openssl('pkey', '-in', 'server.key', '-aes256', '-passout', 'pass:secret', '-out', 'server-enc.key');
    assert.match(read('server-enc.key'), /ENCRYPTED/);
    only(pair('server.pem', 'server-enc.key'), 'error', KEY_PATH, /passphrase-protected.*openssl pkey/);
  });

  it('rejects a traditional encrypted key (Proc-Type header)', () => {
    const text =
      '-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n-----END EC PRIVATE KEY-----\n';
    only(pair('server.pem', write('trad-enc.key', text)), 'error', KEY_PATH, /passphrase-protected/);
  });

  it('says so when the key file holds a certificate', () => {
    only(pair('server.pem', 'server.pem'), 'error', KEY_PATH, /contains a certificate, not a private key/);
  });

  it('says so when cert and key are swapped', () => {
    const issues = pair('server.key', 'server.pem');
    assert.equal(issues.length, 2, JSON.stringify(issues));
    assert.deepEqual(issues[0].path, CERT_PATH);
    assert.match(issues[0].message, /look swapped/);
    assert.deepEqual(issues[1].path, KEY_PATH);
  });

  it('reports garbage in both files', () => {
    const garbage = write('garbage.txt', 'hello, not a certificate\n');
    const issues = pair(garbage, garbage);
    assert.equal(issues.length, 2, JSON.stringify(issues));
    assert.deepEqual(issues[0].path, CERT_PATH);
    assert.match(issues[0].message, /no PEM certificate found; expected -----BEGIN CERTIFICATE-----/);
    assert.deepEqual(issues[1].path, KEY_PATH);
    assert.match(issues[1].message, /no PEM private key found/);
  });

  it('reports a corrupt certificate block and a corrupt key block', () => {
    const cert = write('corrupt.pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    const key = write('corrupt.key', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    const issues = pair(cert, key);
    assert.equal(issues.length, 2, JSON.stringify(issues));
    assert.match(issues[0].message, /certificate #1 is not a valid X\.509 certificate/);
    assert.match(issues[1].message, /not a valid private key.*openssl pkey/);
  });

  it('reports an expired certificate as an error', () => {
    const now = new Date(validTo('server.pem').getTime() + DAY_MS);
    only(
      pair('server.pem', 'server.key', now),
      'error',
      CERT_PATH,
      /certificate server\.test .*expired on \d{4}-\d\d-\d\dT.*; renew it/,
    );
  });

  it('warns about a certificate expiring within 14 days', () => {
    const now = new Date(validTo('server.pem').getTime() - 5 * DAY_MS);
    only(pair('server.pem', 'server.key', now), 'warning', CERT_PATH, /expires on .* \(in 5 days\)/);
  });

  it('says nothing about a certificate expiring in 20 days', () => {
    const now = new Date(validTo('server.pem').getTime() - 20 * DAY_MS);
    assert.deepEqual(pair('server.pem', 'server.key', now), []);
  });

  it('reports a certificate that is not yet valid', () => {
    only(pair('server.pem', 'server.key', new Date('2000-01-01T00:00:00Z')), 'error', CERT_PATH, /not valid until/);
  });

  it('checks expiry of every certificate in the chain', () => {
    const now = new Date(validTo('chain-ok.pem').getTime() + DAY_MS);
    const issues = pair('chain-ok.pem', 'leaf.key', now);
    assert.deepEqual(
      issues.map((i) => i.message.match(/certificate (.*?) in/)?.[1]),
      ['leaf.test', 'Test Intermediate CA'],
    );
  });

  it('never throws, even for a path Node refuses', () => {
    const issues = checkCertificatePair({ file: 'a\0b', path: CERT_PATH }, { file: 'c\0d', path: KEY_PATH }, dir);
    assert.equal(issues.length, 2);
    assert.ok(issues.every((i) => i.severity === 'error'));
  });
});

describe('checkCaBundle', () => {
  it('accepts a bundle of two certificates', () => {
    const bundle = write('bundle.pem', read('root.pem') + read('other.pem'));
    assert.deepEqual(checkCaBundle(ref(bundle, CA_PATH), dir), []);
  });

  it('rejects an empty bundle', () => {
    only(checkCaBundle(ref(write('empty.pem', ''), CA_PATH), dir), 'error', CA_PATH, /no PEM certificate found/);
  });

  it('reports an expired CA certificate', () => {
    const now = new Date(validTo('root.pem').getTime() + DAY_MS);
    only(checkCaBundle(ref('root.pem', CA_PATH), dir, now), 'error', CA_PATH, /Test Root CA .*expired/);
  });
});

describe('checkReadableFile', () => {
  const TOKEN_PATH = ['control', 'auth', 'token_file'];

  it('accepts an existing file', () => {
    assert.deepEqual(checkReadableFile({ file: write('token', 's3cret\n'), path: TOKEN_PATH }, dir), []);
  });

  it('reports a missing file', () => {
    only(checkReadableFile({ file: 'missing-token', path: TOKEN_PATH }, dir), 'error', TOKEN_PATH, /no such file/);
  });

  // root reads anything, so the permission check only means something for other users.
  it('reports an unreadable file', { skip: process.getuid?.() === 0 }, () => {
    const file = write('locked-token', 'x');
    chmodSync(join(dir, file), 0o000);
    only(checkReadableFile({ file, path: TOKEN_PATH }, dir), 'error', TOKEN_PATH, /permission denied.*read access/);
  });
});

describe('checkWritableFilePath', () => {
  const LOG_PATH = ['log', 'file', 'path'];

  it('accepts a new file in an existing directory, and an existing file', () => {
    assert.deepEqual(checkWritableFilePath({ file: 'new.log', path: LOG_PATH }, dir), []);
    assert.deepEqual(checkWritableFilePath({ file: write('old.log', ''), path: LOG_PATH }, dir), []);
  });

  it('refuses a file in a missing directory, naming the directory', () => {
    const missing = join(dir, 'no-such-dir');
    only(
      checkWritableFilePath({ file: 'no-such-dir/spooky.log', path: LOG_PATH }, dir),
      'error',
      LOG_PATH,
      new RegExp(`directory ${missing} does not exist; create it`),
    );
  });

  it('refuses a path under a file and a path that is a directory', () => {
    const file = write('plain-file', '');
    only(
      checkWritableFilePath({ file: `${file}/x.log`, path: LOG_PATH }, dir),
      'error',
      LOG_PATH,
      /is not a directory/,
    );
    mkdirSync(join(dir, 'logs-dir'), { recursive: true });
    only(checkWritableFilePath({ file: 'logs-dir', path: LOG_PATH }, dir), 'error', LOG_PATH, /is a directory/);
  });
});
