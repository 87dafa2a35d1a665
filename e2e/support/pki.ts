/**
 * A throwaway certificate authority for tests, made with the system's openssl (ECDSA P-256):
 * the fleet CA of the control connection, or the client CA of mTLS listeners.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface IssuedCertificate {
  cert: string;
  key: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export class TestPki {
  /** The CA certificate (PEM file): what the other side trusts. */
  readonly ca: string;
  private readonly caKey: string;

  constructor(
    private readonly dir: string,
    name = 'Spooky test CA',
  ) {
    mkdirSync(dir, { recursive: true });
    this.ca = join(dir, 'ca.pem');
    this.caKey = join(dir, 'ca.key');
    openssl('req', '-x509', ...EC, '-keyout', this.caKey, '-out', this.ca, '-days', '30', '-subj', `/CN=${name}`);
  }

  /**
   * A leaf certificate signed by this CA. `subject`: e.g. `/CN=edge-1/O=Spooky` (`/O=Spooky` for
   * one without a CN); `dns`/`ip`: its subjectAltNames (a server name to check).
   */
  issue(file: string, subject: string, san: { dns?: string[]; ip?: string[] } = {}): IssuedCertificate {
    const f = (ext: string) => join(this.dir, `${file}.${ext}`);
    openssl('req', ...EC, '-keyout', f('key'), '-out', f('csr'), '-subj', subject);
    const names = [...(san.dns ?? []).map((d) => `DNS:${d}`), ...(san.ip ?? []).map((i) => `IP:${i}`)];
    writeFileSync(
      f('ext'),
      `basicConstraints=CA:FALSE\n${names.length > 0 ? `subjectAltName=${names.join(',')}\n` : ''}`,
    );
    openssl(
      'x509',
      '-req',
      '-in',
      f('csr'),
      '-CA',
      this.ca,
      '-CAkey',
      this.caKey,
      '-CAcreateserial',
      '-extfile',
      f('ext'),
      '-out',
      f('pem'),
      '-days',
      '30',
    );
    return { cert: f('pem'), key: f('key') };
  }
}
