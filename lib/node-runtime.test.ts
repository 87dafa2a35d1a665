import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isSupportedNode, NODE_FLOOR_MAJOR, nodeMajor } from './node-runtime.js';
import { VERSION } from './version.js';

const dist = (rel: string) => fileURLToPath(new URL(`../${rel}`, import.meta.url));

test('the floor is Node.js 24, and this test runs on it', () => {
  assert.equal(NODE_FLOOR_MAJOR, 24);
  assert.equal(nodeMajor('v24.22.3'), 24);
  assert.equal(nodeMajor('26.10.0'), 26);
  assert.ok(Number.isNaN(nodeMajor('garbage')));
  assert.equal(isSupportedNode('20.20.2'), false);
  assert.equal(isSupportedNode('23.11.0'), false);
  assert.equal(isSupportedNode('24.0.0'), true);
  assert.ok(isSupportedNode(), `the tests run on ${process.version}`);
});

test("--version prints Spooky's version and the Node.js it runs on, for the CLI and both daemons", () => {
  for (const main of ['cli/main.js', 'dataplane/main.js', 'controlplane/main.js']) {
    const out = execFileSync(process.execPath, [dist(main), '--version'], { encoding: 'utf8' });
    assert.equal(out.trim(), `${VERSION} (Node.js ${process.version})`, main);
  }
});

// This machine kind ships Node 20 as /usr/bin/node: run the daemons on it, as an operator who
// kept the distribution's Node would.
const OLD_NODE = ['/usr/bin/node', '/usr/local/bin/node'].find((p) => {
  if (!existsSync(p)) return false;
  const v = spawnSync(p, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
  return v !== '' && !isSupportedNode(v);
});

test('the daemons refuse to start on a Node below 24, with the fix', {
  skip: OLD_NODE ? false : 'no Node below 24 on this machine',
}, () => {
  for (const main of ['dataplane/main.js', 'controlplane/main.js']) {
    const r = spawnSync(OLD_NODE as string, [dist(main), '--config', '/nonexistent.yaml'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(r.status, 1, `${main}: ${r.stderr}`);
    assert.match(
      r.stderr,
      /^spooky: Spooky needs Node\.js 24 or newer; this is v\d+\.\d+\.\d+ \(.+\)\. Fix: install Node\.js 24 LTS or newer .*\. scripts\/use-node\.sh/,
    );
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
