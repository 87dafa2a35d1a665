/**
 * Spooky's ordered field lists and the one place that knows which fields stay on one hop, and
 * how Node's header objects and raw header lists become field lists and back. Every listener
 * (HTTP/3, HTTP/2, HTTP/1.1) and both upstream clients use these.
 */
import type { IncomingHttpHeaders } from 'node:http2';

/** Header fields in order, names lowercase; a repeated name is repeated, never joined. */
export type Fields = ReadonlyArray<readonly [string, string]>;

/**
 * Connection-specific fields (RFC 9110 §7.6.1): malformed in HTTP/2 and HTTP/3 (RFC 9113
 * §8.2.2, RFC 9114 §4.2), dropped from HTTP/1.1 requests, never relayed in either direction.
 */
export const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Fields that describe one hop and never cross a proxy towards a backend or back: the
 * connection-specific ones, `te` and `trailer` (a backend hop has its own), the proxy
 * credentials, and HTTP/2's upgrade settings. `host` is carried separately.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  ...CONNECTION_SPECIFIC,
  'te',
  'trailer',
  'proxy-authenticate',
  'proxy-authorization',
  'http2-settings',
]);

/** Field names listed in a `Connection` header are hop-by-hop too (RFC 9110 §7.6.1). */
export function connectionTokens(value: string | readonly string[] | undefined): Set<string> | null {
  if (value === undefined) return null;
  const s = typeof value === 'string' ? value : value.join(',');
  const out = new Set<string>();
  for (const t of s.split(',')) {
    const name = t.trim().toLowerCase();
    if (name) out.add(name);
  }
  return out;
}

/** `fields` without the hop-by-hop ones and those its `Connection` fields name. */
export function withoutHopByHop(fields: Fields): Fields {
  const extra = connectionTokens(fields.filter(([n]) => n === 'connection').map(([, v]) => v));
  return fields.filter(([n]) => !HOP_BY_HOP.has(n) && !extra?.has(n));
}

const text = (v: unknown): string => (Buffer.isBuffer(v) ? v.toString('latin1') : String(v));

/**
 * A raw header list (name, value, name, value…, as Node and undici hand them over, strings or
 * latin1 Buffers) as fields: names lowercased, pseudo-headers dropped.
 */
export function fieldsFromRaw(raw: ReadonlyArray<string | Buffer>): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = text(raw[i]).toLowerCase();
    if (name.charCodeAt(0) !== 0x3a) out.push([name, text(raw[i + 1])]);
  }
  return out;
}

/** A Node header object as fields (pseudo-headers dropped, arrays as repeated fields). */
export function fieldsFromNodeHeaders(h: IncomingHttpHeaders): Array<readonly [string, string]> {
  const raw: string[] = [];
  for (const name of Object.keys(h)) {
    const v = h[name];
    if (v === undefined) continue;
    for (const item of Array.isArray(v) ? v : [v]) raw.push(name, String(item));
  }
  return fieldsFromRaw(raw);
}

export type NodeHeaderObject = Record<string, string | string[] | number>;

/**
 * Fields as a Node header object (repeated names become arrays), added to `into` (pseudo-headers
 * go there first). The object has no prototype, so fields named `constructor` or `__proto__`
 * are stored like any other.
 */
export function nodeHeaderObject(
  fields: Fields,
  into: NodeHeaderObject = Object.create(null) as NodeHeaderObject,
): NodeHeaderObject {
  for (const [name, value] of fields) {
    const prev = into[name];
    if (prev === undefined) into[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else into[name] = [String(prev), value];
  }
  return into;
}
