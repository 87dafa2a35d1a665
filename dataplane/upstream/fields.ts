/**
 * Conversions between Node's header objects and Spooky's ordered field lists, dropping what
 * must not cross a hop (pseudo-headers and RFC 9110 §7.6.1 connection-specific fields).
 */
import type { IncomingHttpHeaders } from 'node:http2';
import type { Fields } from './dispatcher.js';

/** Fields that describe one connection and never cross a proxy (plus `host`, carried separately). */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'proxy-authenticate',
  'proxy-authorization',
  'http2-settings',
]);

export function fieldsFromNodeHeaders(h: IncomingHttpHeaders): Fields {
  const out: Array<readonly [string, string]> = [];
  const extra = connectionTokens(h.connection);
  for (const name of Object.keys(h)) {
    if (name.charCodeAt(0) === 0x3a || HOP_BY_HOP.has(name) || extra?.has(name)) continue;
    const v = h[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const item of v) out.push([name, item]);
    else out.push([name, String(v)]);
  }
  return out;
}

/** Field names listed in a `Connection` header are hop-by-hop too (RFC 9110 §7.6.1). */
export function connectionTokens(value: string | string[] | undefined): Set<string> | null {
  if (value === undefined) return null;
  const s = Array.isArray(value) ? value.join(',') : value;
  const out = new Set<string>();
  for (const t of s.split(',')) {
    const name = t.trim().toLowerCase();
    if (name) out.add(name);
  }
  return out;
}
