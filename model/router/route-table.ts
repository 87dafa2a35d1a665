// Host + path-prefix routing, as request-path.md "Routing" describes.
//
// Candidate order for a request host H:
//   1. routes whose host equals H;
//   2. if none of those matches the path: wildcard routes, most specific suffix first.
//      `*.example.com` matches any host ending in `.example.com` (one or more extra labels,
//      so `a.b.example.com` too) but never `example.com` itself;
//   3. if still nothing matches: the routes without a host.
// Within one tier the longest path_prefix on a segment boundary wins.
// All lists are sorted at construction so match() only scans short arrays.

interface Entry {
  readonly pool: string;
  readonly prefix: string;
}

interface WildcardTier {
  /** Leading dot included: `.example.com`. */
  readonly suffix: string;
  readonly entries: readonly Entry[];
}

const OPEN_BRACKET = 0x5b;
const SLASH = 0x2f;
const QUESTION = 0x3f;

/**
 * Lowercase, strip the port (`example.com:443`, `[::1]:443` → `::1`) and one trailing dot.
 * A bare IPv6 literal without brackets is left whole since its colons are not a port separator.
 */
export function normalizeHost(authority: string): string {
  let host = authority;
  if (host.charCodeAt(0) === OPEN_BRACKET) {
    const end = host.indexOf(']');
    host = end === -1 ? host.slice(1) : host.slice(1, end);
  } else {
    const colon = host.indexOf(':');
    if (colon !== -1 && host.indexOf(':', colon + 1) === -1) host = host.slice(0, colon);
  }
  if (host.length > 1 && host.endsWith('.')) host = host.slice(0, -1);
  return host.toLowerCase();
}

/** True when `prefix` matches `path` on a segment boundary; the query string never takes part. */
export function prefixMatches(prefix: string, path: string): boolean {
  if (prefix === '/') return true;
  if (!path.startsWith(prefix)) return false;
  if (path.length === prefix.length) return true;
  // A prefix ending in '/' already ends on a boundary.
  if (prefix.charCodeAt(prefix.length - 1) === SLASH) return true;
  const next = path.charCodeAt(prefix.length);
  return next === SLASH || next === QUESTION;
}

function byPrefixLengthDesc(a: Entry, b: Entry): number {
  return b.prefix.length - a.prefix.length;
}

function firstMatch(entries: readonly Entry[], path: string): string | undefined {
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    if (prefixMatches(entry.prefix, path)) return entry.pool;
  }
  return undefined;
}

export class RouteTable {
  readonly #exact = new Map<string, Entry[]>();
  readonly #wildcards: WildcardTier[] = [];
  readonly #hostless: Entry[] = [];
  readonly #size: number;

  constructor(routes: ReadonlyArray<{ pool: string; host?: string; pathPrefix: string }>) {
    const wildcards = new Map<string, Entry[]>();
    const seen = new Set<string>();
    for (const route of routes) {
      if (!route.pathPrefix.startsWith('/')) {
        throw new Error(`route for pool ${route.pool}: path prefix must start with '/': ${route.pathPrefix}`);
      }
      const entry: Entry = { pool: route.pool, prefix: route.pathPrefix };
      let list: Entry[];
      let hostKey = '';
      if (route.host === undefined) {
        list = this.#hostless;
      } else if (route.host.startsWith('*.')) {
        const suffix = normalizeHost(route.host.slice(1));
        hostKey = `*${suffix}`;
        list = wildcards.get(suffix) ?? [];
        wildcards.set(suffix, list);
      } else {
        hostKey = normalizeHost(route.host);
        list = this.#exact.get(hostKey) ?? [];
        this.#exact.set(hostKey, list);
      }
      // Identical routes would make the winner depend on file order; validation forbids them.
      const key = `${hostKey} ${route.pathPrefix}`;
      if (seen.has(key)) {
        throw new Error(`duplicate route (host ${route.host ?? '(any)'}, path prefix ${route.pathPrefix})`);
      }
      seen.add(key);
      list.push(entry);
    }
    for (const list of this.#exact.values()) list.sort(byPrefixLengthDesc);
    this.#hostless.sort(byPrefixLengthDesc);
    for (const [suffix, entries] of wildcards) {
      entries.sort(byPrefixLengthDesc);
      this.#wildcards.push({ suffix, entries });
    }
    this.#wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
    this.#size = seen.size;
  }

  /** Number of routes in the table. */
  get size(): number {
    return this.#size;
  }

  /** Pool name for the request, or undefined (the caller answers 404). */
  match(authority: string | undefined, path: string): string | undefined {
    if (authority !== undefined && authority.length > 0) {
      const host = normalizeHost(authority);
      const exact = this.#exact.get(host);
      if (exact !== undefined) {
        const pool = firstMatch(exact, path);
        if (pool !== undefined) return pool;
      }
      const wildcards = this.#wildcards;
      for (let i = 0; i < wildcards.length; i++) {
        const tier = wildcards[i];
        if (host.length > tier.suffix.length && host.endsWith(tier.suffix)) {
          const pool = firstMatch(tier.entries, path);
          if (pool !== undefined) return pool;
        }
      }
    }
    return firstMatch(this.#hostless, path);
  }
}
