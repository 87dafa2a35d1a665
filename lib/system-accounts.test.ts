import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { groupId, parseAccountFile } from './system-accounts.js';

describe('parseAccountFile', () => {
  it('maps each name to the third field; the first entry of a name wins; malformed lines are skipped', () => {
    const text = [
      'root:x:0:',
      'spooky:x:998:alice,bob',
      'spooky:x:1234:',
      'broken',
      'noid:x::',
      'word:x:abc:',
      '',
    ].join('\n');
    assert.deepEqual(
      [...parseAccountFile(text)],
      [
        ['root', 0],
        ['spooky', 998],
      ],
    );
  });
});

describe('groupId', () => {
  it('takes a numeric id as it is and knows no group that does not exist', () => {
    assert.equal(groupId('4242'), 4242);
    assert.equal(groupId('root'), 0);
    assert.equal(groupId('no-such-group-spooky-test'), null);
  });
});
