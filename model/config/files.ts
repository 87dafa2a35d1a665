// Checks the files a config points at (TLS certificates, keys, CA bundles, token files) so that
// `spooky check` can say what is wrong with them before the data plane fails on them at startup.
// Every message names the file and ends with what the operator should do about it.

import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { FileRefusedError, PEM_MAX_BYTES, readRegularTextFile } from '../../lib/regular-file.js';

export interface FileCheckIssue {
  /** YAML path segments of the config key that names the file, e.g. ['listen','tls','cert']. */
  path: Array<string | number>;
  severity: 'error' | 'warning';
  message: string;
}

export interface TlsFilesRef {
  path: Array<string | number>;
  file: string;
}

const BEGIN_CERT = '-----BEGIN CERTIFICATE-----';
const END_CERT = '-----END CERTIFICATE-----';
// PKCS#8 and the traditional RSA/EC forms; the optional group keeps EC PARAMETERS blocks out.
const PRIVATE_KEY_BLOCK = /-----BEGIN ((?:RSA |EC )?PRIVATE KEY)-----[\s\S]*?-----END \1-----/;
const DAY_MS = 24 * 60 * 60 * 1000;
const EXPIRY_WARNING_DAYS = 14;

type Report = (severity: FileCheckIssue['severity'], message: string) => void;

/** Resolves `file` against `baseDir` (the config file's directory) when relative. */
export function resolveConfigPath(file: string, baseDir: string): string {
  return resolve(baseDir, file);
}

function reporter(issues: FileCheckIssue[], path: Array<string | number>): Report {
  return (severity, message) => issues.push({ path: [...path], severity, message });
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// Runs a check so that a bug or an odd file system error becomes an issue instead of an exception.
function guarded(ref: TlsFilesRef, issues: FileCheckIssue[], check: () => void): FileCheckIssue[] {
  try {
    check();
  } catch (err) {
    issues.push({
      path: [...ref.path],
      severity: 'error',
      message: `${ref.file}: unexpected error while checking the file (${describeError(err)}); check that it is a readable PEM file`,
    });
  }
  return issues;
}

/** Reads the file as text, reporting why it cannot be read; undefined when it cannot. */
function readText(ref: TlsFilesRef, baseDir: string, label: string, report: Report): string | undefined {
  const abs = resolveConfigPath(ref.file, baseDir);
  const where = `${label} ${ref.file}`;
  try {
    return readRegularTextFile(abs, PEM_MAX_BYTES);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (err instanceof FileRefusedError) {
      // A FIFO, a device or a huge file: refused before reading (see lib/regular-file.ts).
      report('error', `${where}: ${err.message}`);
    } else if (code === 'ENOENT' || code === 'ENOTDIR') {
      report(
        'error',
        `${where}: no such file (${abs}); fix the path (relative paths are resolved against the config file's directory)`,
      );
    } else if (code === 'EACCES' || code === 'EPERM') {
      report(
        'error',
        `${where}: permission denied reading ${abs}; the user the Spooky service runs as needs read access to it (and search access to its directories)`,
      );
    } else {
      report(
        'error',
        `${where}: cannot read ${abs} (${describeError(err)}); check the path and that it is a regular file`,
      );
    }
    return undefined;
  }
}

/** Each BEGIN CERTIFICATE block; a block with no END line is kept so that parsing reports it. */
function splitPemCertificates(text: string): string[] {
  return text
    .split(BEGIN_CERT)
    .slice(1)
    .map((rest) => {
      const end = rest.indexOf(END_CERT);
      return BEGIN_CERT + (end === -1 ? rest : rest.slice(0, end + END_CERT.length));
    });
}

function certName(cert: X509Certificate): string {
  const cn = /^CN=(.*)$/m.exec(cert.subject);
  return cn ? cn[1] : cert.subject.replace(/\n/g, ', ');
}

function isoTime(date: Date): string {
  return date.toISOString().replace('.000Z', 'Z');
}

/** Parses every certificate in the file; undefined when the file has none or any fails to parse. */
function parseCertificates(text: string, where: string, report: Report): X509Certificate[] | undefined {
  const blocks = splitPemCertificates(text);
  if (blocks.length === 0) {
    if (PRIVATE_KEY_BLOCK.test(text)) {
      report(
        'error',
        `${where}: contains a private key but no certificate; point the cert setting at the certificate file (cert and key look swapped)`,
      );
    } else {
      report(
        'error',
        `${where}: no PEM certificate found; expected -----BEGIN CERTIFICATE----- (convert a DER certificate with openssl x509 -inform DER -in CERT -out cert.pem)`,
      );
    }
    return undefined;
  }
  const certs: X509Certificate[] = [];
  blocks.forEach((block, i) => {
    try {
      certs.push(new X509Certificate(block));
    } catch (err) {
      report(
        'error',
        `${where}: certificate #${i + 1} is not a valid X.509 certificate (${describeError(err)}); re-export it as PEM`,
      );
    }
  });
  return certs.length === blocks.length ? certs : undefined;
}

function checkValidity(certs: X509Certificate[], where: string, now: Date, report: Report): void {
  for (const cert of certs) {
    const name = `certificate ${certName(cert)} in ${where}`;
    const from = new Date(cert.validFrom);
    const to = new Date(cert.validTo);
    if (from.getTime() > now.getTime()) {
      report('error', `${name} is not valid until ${isoTime(from)}; check the system clock or reissue it`);
    } else if (to.getTime() < now.getTime()) {
      report('error', `${name} expired on ${isoTime(to)}; renew it`);
    } else if (to.getTime() - now.getTime() <= EXPIRY_WARNING_DAYS * DAY_MS) {
      const days = Math.ceil((to.getTime() - now.getTime()) / DAY_MS);
      report('warning', `${name} expires on ${isoTime(to)} (in ${days} day${days === 1 ? '' : 's'}); renew it soon`);
    }
  }
}

/** Reads and parses the private key; undefined when it is missing, encrypted or invalid. */
function loadPrivateKey(key: TlsFilesRef, baseDir: string, report: Report): KeyObject | undefined {
  const where = `private key file ${key.file}`;
  const text = readText(key, baseDir, 'private key file', report);
  if (text === undefined) return undefined;
  // Both the PKCS#8 "ENCRYPTED PRIVATE KEY" block and the traditional "Proc-Type: 4,ENCRYPTED" header.
  if (/ENCRYPTED/.test(text)) {
    report(
      'error',
      `${where}: the key is passphrase-protected, which Spooky cannot use; decrypt it with openssl pkey -in KEY -out key.pem and keep that file readable only by the service user`,
    );
    return undefined;
  }
  const block = PRIVATE_KEY_BLOCK.exec(text);
  if (!block) {
    if (text.includes(BEGIN_CERT)) {
      report(
        'error',
        `${where}: contains a certificate, not a private key; point the key setting at the matching private key (-----BEGIN PRIVATE KEY-----)`,
      );
    } else {
      report(
        'error',
        `${where}: no PEM private key found; expected -----BEGIN PRIVATE KEY----- (export the key as PEM with openssl pkey -in KEY -out key.pem)`,
      );
    }
    return undefined;
  }
  try {
    return createPrivateKey(block[0]);
  } catch (err) {
    report(
      'error',
      `${where}: not a valid private key (${describeError(err)}); export the key as PEM (openssl pkey -in KEY -out key.pem)`,
    );
    return undefined;
  }
}

/** Checks a certificate chain file + private key pair (a server or client identity). */
export function checkCertificatePair(
  cert: TlsFilesRef,
  key: TlsFilesRef,
  baseDir: string,
  now: Date = new Date(),
): FileCheckIssue[] {
  const issues: FileCheckIssue[] = [];
  return guarded(cert, issues, () => {
    const certReport = reporter(issues, cert.path);
    const keyReport = reporter(issues, key.path);
    const where = `certificate file ${cert.file}`;
    const text = readText(cert, baseDir, 'certificate file', certReport);
    const certs = text === undefined ? undefined : parseCertificates(text, where, certReport);
    let ordered = true;
    if (certs) {
      // Clients and the QUIC stack send the chain as written: leaf, then each issuer in turn.
      for (let i = 0; i + 1 < certs.length && ordered; i++) {
        if (!certs[i].checkIssued(certs[i + 1])) {
          ordered = false;
          certReport(
            'error',
            `${where}: the certificate chain is out of order (#${i + 2} ${certName(certs[i + 1])} did not issue #${i + 1} ${certName(certs[i])}); list the leaf certificate first, then the intermediates, each followed by its issuer`,
          );
        }
      }
      checkValidity(certs, where, now, certReport);
    }
    const privateKey = loadPrivateKey(key, baseDir, keyReport);
    if (!certs || !privateKey) return;
    if (certs[0].checkPrivateKey(privateKey)) return;
    // An out-of-order chain whose leaf is further down already has an error that explains it.
    if (!ordered && certs.some((c) => c.checkPrivateKey(privateKey))) return;
    keyReport(
      'error',
      `private key file ${key.file} does not match the certificate in ${cert.file} (${certName(certs[0])}); use the key the certificate was issued for`,
    );
  });
}

/** Checks a CA bundle (PEM, one or more certificates). */
export function checkCaBundle(ca: TlsFilesRef, baseDir: string, now: Date = new Date()): FileCheckIssue[] {
  const issues: FileCheckIssue[] = [];
  return guarded(ca, issues, () => {
    const report = reporter(issues, ca.path);
    const where = `CA bundle ${ca.file}`;
    const text = readText(ca, baseDir, 'CA bundle', report);
    const certs = text === undefined ? undefined : parseCertificates(text, where, report);
    if (certs) checkValidity(certs, where, now, report);
  });
}

/** Checks a plain file exists and is readable (e.g. an auth token file). */
export function checkReadableFile(ref: TlsFilesRef, baseDir: string): FileCheckIssue[] {
  const issues: FileCheckIssue[] = [];
  return guarded(ref, issues, () => {
    readText(ref, baseDir, 'file', reporter(issues, ref.path));
  });
}

/**
 * Checks that a file Spooky will write (log.file.path) can be created: its directory exists and
 * the path is not a directory. Write permission is left to the daemon, which may run as another
 * user than the one validating.
 */
/** stat, or undefined when nothing is there (a missing directory on the way, too). */
function statIfAny(path: string) {
  try {
    return statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

export function checkWritableFilePath(ref: TlsFilesRef, baseDir: string): FileCheckIssue[] {
  const issues: FileCheckIssue[] = [];
  const report = reporter(issues, ref.path);
  return guarded(ref, issues, () => {
    const abs = resolveConfigPath(ref.file, baseDir);
    const dir = dirname(abs);
    const dirStat = statIfAny(dir);
    if (!dirStat) {
      report(
        'error',
        `${ref.file}: directory ${dir} does not exist; create it (writable by the service user) or fix the path (relative paths are resolved against the config file's directory)`,
      );
    } else if (!dirStat.isDirectory()) {
      report('error', `${ref.file}: ${dir} is not a directory; fix the path`);
    } else if (statIfAny(abs)?.isDirectory()) {
      report('error', `${ref.file}: ${abs} is a directory; name the file to write, e.g. ${join(abs, 'spooky.log')}`);
    }
  });
}
