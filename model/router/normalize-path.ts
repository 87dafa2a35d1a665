/**
 * RFC 3986 normalisation of a request's path before routing (docs/traffic.md, "Path
 * normalisation"): percent-encoded unreserved characters are decoded (§6.2.2.2) and dot-segments
 * removed (§5.2.4), so `/h1/../admin` and `/h1/%2e%2e/admin` route as `/admin`, which is what a
 * normalising backend acts on. The normalised path is also the one forwarded, so routing and the
 * backend always agree. The query is left alone; `%2F` stays encoded (it is not a separator).
 */

/** Why a path is refused (400). */
export type PathProblem = 'malformed percent-encoding' | 'path climbs above the root';

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986 §2.3). */
function isUnreserved(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2d ||
    c === 0x2e ||
    c === 0x5f ||
    c === 0x7e
  );
}

/** Decodes `%XX` of unreserved characters; other escapes stay as sent. Null when one is malformed. */
function decodeUnreserved(path: string): string | null {
  let out = '';
  let from = 0;
  for (let i = path.indexOf('%'); i !== -1; i = path.indexOf('%', i + 1)) {
    const hi = hexValue(path.charCodeAt(i + 1));
    const lo = hexValue(path.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return null;
    const c = hi * 16 + lo;
    if (!isUnreserved(c)) continue;
    out += path.slice(from, i) + String.fromCharCode(c);
    from = i + 3;
    i += 2;
  }
  return from === 0 ? path : out + path.slice(from);
}

/** §5.2.4 for an absolute path; null when `..` would climb above the root. */
function removeDotSegments(path: string): string | null {
  const segments = path.split('/');
  const out: string[] = [];
  const last = segments.length - 1;
  for (let i = 1; i <= last; i++) {
    const s = segments[i];
    if (s === '.' || s === '..') {
      if (s === '..' && out.pop() === undefined) return null;
      // A trailing dot-segment leaves a directory: `/a/b/..` is `/a/`.
      if (i === last) out.push('');
      continue;
    }
    out.push(s);
  }
  return `/${out.join('/')}`;
}

const DOT_SEGMENT = /\/\.\.?(?:\/|$)/;

/**
 * The normalised request target (path plus unchanged query), or the problem that makes Spooky
 * refuse it. `*` (OPTIONS) and targets that need no change are returned as they are.
 */
export function normalizePath(target: string): { path: string } | { problem: PathProblem } {
  if (target.charCodeAt(0) !== 0x2f /* / */) return { path: target };
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  const hasEscape = path.includes('%');
  if (!hasEscape && !path.includes('/.')) return { path: target };
  const decoded = hasEscape ? decodeUnreserved(path) : path;
  if (decoded === null) return { problem: 'malformed percent-encoding' };
  if (!DOT_SEGMENT.test(decoded)) return { path: decoded === path ? target : decoded + target.slice(path.length) };
  const clean = removeDotSegments(decoded);
  if (clean === null) return { problem: 'path climbs above the root' };
  return { path: clean + target.slice(path.length) };
}
