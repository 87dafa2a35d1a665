/**
 * What the QUIC engine under Spooky is, and the published advisories that apply to it, for
 * `spooky doctor` and docs/security.md. @matrixai/quic bundles its own quiche build; the version
 * below is the one its native package was built from (see docs/security.md for how it was read).
 */
import { readFileSync } from 'node:fs';

export interface QuicAdvisory {
  id: string;
  /** The quiche release that fixed it. */
  fixedIn: string;
  summary: string;
  /** What Spooky does about it while the binding stays on the affected quiche. */
  mitigation: string;
}

/** quiche versions bundled by the @matrixai/quic releases Spooky has run on. */
const QUICHE_OF_BINDING: Record<string, string> = { '2.0.9': '0.18.0' };

export const QUICHE_ADVISORIES: readonly QuicAdvisory[] = [
  {
    id: 'CVE-2023-6193',
    fixedIn: '0.19.1',
    summary: 'unbounded PATH_CHALLENGE queue: a peer grows the server memory',
    mitigation: 'per-connection limit on input that is not stream data; connection age limit; memory limit',
  },
  {
    id: 'CVE-2024-1410',
    fixedIn: '0.19.2 / 0.20.1',
    summary: 'unbounded storage of retired connection ids',
    mitigation: 'per-connection limit on input that is not stream data; connection age limit; memory limit',
  },
  {
    id: 'CVE-2024-1765',
    fixedIn: '0.19.2 / 0.20.1',
    summary: 'unbounded CRYPTO frame buffering after the handshake',
    mitigation: 'per-connection limit on input that is not stream data; connection age limit; memory limit',
  },
];

export interface QuicStack {
  binding: string;
  bindingVersion: string;
  /** null when the binding version is not one whose quiche is known. */
  quiche: string | null;
  advisories: readonly QuicAdvisory[];
}

export function quicStack(): QuicStack {
  let bindingVersion = 'unknown';
  try {
    // The package's exports map hides package.json: resolve its entry point and walk up.
    const entry = import.meta.resolve('@matrixai/quic');
    const marker = '/node_modules/@matrixai/quic/';
    const root = entry.slice(0, entry.lastIndexOf(marker) + marker.length);
    bindingVersion = (JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { version: string }).version;
  } catch {
    // Not resolvable from here: reported as unknown.
  }
  const quiche = QUICHE_OF_BINDING[bindingVersion] ?? null;
  return {
    binding: '@matrixai/quic',
    bindingVersion,
    quiche,
    advisories: quiche === '0.18.0' ? QUICHE_ADVISORIES : [],
  };
}
