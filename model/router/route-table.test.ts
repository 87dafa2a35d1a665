import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizeHost, prefixMatches, RouteTable } from './route-table.js';

describe('normalizeHost', () => {
  it('lowercases and strips port and one trailing dot', () => {
    assert.equal(normalizeHost('Example.COM'), 'example.com');
    assert.equal(normalizeHost('example.com:443'), 'example.com');
    assert.equal(normalizeHost('example.com.'), 'example.com');
    assert.equal(normalizeHost('Example.com.:8443'), 'example.com');
    assert.equal(normalizeHost('example.com..'), 'example.com.');
  });

  it('handles IPv6 literals', () => {
    assert.equal(normalizeHost('[::1]:443'), '::1');
    assert.equal(normalizeHost('[::1]'), '::1');
    assert.equal(normalizeHost('[2001:DB8::1]'), '2001:db8::1');
    assert.equal(normalizeHost('2001:db8::1'), '2001:db8::1');
  });
});

describe('prefixMatches', () => {
  it('matches on segment boundaries only', () => {
    for (const path of ['/api', '/api/', '/api/v1', '/api?x=1', '/api/v1?y=2']) {
      assert.ok(prefixMatches('/api', path), path);
    }
    for (const path of ['/api2', '/apix/y', '/ap', '/', '/v1/api']) {
      assert.ok(!prefixMatches('/api', path), path);
    }
  });

  it('treats / and prefixes ending in / as boundaries', () => {
    assert.ok(prefixMatches('/', '/anything'));
    assert.ok(prefixMatches('/', '*'));
    assert.ok(prefixMatches('/api/', '/api/v1'));
    assert.ok(!prefixMatches('/api/', '/api'));
  });
});

describe('RouteTable', () => {
  const table = new RouteTable([
    { pool: 'default', pathPrefix: '/' },
    { pool: 'api', pathPrefix: '/api' },
    { pool: 'api-v2', pathPrefix: '/api/v2' },
    { pool: 'example-api', host: 'example.com', pathPrefix: '/api' },
    { pool: 'wild', host: '*.example.com', pathPrefix: '/' },
    { pool: 'wild-static', host: '*.example.com', pathPrefix: '/static' },
    { pool: 'deep-wild', host: '*.eu.example.com', pathPrefix: '/' },
    { pool: 'shop', host: 'Shop.Example.com.', pathPrefix: '/' },
  ]);

  it('prefers exact host routes', () => {
    assert.equal(table.match('example.com', '/api/users'), 'example-api');
    assert.equal(table.match('shop.example.com', '/static/x'), 'shop');
  });

  it('falls back from exact host to wildcard to host-less when the path does not match', () => {
    // example.com has only /api; *.example.com does not match example.com itself.
    assert.equal(table.match('example.com', '/other'), 'default');
    assert.equal(table.match('example.com', '/api2'), 'default');
    assert.equal(table.match('www.example.com', '/other'), 'wild');
    assert.equal(table.match('www.example.com', '/static/app.js'), 'wild-static');
    assert.equal(table.match('a.b.example.com', '/x'), 'wild');
  });

  it('tries the most specific wildcard first', () => {
    assert.equal(table.match('paris.eu.example.com', '/static/a'), 'deep-wild');
    assert.equal(table.match('eu.example.com', '/x'), 'wild');
  });

  it('uses host-less routes for unknown or absent hosts', () => {
    assert.equal(table.match('other.org', '/api/v1'), 'api');
    assert.equal(table.match(undefined, '/api/v2/x'), 'api-v2');
    assert.equal(table.match('', '/'), 'default');
  });

  it('picks the longest prefix on a segment boundary and ignores the query', () => {
    assert.equal(table.match(undefined, '/api'), 'api');
    assert.equal(table.match(undefined, '/api/'), 'api');
    assert.equal(table.match(undefined, '/api/v2'), 'api-v2');
    assert.equal(table.match(undefined, '/api/v20'), 'api');
    assert.equal(table.match(undefined, '/api?x=/api/v2'), 'api');
    assert.equal(table.match(undefined, '/api2'), 'default');
  });

  it('normalises the authority: case, port, trailing dot', () => {
    assert.equal(table.match('EXAMPLE.com:443', '/api'), 'example-api');
    assert.equal(table.match('example.com.', '/api'), 'example-api');
    assert.equal(table.match('WWW.Example.Com.:8443', '/'), 'wild');
    assert.equal(table.match('shop.example.com', '/'), 'shop');
  });

  it('returns undefined when nothing matches', () => {
    const narrow = new RouteTable([
      { pool: 'api', pathPrefix: '/api' },
      { pool: 'host', host: 'example.com', pathPrefix: '/' },
      { pool: 'wild', host: '*.example.org', pathPrefix: '/x' },
    ]);
    assert.equal(narrow.match('other.org', '/'), undefined);
    assert.equal(narrow.match(undefined, '/apix'), undefined);
    assert.equal(narrow.match('a.example.org', '/y'), undefined);
    assert.equal(narrow.match('example.org', '/x'), undefined);
    assert.equal(narrow.match('[::1]:443', '/api/x'), 'api');
    assert.equal(new RouteTable([]).match('example.com', '/'), undefined);
  });

  it('matches IPv6 hosts', () => {
    const t = new RouteTable([{ pool: 'v6', host: '[::1]', pathPrefix: '/' }]);
    assert.equal(t.match('[::1]:443', '/'), 'v6');
  });

  it('rejects identical routes and bad prefixes', () => {
    assert.throws(
      () =>
        new RouteTable([
          { pool: 'a', host: 'Example.com', pathPrefix: '/' },
          { pool: 'b', host: 'example.com.', pathPrefix: '/' },
        ]),
      /duplicate route/,
    );
    assert.throws(() => new RouteTable([{ pool: 'a', pathPrefix: 'api' }]), /must start with/);
    assert.equal(
      new RouteTable([
        { pool: 'a', pathPrefix: '/' },
        { pool: 'b', pathPrefix: '/x' },
      ]).size,
      2,
    );
  });
});
