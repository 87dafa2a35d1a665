import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sourceKey } from './source-key.js';

describe('sourceKey', () => {
  it('keeps an IPv4 address whole', () => {
    assert.equal(sourceKey('192.0.2.1'), '192.0.2.1');
    assert.equal(sourceKey('127.0.0.2'), '127.0.0.2');
    assert.notEqual(sourceKey('127.0.0.1'), sourceKey('127.0.0.2'));
  });

  it('counts an IPv4-mapped IPv6 address as the IPv4 address (dotted or hex)', () => {
    assert.equal(sourceKey('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(sourceKey('::FFFF:192.0.2.1'), '192.0.2.1');
    assert.equal(sourceKey('::ffff:c000:201'), '192.0.2.1');
    assert.equal(sourceKey('0:0:0:0:0:ffff:c000:0201'), '192.0.2.1');
  });

  it('counts IPv6 by /64, whatever the notation', () => {
    const key = '2001:db8:a:b::/64';
    assert.equal(sourceKey('2001:db8:a:b:1:2:3:4'), key);
    assert.equal(sourceKey('2001:db8:a:b::1'), key);
    assert.equal(sourceKey('2001:0DB8:000a:000b:ffff:ffff:ffff:ffff'), key);
    assert.equal(sourceKey('2001:db8:a:b::1%eth0'), key);
    assert.equal(sourceKey('2001:db8:a:b:0:0:192.0.2.1'), key);
    assert.notEqual(sourceKey('2001:db8:a:c::1'), key);
  });

  it('handles the short forms', () => {
    assert.equal(sourceKey('::1'), '0:0:0:0::/64');
    assert.equal(sourceKey('::'), '0:0:0:0::/64');
    assert.equal(sourceKey('fe80::1'), 'fe80:0:0:0::/64');
    assert.equal(sourceKey('2001:db8::'), '2001:db8:0:0::/64');
    assert.equal(sourceKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
  });

  it('keeps anything unparsable as its own key', () => {
    for (const bad of ['1:2:3', '1::2::3', '1:2:3:4:5:6:7:8:9', 'zz::1', '::1.2.3', '::1.2.3.999', '']) {
      assert.equal(sourceKey(bad), bad, bad);
    }
  });
});
