import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hostWarnings } from './startup-checks.js';

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function fakeProc(rmemMax: number, nofile: string): string {
  const root = mkdtempSync(join(tmpdir(), 'spooky-proc-'));
  roots.push(root);
  mkdirSync(join(root, 'sys', 'net', 'core'), { recursive: true });
  mkdirSync(join(root, 'self'), { recursive: true });
  writeFileSync(join(root, 'sys', 'net', 'core', 'rmem_max'), `${rmemMax}\n`);
  writeFileSync(
    join(root, 'self', 'limits'),
    `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${nofile}              1048576              files\n`,
  );
  return root;
}

describe('hostWarnings', () => {
  it('is quiet on a tuned host', () => {
    assert.deepEqual(hostWarnings(fakeProc(67108864, '1048576')), []);
    assert.deepEqual(hostWarnings(fakeProc(134217728, 'unlimited')), []);
  });

  it('warns about a small rmem_max and a low nofile, each with the fix', () => {
    const w = hostWarnings(fakeProc(212992, '1024'));
    assert.deepEqual(
      w.map((x) => x.check),
      ['rmem_max', 'nofile'],
    );
    assert.match(w[0].message, /212992 bytes.*sysctl -w net\.core\.rmem_max=67108864.*99-spooky\.conf/);
    assert.match(w[1].message, /1024, below 65536.*LimitNOFILE=1048576/);
  });

  it('says nothing about what it cannot read', () => {
    assert.deepEqual(hostWarnings('/nonexistent-proc'), []);
  });
});
