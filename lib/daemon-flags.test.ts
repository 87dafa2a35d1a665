import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DAEMON_NODE_FLAGS, DAEMON_SHEBANG } from './daemon-flags.js';

const dist = (rel: string) => fileURLToPath(new URL(`../${rel}`, import.meta.url));

test("the daemons' #! lines carry the same Node flags as their spawned starts", () => {
  for (const main of ['dataplane/main.js', 'controlplane/main.js']) {
    assert.equal(readFileSync(dist(main), 'utf8').split('\n')[0], DAEMON_SHEBANG, main);
  }
});

test('the flags are ones this Node accepts', () => {
  const out = execFileSync(process.execPath, [...DAEMON_NODE_FLAGS, '-p', 'process.execArgv.join(" ")'], {
    encoding: 'utf8',
  });
  assert.ok(out.trim().startsWith(DAEMON_NODE_FLAGS.join(' ')), out);
});

test('a daemon started through its #! line (as systemd does) runs with the flags', () => {
  // The kernel runs the interpreter with the rest of the line as one argument, then the script.
  const space = DAEMON_SHEBANG.indexOf(' ');
  const [interpreter, argument] = [DAEMON_SHEBANG.slice(2, space), DAEMON_SHEBANG.slice(space + 1)];
  const out = execFileSync(interpreter, [argument, '-p', 'process.execArgv.join(" ")'], { encoding: 'utf8' });
  assert.ok(out.trim().startsWith(DAEMON_NODE_FLAGS.join(' ')), out);
});
