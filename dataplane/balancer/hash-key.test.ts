import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { requestHashKey } from './hash-key.js';

type Headers = ReadonlyArray<readonly [string, string]>;

function req(path: string, headers: Headers = [], authority = 'api.example.com') {
  return { authority, path, headers };
}

const key = (spec: string, path: string, headers: Headers = []) =>
  requestHashKey(spec, req(path, headers), '192.0.2.7');

describe('requestHashKey', () => {
  it('authority, lowercased', () => {
    assert.equal(
      requestHashKey('authority', req('/', [], 'API.Example.com:8443'), '192.0.2.7'),
      'api.example.com:8443',
    );
    assert.equal(requestHashKey('authority', req('/', [], ''), '192.0.2.7'), undefined);
  });

  it('path, without the query string', () => {
    assert.equal(key('path', '/api/v1/users?id=7&x=1'), '/api/v1/users');
    assert.equal(key('path', '/api/v1/users'), '/api/v1/users');
    assert.equal(key('path', '/?a=1'), '/');
  });

  it('client_ip', () => {
    assert.equal(key('client_ip', '/'), '192.0.2.7');
    assert.equal(requestHashKey('client_ip', req('/'), '2001:db8::1'), '2001:db8::1');
    assert.equal(requestHashKey('client_ip', req('/'), ''), undefined);
  });

  describe('header:NAME', () => {
    it('matches names case-insensitively on both sides', () => {
      assert.equal(key('header:x-user', '/', [['X-User', 'alice']]), 'alice');
      assert.equal(key('header:X-USER', '/', [['x-user', 'bob']]), 'bob');
    });

    it('combines repeated fields as one', () => {
      const headers: Headers = [
        ['x-tenant', 'a'],
        ['accept', '*/*'],
        ['X-Tenant', 'b'],
      ];
      assert.equal(key('header:x-tenant', '/', headers), 'a, b');
    });

    it('keeps an empty value, and is undefined when the header is missing', () => {
      assert.equal(key('header:x-user', '/', [['x-user', '']]), '');
      assert.equal(key('header:x-user', '/', [['x-other', 'v']]), undefined);
      assert.equal(key('header:x-user', '/'), undefined);
    });
  });

  describe('cookie:NAME', () => {
    it('reads one cookie out of a `; ` joined header', () => {
      assert.equal(key('cookie:session', '/', [['cookie', 'theme=dark; session=abc123; lang=en']]), 'abc123');
    });

    it('reads cookies across several cookie headers, any header-name case', () => {
      const headers: Headers = [
        ['cookie', 'theme=dark'],
        ['Cookie', 'session=s-42'],
      ];
      assert.equal(key('cookie:session', '/', headers), 's-42');
      assert.equal(key('cookie:theme', '/', headers), 'dark');
    });

    it('takes the first of repeated cookies and keeps = inside values', () => {
      const headers: Headers = [
        ['cookie', 'sid=one;sid=two'],
        ['cookie', 'tok=a=b=='],
      ];
      assert.equal(key('cookie:sid', '/', headers), 'one');
      assert.equal(key('cookie:tok', '/', headers), 'a=b==');
    });

    it('matches the cookie name exactly and is undefined when it is missing', () => {
      const headers: Headers = [['cookie', 'Session=upper; other=1; flag']];
      assert.equal(key('cookie:session', '/', headers), undefined);
      assert.equal(key('cookie:flag', '/', headers), undefined);
      assert.equal(key('cookie:session', '/', [['x-cookie', 'session=1']]), undefined);
      assert.equal(key('cookie:session', '/'), undefined);
    });
  });

  describe('query:NAME', () => {
    it('takes the first value, URL-decoded', () => {
      assert.equal(key('query:user', '/search?q=1&user=j%C3%B6rg%20m&user=other'), 'jörg m');
      assert.equal(key('query:q', '/search?q=a+b%2Bc'), 'a b+c');
    });

    it('decodes parameter names too, and keeps an empty value', () => {
      assert.equal(key('query:user_id', '/x?user%5Fid=9'), '9');
      assert.equal(key('query:flag', '/x?flag&y=1'), '');
      assert.equal(key('query:y', '/x?flag&y='), '');
    });

    it('is undefined when the parameter or the query string is missing', () => {
      assert.equal(key('query:user', '/search?q=1'), undefined);
      assert.equal(key('query:user', '/search'), undefined);
      assert.equal(key('query:user', '/search?'), undefined);
    });

    it('does not read query parameters from headers or the path', () => {
      assert.equal(key('query:user', '/user/7', [['user', '7']]), undefined);
    });
  });

  it('is undefined for a spec of no known form', () => {
    assert.equal(key('body:x', '/'), undefined);
    assert.equal(key('header:', '/', [['', 'v']]), undefined);
    assert.equal(key('method', '/'), undefined);
  });
});
