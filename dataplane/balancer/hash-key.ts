// The consistent-hash key of a request, from `load_balancing.key` (config validation allows
// authority, path, client_ip, header:NAME, cookie:NAME and query:NAME).

export interface HashKeyRequest {
  readonly authority: string;
  /** The request target as received: path plus optional `?query`. */
  readonly path: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

/**
 * The consistent-hash key for a request from `load_balancing.key`: authority | path | client_ip |
 * header:NAME | cookie:NAME | query:NAME. Missing header/cookie/query → undefined (the caller then
 * falls back to weighted random). Header names case-insensitive; `path` excludes the query string;
 * cookie parsed from the `cookie` header(s) (several headers or `; ` joined); query from the path's
 * query string (first value, URL-decoded).
 *
 * Also undefined: an empty authority or client address, and a spec of no known form.
 */
export function requestHashKey(spec: string, req: HashKeyRequest, clientIp: string): string | undefined {
  switch (spec) {
    case 'authority':
      // Host names are case-insensitive; Example.COM and example.com must stick together.
      return req.authority === '' ? undefined : req.authority.toLowerCase();
    case 'path':
      return splitTarget(req.path).path;
    case 'client_ip':
      return clientIp === '' ? undefined : clientIp;
  }
  const colon = spec.indexOf(':');
  const name = spec.slice(colon + 1);
  if (colon === -1 || name === '') return undefined;
  switch (spec.slice(0, colon)) {
    case 'header':
      return headerValue(req.headers, name.toLowerCase());
    case 'cookie':
      return cookieValue(req.headers, name);
    case 'query': {
      const query = splitTarget(req.path).query;
      return query === undefined ? undefined : (new URLSearchParams(query).get(name) ?? undefined);
    }
    default:
      return undefined;
  }
}

function splitTarget(target: string): { path: string; query: string | undefined } {
  const hash = target.indexOf('#');
  const noFragment = hash === -1 ? target : target.slice(0, hash);
  const q = noFragment.indexOf('?');
  return q === -1
    ? { path: noFragment, query: undefined }
    : { path: noFragment.slice(0, q), query: noFragment.slice(q + 1) };
}

/** All values of the header, combined as one field would be (`; ` for cookie, `, ` otherwise). */
function headerValue(headers: HashKeyRequest['headers'], lowerName: string): string | undefined {
  const values: string[] = [];
  for (const [n, v] of headers) if (n.toLowerCase() === lowerName) values.push(v);
  if (values.length === 0) return undefined;
  return values.join(lowerName === 'cookie' ? '; ' : ', ');
}

/** First cookie called `name` (case-sensitive, RFC 6265) across every `cookie` header. */
function cookieValue(headers: HashKeyRequest['headers'], name: string): string | undefined {
  for (const [n, v] of headers) {
    if (n.toLowerCase() !== 'cookie') continue;
    for (const pair of v.split(';')) {
      const eq = pair.indexOf('=');
      if (eq === -1) continue;
      if (pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
    }
  }
  return undefined;
}
