import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type AppliedRecord, AppliedStore, sha256 } from './applied-store.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function record(version: number, yaml: string): AppliedRecord {
  return { version, sha256: sha256(yaml), appliedAt: 'now', appliedBy: 'test', baseDir: '/etc/spooky', yaml };
}

describe('AppliedStore', () => {
  it('keeps current and previous across instances (a restart)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spooky-store-'));
    dirs.push(dir);
    const store = new AppliedStore(dir);
    store.init();
    assert.equal(store.current(), null);
    store.commit(record(1, 'one: 1\n'));
    store.commit(record(2, 'two: 2\n'));
    const again = new AppliedStore(dir);
    assert.deepEqual(again.current(), record(2, 'two: 2\n'));
    assert.deepEqual(again.previous(), record(1, 'one: 1\n'));
    const files = readdirSync(join(dir, 'config')).sort();
    assert.deepEqual(files, ['current.json', 'current.yaml', 'previous.json', 'previous.yaml'], 'no temp files left');
    assert.equal(statSync(join(dir, 'config', 'current.yaml')).mode & 0o777, 0o640);
  });

  it('treats a torn pair (YAML not matching its recorded hash) as absent', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spooky-store-'));
    dirs.push(dir);
    const store = new AppliedStore(dir);
    store.init();
    store.commit(record(3, 'three: 3\n'));
    writeFileSync(join(dir, 'config', 'current.yaml'), 'half a write');
    assert.equal(store.current(), null);
  });

  it('stage writes nothing visible and fails when the state cannot be written', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spooky-store-'));
    dirs.push(dir);
    const store = new AppliedStore(dir);
    store.init();
    store.commit(record(1, 'one: 1\n'));
    const staged = store.stage(record(2, 'two: 2\n'));
    assert.equal(store.current()?.version, 1, 'staged is not current');
    staged.abort();
    assert.deepEqual(readdirSync(join(dir, 'config')).sort(), ['current.json', 'current.yaml']);
    rmSync(join(dir, 'config', 'current.yaml'));
    mkdirSync(join(dir, 'config', 'current.yaml'));
    assert.throws(() => store.stage(record(3, 'three: 3\n')), /is a directory/);
    assert.deepEqual(readdirSync(join(dir, 'config')).sort(), ['current.json', 'current.yaml']);
  });

  it('a reserved version survives a restart without any commit (a crash during the push)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'spooky-store-'));
    dirs.push(dir);
    const store = new AppliedStore(dir);
    store.init();
    assert.equal(store.highestVersion(), 0);
    store.commit(record(1, 'one: 1\n'));
    assert.equal(store.highestVersion(), 1);
    store.stage(record(2, 'two: 2\n'));
    store.reserveVersion(2);
    // killed here: nothing committed
    const again = new AppliedStore(dir);
    assert.equal(again.current()?.version, 1);
    assert.equal(again.highestVersion(), 2);
    again.reserveVersion(1);
    assert.equal(again.highestVersion(), 2, 'never goes down');
  });
});
