// Pure parsing of backend addresses and route hosts. Each checker returns a human-readable
// problem (string) instead of throwing, so the schema can report it as a validation issue.

import { isIPv4, isIPv6 } from 'node:net';
import { normalizeHost } from '../router/route-table.js';

export interface BackendAddress {
  tls: boolean;
  /** Lowercase; IPv6 without brackets (what net.connect wants). */
  host: string;
  port: number;
  /** `https://host:port` or `http://host:port`, explicit port, IPv6 bracketed. */
  origin: string;
}

const HOSTNAME_RE =
  /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

export const ADDRESS_FORMS = 'use host:port, https://host[:port] or http://host[:port]';

/** Problem with a host name or IPv4 literal, or undefined when it is fine. */
export function hostProblem(host: string): string | undefined {
  if (host === '') return 'missing host';
  if (/^[0-9.]+$/.test(host)) return isIPv4(host) ? undefined : `invalid IPv4 address ${host}`;
  return HOSTNAME_RE.test(host.toLowerCase()) ? undefined : `invalid host name ${JSON.stringify(host)}`;
}

/** The parsed address, or a string saying what is wrong with it. */
export function analyseBackendAddress(address: string): BackendAddress | string {
  if (address === '') return `empty backend address (${ADDRESS_FORMS})`;
  if (/\s/.test(address)) return 'must not contain whitespace';
  let tls = true;
  let defaultPort: number | undefined;
  let rest = address;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(address);
  if (scheme !== null) {
    const name = scheme[1].toLowerCase();
    if (name === 'https') {
      defaultPort = 443;
    } else if (name === 'http') {
      tls = false;
      defaultPort = 80;
    } else {
      return `unsupported scheme ${scheme[1]}:// (${ADDRESS_FORMS})`;
    }
    rest = address.slice(scheme[0].length);
    // A lone trailing slash is the empty path, often pasted along with a URL.
    if (rest.indexOf('/') === rest.length - 1) rest = rest.slice(0, -1);
  }
  if (rest.includes('@')) return 'must not contain credentials (user@)';
  if (rest.includes('/')) return 'must not contain a path';
  if (rest.includes('?')) return 'must not contain a query string';
  if (rest.includes('#')) return 'must not contain a fragment';

  let host: string;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close === -1) return 'unterminated IPv6 address: missing ]';
    host = rest.slice(1, close);
    if (!isIPv6(host)) return `invalid IPv6 address ${host}`;
    const after = rest.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) return `unexpected ${JSON.stringify(after)} after the IPv6 address`;
      portText = after.slice(1);
    }
  } else {
    const colon = rest.indexOf(':');
    if (colon !== -1 && rest.indexOf(':', colon + 1) !== -1) {
      return 'IPv6 addresses must be in brackets, e.g. [::1]:8443';
    }
    host = colon === -1 ? rest : rest.slice(0, colon);
    if (colon !== -1) portText = rest.slice(colon + 1);
    const problem = hostProblem(host);
    if (problem !== undefined) return problem;
  }

  let port: number;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText)) return `invalid port ${JSON.stringify(portText)}`;
    port = Number(portText);
    if (port < 1 || port > 65535) return `port ${port} out of range 1-65535`;
  } else if (defaultPort !== undefined) {
    port = defaultPort;
  } else {
    return `missing port (${ADDRESS_FORMS})`;
  }

  let urlHost: string;
  if (host.includes(':')) {
    // WHATWG URL gives the canonical IPv6 text, so [0:0::1] and [::1] compare equal.
    urlHost = new URL(`http://[${host}]/`).hostname;
    host = urlHost.slice(1, -1);
  } else {
    host = host.toLowerCase();
    urlHost = host;
  }
  return { tls, host, port, origin: `${tls ? 'https' : 'http'}://${urlHost}:${port}` };
}

/** Problem with a `route.host` value (exact host or `*.example.com`), or undefined. */
export function routeHostProblem(value: string): string | undefined {
  const wildcard = value.startsWith('*.');
  const bare = wildcard ? value.slice(2) : value;
  if (bare.includes('*')) return 'a wildcard must be the whole first label, as in *.example.com';
  if (bare.startsWith('[') || isIPv6(bare)) {
    if (wildcard) return 'a wildcard cannot apply to an IP address';
    const inner = bare.startsWith('[') && bare.endsWith(']') ? bare.slice(1, -1) : bare;
    return isIPv6(inner) ? undefined : 'invalid IPv6 address (a route host has no port)';
  }
  if (/:[0-9]*$/.test(bare)) return 'must not include a port (ports are ignored when matching)';
  const host = bare.endsWith('.') ? bare.slice(0, -1) : bare;
  if (wildcard && /^[0-9.]+$/.test(host)) return 'a wildcard cannot apply to an IP address';
  return hostProblem(host);
}

/** Key used to compare route hosts: normalised host, `*` kept for wildcards, '' when absent. */
export function routeHostKey(host: string | undefined): string {
  if (host === undefined) return '';
  return host.startsWith('*.') ? `*${normalizeHost(host.slice(1))}` : normalizeHost(host);
}
