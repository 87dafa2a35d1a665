/**
 * Fuzzing RFC 9114 request validation (dataplane/h3/request-validation.ts). Inputs are latin1
 * strings, as the QPACK decoder produces them. See fuzz/README.md.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type H3Request, MalformedRequest, validateRequest } from '../dataplane/h3/request-validation.js';
import { validAuthority } from '../dataplane/proxy/authority.js';
import { normalizePath } from '../model/router/normalize-path.js';
import { check, testTimeoutMs, typedOutcome, withinMs } from './support.js';

type Field = [string, string];

const isMalformed = (e: unknown): e is MalformedRequest => e instanceof MalformedRequest;
const STATUSES = new Set([400, 431, 501]);
const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz";
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const CONNECTION_SPECIFIC = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'];
const PSEUDO = [':method', ':scheme', ':authority', ':path', ':protocol'];

const char = (chars: string) => fc.constantFrom(...chars);
const latin1Char = fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c));
const nastyChar = fc.constantFrom('\r', '\n', '\0', ' ', '\t', ':', 'A', 'Z', '\x7f', '\xff', '\xe9');
const anyString = (maxLength: number) =>
  fc.oneof(
    fc.string({ unit: latin1Char, maxLength }),
    fc.string({ unit: fc.oneof(char(TCHARS), nastyChar), maxLength }),
  );
const token = fc.string({ unit: char(TCHARS), minLength: 1, maxLength: 20 });
const methodToken = fc.oneof(
  fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'PROPFIND'),
  fc.string({
    unit: char("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
    minLength: 1,
    maxLength: 12,
  }),
);
const visible = (minLength: number, maxLength: number) =>
  fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength, maxLength });
/** A value that is valid in HTTP/3: no CR/LF/NUL, no leading or trailing SP/HTAB. */
const validValue = fc.oneof(
  fc.constant(''),
  visible(1, 40),
  fc
    .tuple(visible(1, 10), fc.string({ unit: fc.constantFrom(' ', '\t', 'x', '\xe9'), maxLength: 10 }), visible(1, 10))
    .map((p) => p.join('')),
);

const nameArb = fc.oneof(
  fc.constantFrom(...PSEUDO, ':status', ':', ':METHOD', 'Host', 'host', 'content-length', 'te', ...CONNECTION_SPECIFIC),
  token,
  anyString(20),
);
const valueArb = fc.oneof(
  validValue,
  fc.constantFrom('GET', 'CONNECT', 'https', 'http', '/', '*', 'OPTIONS', 'trailers', '0', '12', '007', '1e3', '-1'),
  fc.constantFrom('99999999999999999', '999999999999999', ' GET', 'GET\r\nX: y', 'a\0b'),
  anyString(60),
);
const fieldArb: fc.Arbitrary<Field> = fc.tuple(nameArb, valueArb);
const fieldsArb = fc.oneof(
  { arbitrary: fc.array(fieldArb, { maxLength: 12 }), weight: 6 },
  { arbitrary: fc.array(fieldArb, { maxLength: 300, size: 'max' }), weight: 1 },
  // Huge counts: the limit check must come first and stay cheap.
  {
    arbitrary: fc
      .integer({ min: 1000, max: 20_000 })
      .map((n): Field[] => Array.from({ length: n }, (_, i) => [`x-${i}`, 'v'])),
    weight: 1,
  },
);

/** An RFC 3986 authority without userinfo: reg-name or IP literal, optional port. */
const authorityArb = fc
  .tuple(
    fc.oneof(
      fc.string({
        unit: char("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;="),
        minLength: 1,
        maxLength: 30,
      }),
      fc.ipV4(),
      fc.ipV6().map((a) => `[${a}]`),
    ),
    fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }),
  )
  .map(([host, port]) => (port === undefined ? host : `${host}:${port}`));

/** Request targets Spooky accepts: no malformed escapes, no `..` above the root. */
const pathArb = visible(0, 40)
  .map((p) => `/${p}`)
  .filter((p) => 'path' in normalizePath(p));

/** A request that RFC 9114 accepts, with its expected interpretation. */
const validRequestArb = fc
  .record({
    method: methodToken.filter((m) => m !== 'CONNECT'),
    scheme: fc.constantFrom('https', 'http'),
    authority: fc.option(authorityArb, { nil: undefined }),
    sendHost: fc.boolean(),
    path: fc.oneof(pathArb, fc.constant('*')),
    regular: fc.array(
      fc.tuple(
        token.filter((n) => !CONNECTION_SPECIFIC.includes(n) && !['te', 'host', 'content-length'].includes(n)),
        validValue,
      ),
      { maxLength: 15 },
    ),
    te: fc.boolean(),
    contentLength: fc.option(fc.oneof(fc.nat(), fc.constant(999_999_999_999_999)), { nil: undefined }),
    pseudoOrder: fc.array(fc.nat(), { minLength: 4, maxLength: 4 }),
  })
  .map((r) => {
    const method = r.path === '*' ? 'OPTIONS' : r.method;
    const authority = r.authority ?? 'example.com';
    const pseudo: Field[] = [
      [':method', method],
      [':scheme', r.scheme],
      [':path', r.path],
    ];
    if (!r.sendHost) pseudo.push([':authority', authority]);
    // Pseudo-headers may come in any order, as long as they precede regular fields.
    const order = pseudo.map((f, i) => [r.pseudoOrder[i], i, f] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const regular: Field[] = [...r.regular];
    if (r.sendHost) regular.push(['host', authority]);
    if (r.te) regular.push(['te', 'trailers']);
    if (r.contentLength !== undefined) regular.push(['content-length', String(r.contentLength)]);
    const fields: Field[] = [...order.map((o) => o[2]), ...regular];
    return {
      fields,
      method,
      scheme: r.scheme,
      authority,
      // What routing sees: the path normalised (router/normalize-path.ts).
      path: (normalizePath(r.path) as { path: string }).path,
      regular,
      contentLength: r.contentLength ?? -1,
    };
  });

/** What an accepted request must satisfy, whatever the input was. */
function assertSound(req: H3Request, fields: readonly Field[], max: number): void {
  assert.ok(fields.length <= max, 'accepted more fields than the limit');
  assert.notEqual(req.method, 'CONNECT');
  assert.ok(TOKEN_RE.test(req.method.toLowerCase()), `accepted method ${JSON.stringify(req.method)}`);
  assert.ok(req.path.startsWith('/') || (req.path === '*' && req.method === 'OPTIONS'), `path ${req.path}`);
  assert.ok(req.scheme === 'http' || req.scheme === 'https', `scheme ${req.scheme}`);
  assert.ok(validAuthority(req.authority), `authority ${JSON.stringify(req.authority)}`);
  assert.ok('path' in normalizePath(req.path), `path ${JSON.stringify(req.path)}`);
  assert.ok(req.contentLength === -1 || Number.isSafeInteger(req.contentLength));
  for (const [name, value] of [
    ...req.headers,
    [':method', req.method],
    [':path', req.path],
    [':authority', req.authority],
  ]) {
    assert.ok(!/[\r\n\0]/.test(value), `CR/LF/NUL in ${name}`);
  }
  for (const [name, value] of req.headers) {
    assert.ok(TOKEN_RE.test(name), `header name ${JSON.stringify(name)}`);
    assert.ok(!CONNECTION_SPECIFIC.includes(name), `connection-specific ${name}`);
    if (name === 'te') assert.equal(value, 'trailers');
  }
  const regular = fields.filter(([n]) => !n.startsWith(':'));
  assert.deepEqual(req.headers, regular, 'regular fields are kept in order');
}

const timeout = testTimeoutMs();

describe('fuzz: request validation (dataplane/h3/request-validation.ts)', () => {
  it('arbitrary field lists give a sound request or MalformedRequest', { timeout }, async () => {
    await check(
      'arbitrary field lists give a sound request or MalformedRequest',
      fc.property(
        fieldsArb,
        fc.oneof(fc.nat(10), fc.integer({ min: 64, max: 200 }), fc.constant(10_000)),
        (fields, max) => {
          const r = withinMs(() => typedOutcome(() => validateRequest(fields, { maxHeaderCount: max }), isMalformed));
          if (!r.ok) {
            assert.ok(STATUSES.has(r.error.status), `status ${r.error.status}`);
            assert.ok(r.error.message.length > 0);
            if (fields.length > max) assert.equal(r.error.status, 431);
            return;
          }
          assertSound(r.value, fields, max);
        },
      ),
    );
  });

  it('valid requests pass and keep method, path and authority', { timeout }, async () => {
    await check(
      'valid requests pass and keep method, path and authority',
      fc.property(validRequestArb, (v) => {
        const req = validateRequest(v.fields, { maxHeaderCount: v.fields.length });
        assert.equal(req.method, v.method);
        assert.equal(req.path, v.path);
        assert.equal(req.scheme, v.scheme);
        assert.equal(req.authority, v.authority);
        assert.equal(req.contentLength, v.contentLength);
        assertSound(req, v.fields, v.fields.length);
        assert.throws(
          () => validateRequest(v.fields, { maxHeaderCount: v.fields.length - 1 }),
          (e) => e instanceof MalformedRequest && e.status === 431,
        );
      }),
    );
  });

  it('damaged valid requests are rejected with 400', { timeout }, async () => {
    const damage = fc.oneof(
      // CR, LF or NUL anywhere in any value.
      fc.tuple(fc.constant('ctl'), fc.nat(), fc.nat(), fc.constantFrom('\r', '\n', '\0')),
      // A pseudo-header after a regular field.
      fc.tuple(fc.constant('late-pseudo'), fc.nat(), fc.nat(), fc.constantFrom(...PSEUDO.slice(0, 4))),
      // A duplicated pseudo-header.
      fc.tuple(fc.constant('dup'), fc.nat(), fc.nat(), fc.constantFrom(...PSEUDO.slice(0, 3))),
      // An uppercase letter in a regular field name.
      fc.tuple(fc.constant('upper'), fc.nat(), fc.nat(), char('ABCDEFGHIJKLMNOPQRSTUVWXYZ')),
      // A connection-specific field.
      fc.tuple(fc.constant('conn'), fc.nat(), fc.nat(), fc.constantFrom(...CONNECTION_SPECIFIC)),
    );
    await check(
      'damaged valid requests are rejected with 400',
      fc.property(validRequestArb, damage, (v, [kind, a, b, what]) => {
        const fields: Field[] = v.fields.map(([n, val]) => [n, val]);
        const firstRegular = fields.findIndex(([n]) => !n.startsWith(':'));
        switch (kind) {
          case 'ctl': {
            const i = a % fields.length;
            const val = fields[i][1];
            const at = b % (val.length + 1);
            fields[i] = [fields[i][0], val.slice(0, at) + what + val.slice(at)];
            break;
          }
          case 'late-pseudo':
            fields.push([what, '/x']);
            break;
          case 'dup': {
            const existing = fields.find(([n]) => n === what);
            fields.splice(a % (fields.filter(([n]) => n.startsWith(':')).length + 1), 0, existing ?? [what, 'x']);
            if (!existing) fields.splice(0, 0, [what, 'y']);
            break;
          }
          case 'upper': {
            const name = `x-${what}`;
            fields.push([name, 'v']);
            break;
          }
          case 'conn':
            fields.push([what, 'close']);
            break;
        }
        if (kind === 'late-pseudo' && firstRegular === -1) fields.splice(fields.length - 1, 0, ['x-a', 'b']);
        assert.throws(
          () => validateRequest(fields, { maxHeaderCount: 10_000 }),
          (e) => e instanceof MalformedRequest && e.status === 400,
          JSON.stringify(fields),
        );
      }),
    );
  });
});
