/**
 * What a request may name as its target's authority and scheme (RFC 9110 §4.2, §7.2; RFC 3986
 * §3.2). Spooky routes on the authority and forwards it as the backend's `:authority` / `Host`:
 * anything a backend would refuse as malformed (`Host: a b`) must be refused here with 400, or
 * one client's bad request turns into a backend's stream reset.
 */
import { isIPv6 } from 'node:net';

/** RFC 3986 reg-name characters: unreserved, sub-delims, and `%` of a pct-encoding. */
const REG_NAME = (() => {
  const t = new Uint8Array(128);
  const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=%";
  for (const c of chars) t[c.charCodeAt(0)] = 1;
  return t;
})();

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** `reg-name` or IPv4address (both fit reg-name's grammar); never empty (RFC 9110 §4.2.1). */
function validRegName(host: string): boolean {
  if (host.length === 0) return false;
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c >= 128 || REG_NAME[c] === 0) return false;
    if (c === 0x25 /* % */ && !(isHex(host.charCodeAt(i + 1)) && isHex(host.charCodeAt(i + 2)))) return false;
  }
  return true;
}

/** 0–65535 in at most five digits; an empty port is refused. */
function validPort(port: string): boolean {
  if (port.length === 0 || port.length > 5) return false;
  for (let i = 0; i < port.length; i++) {
    const c = port.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return Number(port) <= 65535;
}

/**
 * `host [ ":" port ]` as RFC 3986 §3.2.2–3.2.3 define it, without userinfo (RFC 9110 §4.2.4
 * forbids it in http(s) URIs). IPv6 literals in brackets only, without a zone id; no IPvFuture.
 */
export function validAuthority(authority: string): boolean {
  if (authority.charCodeAt(0) === 0x5b /* [ */) {
    const end = authority.indexOf(']');
    if (end === -1) return false;
    const literal = authority.slice(1, end);
    if (literal.includes('%') || !isIPv6(literal)) return false;
    const rest = authority.slice(end + 1);
    return rest.length === 0 || (rest.charCodeAt(0) === 0x3a /* : */ && validPort(rest.slice(1)));
  }
  const colon = authority.indexOf(':');
  if (colon === -1) return validRegName(authority);
  return validRegName(authority.slice(0, colon)) && validPort(authority.slice(colon + 1));
}

/** Spooky serves http(s) resources only (RFC 9114 §4.3.1 / RFC 9113 §8.3.1). */
export function validScheme(scheme: string): boolean {
  return scheme === 'https' || scheme === 'http';
}
