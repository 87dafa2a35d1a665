import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { applyHeapGrowing, HEAP_GROWING_PERCENT } from './heap-growing.js';

test("an operator's --heap-growing-percent on the command line (- or _) is kept", () => {
  assert.deepEqual(applyHeapGrowing(['--max-semi-space-size=16', '--heap-growing-percent=20']), {
    percent: 20,
    source: 'operator',
  });
  assert.deepEqual(applyHeapGrowing(['--heap_growing_percent=35', '--trace-warnings']), {
    percent: 35,
    source: 'operator',
  });
});

test('V8 knows the flag: set at run time, an unknown one would be ignored without a word', () => {
  // On the command line an unknown flag is an error, so this fails the day V8 drops or renames it.
  const ok = spawnSync(process.execPath, [`--heap-growing-percent=${HEAP_GROWING_PERCENT}`, '-e', '0'], {
    encoding: 'utf8',
  });
  assert.equal(ok.status, 0, ok.stderr);
  const bogus = spawnSync(process.execPath, ['--heap-growing-percentage=200', '-e', '0'], { encoding: 'utf8' });
  assert.notEqual(bogus.status, 0, 'the check tells an unknown flag');
});

test('applied when the operator set none', () => {
  const module = fileURLToPath(new URL('./heap-growing.js', import.meta.url));
  const out = execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `console.log(JSON.stringify((await import(${JSON.stringify(module)})).applyHeapGrowing([])))`,
    ],
    { encoding: 'utf8' },
  );
  assert.deepEqual(JSON.parse(out), { percent: HEAP_GROWING_PERCENT, source: 'spooky' });
});
