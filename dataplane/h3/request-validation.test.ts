import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MalformedRequest, validateRequest } from './request-validation.js';

type F = Array<[string, string]>;
const base: F = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':authority', 'example.com'],
  [':path', '/a?b=c'],
];
const limits = { maxHeaderCount: 10 };
const status = (fields: F) => {
  try {
    validateRequest(fields, limits);
    return 0;
  } catch (e) {
    assert.ok(e instanceof MalformedRequest);
    return e.status;
  }
};

describe('validateRequest (RFC 9114 §4.1.2, §4.2, §4.3)', () => {
  it('accepts a well-formed request', () => {
    const r = validateRequest([...base, ['accept', '*/*'], ['content-length', '5'], ['te', 'trailers']], limits);
    assert.equal(r.method, 'GET');
    assert.equal(r.authority, 'example.com');
    assert.equal(r.path, '/a?b=c');
    assert.equal(r.contentLength, 5);
    assert.deepEqual(r.headers[0], ['accept', '*/*']);
  });
  it('falls back to host when :authority is absent', () => {
    assert.equal(
      validateRequest([...base.filter((f) => f[0] !== ':authority'), ['host', 'h.example']], limits).authority,
      'h.example',
    );
  });
  const cases: Array<[string, F, number]> = [
    ['missing :method', base.filter((f) => f[0] !== ':method'), 400],
    ['missing :scheme', base.filter((f) => f[0] !== ':scheme'), 400],
    ['missing :path', base.filter((f) => f[0] !== ':path'), 400],
    ['empty :path', [...base.slice(0, 3), [':path', '']], 400],
    ['missing authority and host', base.filter((f) => f[0] !== ':authority'), 400],
    ['duplicate :path', [...base, [':path', '/x']], 400],
    ['pseudo-header after a regular one', [...base.slice(0, 3), ['accept', '*/*'], [':path', '/']], 400],
    ['unknown pseudo-header', [...base, [':foo', 'x']], 400],
    ['response pseudo-header', [...base, [':status', '200']], 400],
    ['uppercase name', [...base, ['Accept', '*/*']], 400],
    ['connection header', [...base, ['connection', 'close']], 400],
    ['transfer-encoding', [...base, ['transfer-encoding', 'chunked']], 400],
    ['keep-alive', [...base, ['keep-alive', '1']], 400],
    ['upgrade', [...base, ['upgrade', 'websocket']], 400],
    ['proxy-connection', [...base, ['proxy-connection', 'x']], 400],
    ['te other than trailers', [...base, ['te', 'gzip']], 400],
    ['CR in a value', [...base, ['x-a', 'a\rb']], 400],
    ['LF in a value', [...base, ['x-a', 'a\nb']], 400],
    ['NUL in a value', [...base, ['x-a', 'a\0b']], 400],
    ['leading space in a value', [...base, ['x-a', ' a']], 400],
    ['bad content-length', [...base, ['content-length', '-1']], 400],
    ['conflicting content-length', [...base, ['content-length', '1'], ['content-length', '2']], 400],
    [':authority and host differ', [...base, ['host', 'other.example']], 400],
    ['path not starting with /', [...base.slice(0, 3), [':path', 'a']], 400],
    [':protocol without CONNECT', [...base, [':protocol', 'websocket']], 400],
    [
      'CONNECT',
      [
        [':method', 'CONNECT'],
        [':authority', 'example.com:443'],
      ],
      501,
    ],
    ['too many fields', [...base, ...Array.from({ length: 10 }, (_, i): [string, string] => [`x-${i}`, 'v'])], 431],
    // Issue #12 item 1: what a backend would reset as malformed never gets past the edge.
    ['a space in :authority', [...base.slice(0, 2), [':authority', 'a b/c'], base[3]], 400],
    ['userinfo in :authority', [...base.slice(0, 2), [':authority', 'user@example.com'], base[3]], 400],
    ['a bad port', [...base.slice(0, 2), [':authority', 'example.com:65536'], base[3]], 400],
    ['a space in host', [...base.filter((f) => f[0] !== ':authority'), ['host', 'a b']], 400],
    ['an unsupported :scheme', [base[0], [':scheme', 'ftp'], ...base.slice(2)], 400],
    // Item 10a: dot-segments that climb above the root, malformed escapes.
    ['a path above the root', [...base.slice(0, 3), [':path', '/a/../../etc']], 400],
    ['a malformed escape', [...base.slice(0, 3), [':path', '/a%zz']], 400],
  ];
  for (const [name, fields, expected] of cases) {
    it(`${name} → ${expected}`, () => assert.equal(status(fields), expected));
  }
  it('accepts IPv6 literals and ports in :authority', () => {
    for (const a of ['[::1]:8443', '[2001:db8::1]', '127.0.0.1:443', 'xn--bcher-kva.example']) {
      assert.equal(validateRequest([...base.slice(0, 2), [':authority', a], base[3]], limits).authority, a);
    }
  });
  it('normalises the path it routes on (dot-segments, escaped unreserved characters)', () => {
    const path = (p: string) => validateRequest([...base.slice(0, 3), [':path', p]], limits).path;
    assert.equal(path('/h1/../admin'), '/admin');
    assert.equal(path('/h1/%2e%2E/admin?x=/../y'), '/admin?x=/../y');
    assert.equal(path('/%7Euser/./a'), '/~user/a');
    assert.equal(path('/a%2Fb'), '/a%2Fb');
  });
  it('allows OPTIONS *', () => {
    assert.equal(
      status([
        [':method', 'OPTIONS'],
        [':scheme', 'https'],
        [':authority', 'a'],
        [':path', '*'],
      ]),
      0,
    );
  });
});
