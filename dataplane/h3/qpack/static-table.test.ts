import assert from 'node:assert/strict';
import { test } from 'node:test';
import { STATIC_TABLE, staticExactIndex, staticNameEntry, staticNameIndex } from './static-table.js';

test('the static table has the 99 entries of RFC 9204 Appendix A', () => {
  assert.equal(STATIC_TABLE.length, 99);
  assert.deepEqual(STATIC_TABLE[0], [':authority', '']);
  assert.deepEqual(STATIC_TABLE[1], [':path', '/']);
  assert.deepEqual(STATIC_TABLE[17], [':method', 'GET']);
  assert.deepEqual(STATIC_TABLE[25], [':status', '200']);
  assert.deepEqual(STATIC_TABLE[29], ['accept', '*/*']);
  assert.deepEqual(STATIC_TABLE[63], [':status', '100']);
  assert.deepEqual(STATIC_TABLE[85], [
    'content-security-policy',
    "script-src 'none'; object-src 'none'; base-uri 'none'",
  ]);
  assert.deepEqual(STATIC_TABLE[98], ['x-frame-options', 'sameorigin']);
  for (const [name] of STATIC_TABLE) assert.equal(name, name.toLowerCase());
});

test('exact lookups find the index of a (name, value) pair', () => {
  assert.equal(staticExactIndex(':method', 'GET'), 17);
  assert.equal(staticExactIndex(':status', '500'), 71);
  assert.equal(staticExactIndex('x-frame-options', 'sameorigin'), 98);
  assert.equal(staticExactIndex(':method', 'PATCH'), -1);
  assert.equal(staticExactIndex('x-unknown', ''), -1);
  for (let i = 0; i < STATIC_TABLE.length; i++) assert.equal(staticExactIndex(...STATIC_TABLE[i]), i);
});

test('name lookups find the first index with that name', () => {
  assert.equal(staticNameIndex(':method'), 15);
  assert.equal(staticNameIndex(':status'), 24);
  assert.equal(staticNameIndex('content-type'), 44);
  assert.equal(staticNameIndex('user-agent'), 95);
  assert.equal(staticNameIndex('User-Agent'), -1);
  assert.equal(staticNameEntry(':scheme')?.index, 22);
  assert.equal(staticNameEntry(':scheme')?.values.get('https'), 23);
  assert.equal(staticNameEntry('x-unknown'), undefined);
});
