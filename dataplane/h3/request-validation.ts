/**
 * RFC 9114 §4.1.2–§4.3 request validation: a decoded field section becomes a typed request or a
 * `MalformedRequest` carrying the status Spooky answers with (400, 431, or 501 for CONNECT).
 * The path comes out normalised for routing (router/normalize-path.ts).
 */

import { normalizePath } from '../../model/router/normalize-path.js';
import { CONNECTION_SPECIFIC, type Fields } from '../http/fields.js';
import { validAuthority, validScheme } from '../proxy/authority.js';
import type { ClientRequest } from '../proxy/client-stream.js';

/** A validated HTTP/3 request: the proxy's ClientRequest, which every listener produces. */
export type H3Request = ClientRequest;

export class MalformedRequest extends Error {
  constructor(
    readonly status: 400 | 431 | 501,
    message: string,
  ) {
    super(message);
    this.name = 'MalformedRequest';
  }
}

/** RFC 9110 §5.1 token characters, lowercase only (uppercase is malformed in HTTP/3). */
const TCHAR = (() => {
  const t = new Uint8Array(128);
  for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") t[c.charCodeAt(0)] = 1;
  return t;
})();

function validName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return true;
}

/** §4.1.2: CR, LF and NUL are never valid in a value; nor is leading or trailing whitespace. */
function validValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 0x0a || c === 0x0d) return false;
  }
  if (value.length > 0) {
    const first = value.charCodeAt(0);
    const last = value.charCodeAt(value.length - 1);
    if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) return false;
  }
  return true;
}

const DIGITS = /^[0-9]{1,15}$/;

export interface RequestLimits {
  maxHeaderCount: number;
}

export function validateRequest(fields: Fields, limits: RequestLimits): H3Request {
  if (fields.length > limits.maxHeaderCount) {
    throw new MalformedRequest(431, `${fields.length} header fields exceed the limit of ${limits.maxHeaderCount}`);
  }
  let method: string | undefined;
  let scheme: string | undefined;
  let authority: string | undefined;
  let path: string | undefined;
  let protocol: string | undefined;
  let host: string | undefined;
  let contentLength = -1;
  let regular = false;
  const headers: Array<readonly [string, string]> = [];
  for (const field of fields) {
    const [name, value] = field;
    if (!validValue(value)) throw new MalformedRequest(400, `invalid characters in the value of ${name}`);
    if (name.charCodeAt(0) === 0x3a /* : */) {
      if (regular) throw new MalformedRequest(400, `pseudo-header ${name} after a regular header`);
      const dup = () => new MalformedRequest(400, `duplicate ${name}`);
      switch (name) {
        case ':method':
          if (method !== undefined) throw dup();
          method = value;
          break;
        case ':scheme':
          if (scheme !== undefined) throw dup();
          scheme = value;
          break;
        case ':authority':
          if (authority !== undefined) throw dup();
          authority = value;
          break;
        case ':path':
          if (path !== undefined) throw dup();
          path = value;
          break;
        case ':protocol':
          if (protocol !== undefined) throw dup();
          protocol = value;
          break;
        default:
          throw new MalformedRequest(400, `unknown or response pseudo-header ${name}`);
      }
      continue;
    }
    regular = true;
    if (!validName(name)) throw new MalformedRequest(400, `invalid header name ${JSON.stringify(name)}`);
    if (CONNECTION_SPECIFIC.has(name)) throw new MalformedRequest(400, `connection-specific header ${name}`);
    if (name === 'te' && value !== 'trailers') throw new MalformedRequest(400, 'te other than "trailers"');
    if (name === 'host') {
      if (host !== undefined && host !== value) throw new MalformedRequest(400, 'conflicting host headers');
      host = value;
    } else if (name === 'content-length') {
      if (!DIGITS.test(value)) throw new MalformedRequest(400, `invalid content-length ${JSON.stringify(value)}`);
      const n = Number(value);
      if (contentLength !== -1 && contentLength !== n) throw new MalformedRequest(400, 'conflicting content-length');
      contentLength = n;
    }
    headers.push(field);
  }
  if (method === undefined) throw new MalformedRequest(400, 'missing :method');
  if (method === 'CONNECT') {
    // Neither plain nor extended CONNECT is offered; say so rather than calling it malformed.
    throw new MalformedRequest(
      501,
      protocol ? `extended CONNECT (${protocol}) is not supported` : 'CONNECT is not supported',
    );
  }
  if (protocol !== undefined) throw new MalformedRequest(400, ':protocol is only valid with CONNECT');
  if (!validName(method.toLowerCase())) throw new MalformedRequest(400, 'invalid :method');
  if (scheme === undefined) throw new MalformedRequest(400, 'missing :scheme');
  if (!validScheme(scheme)) throw new MalformedRequest(400, ':scheme must be https or http');
  if (path === undefined || path === '') throw new MalformedRequest(400, 'missing :path');
  if (path.charCodeAt(0) !== 0x2f && !(path === '*' && method === 'OPTIONS')) {
    throw new MalformedRequest(400, ':path must start with "/"');
  }
  if (authority !== undefined && host !== undefined && authority !== host) {
    throw new MalformedRequest(400, ':authority and host differ');
  }
  const auth = authority ?? host ?? '';
  if (auth === '') throw new MalformedRequest(400, 'missing :authority');
  if (!validAuthority(auth)) throw new MalformedRequest(400, ':authority is not a valid host[:port]');
  const normalised = normalizePath(path);
  if ('problem' in normalised) throw new MalformedRequest(400, `:path: ${normalised.problem}`);
  return { method, scheme, authority: auth, path: normalised.path, headers, contentLength };
}
