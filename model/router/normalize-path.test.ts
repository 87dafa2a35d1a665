import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizePath } from './normalize-path.js';

const norm = (p: string) => {
  const r = normalizePath(p);
  return 'path' in r ? r.path : `! ${r.problem}`;
};

describe('normalizePath (RFC 3986 §5.2.4, §6.2.2.2)', () => {
  it('leaves ordinary targets alone (same string)', () => {
    for (const p of ['/', '/a/b', '/a/b/', '/a//b', '/a.b/c..d/.e', '/a?x=/../y', '*', '/a%20b', '/a%2fb']) {
      assert.equal(norm(p), p, p);
    }
  });
  it('removes dot-segments', () => {
    assert.equal(norm('/h1/../admin'), '/admin');
    assert.equal(norm('/a/./b'), '/a/b');
    assert.equal(norm('/a/b/..'), '/a/');
    assert.equal(norm('/a/.'), '/a/');
    assert.equal(norm('/a/..'), '/');
    assert.equal(norm('/a/b/../../c?q=/..'), '/c?q=/..');
  });
  it('decodes escaped unreserved characters, before removing dot-segments', () => {
    assert.equal(norm('/%7Euser'), '/~user');
    assert.equal(norm('/%41%62c'), '/Abc');
    assert.equal(norm('/h1/%2e%2e/admin'), '/admin');
    assert.equal(norm('/h1/%2E./admin'), '/admin');
    // Reserved characters stay escaped: %2F is data, not a separator.
    assert.equal(norm('/h1/..%2fadmin'), '/h1/..%2fadmin');
    assert.equal(norm('/a%2F%7e'), '/a%2F~');
  });
  it('refuses paths above the root and malformed escapes', () => {
    assert.equal(norm('/..'), '! path climbs above the root');
    assert.equal(norm('/a/../../b'), '! path climbs above the root');
    assert.equal(norm('/%2e%2e/b'), '! path climbs above the root');
    assert.equal(norm('/a%'), '! malformed percent-encoding');
    assert.equal(norm('/a%4'), '! malformed percent-encoding');
    assert.equal(norm('/a%zz'), '! malformed percent-encoding');
  });
});
