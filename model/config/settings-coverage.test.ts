// Issue 13 item 4: every key of deploy/examples/reference.yaml is either acted on (a test that
// exercises it is named in settings-coverage.ts) or refused at validation. No key is accepted and
// ignored. Keys still pending or untested are reported as todo, so they stay visible.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { setKeyPath, yamlLeaves } from './key-paths.js';
import { formatIssues, loadConfigText } from './load.js';
import { SETTINGS_COVERAGE, type SettingEvidence } from './settings-coverage.js';

// dist/model/config/ → the repository root, where the .ts sources are.
const REPO = new URL('../../../', import.meta.url).pathname;
const REFERENCE = join(REPO, 'deploy', 'examples', 'reference.yaml');
const referenceText = readFileSync(REFERENCE, 'utf8');

const entries = Object.entries(SETTINGS_COVERAGE);
const ofKind = <K extends string>(kind: K) =>
  entries.filter((e): e is [string, Extract<SettingEvidence, Record<K, unknown>>] => kind in e[1]);

/** The last segment of a key path: `backends[].health_check.path` → `path`. */
const lastSegment = (key: string) => (key.split('.').at(-1) ?? key).replace(/\[\]$/, '');

const source = (file: string) => {
  const path = join(REPO, file);
  return existsSync(path) ? readFileSync(path, 'utf8') : null;
};

describe('every reference.yaml key is acted on or refused (settings-coverage.ts)', () => {
  it('the table has exactly the keys of deploy/examples/reference.yaml', () => {
    const reference = [...yamlLeaves(parse(referenceText))].sort();
    const table = Object.keys(SETTINGS_COVERAGE).sort();
    assert.ok(reference.length > 90, `only ${reference.length} keys found in ${REFERENCE}`);
    assert.deepEqual(
      reference.filter((k) => !table.includes(k)),
      [],
      'keys of reference.yaml without an entry in settings-coverage.ts: name the test that exercises each',
    );
    assert.deepEqual(
      table.filter((k) => !reference.includes(k)),
      [],
      'entries of settings-coverage.ts for keys reference.yaml no longer has',
    );
  });

  it('each named test exists, has the title and mentions the key', () => {
    const problems: string[] = [];
    for (const [key, e] of ofKind('test')) {
      if (!/\.test\.ts$/.test(e.test)) problems.push(`${key}: ${e.test} is not a test file`);
      const text = source(e.test);
      if (text === null) {
        problems.push(`${key}: ${e.test} does not exist`);
        continue;
      }
      if (!text.includes(e.title)) problems.push(`${key}: ${e.test} has no test titled "${e.title}"`);
      const segment = lastSegment(key);
      const word = new RegExp(`\\b${segment}\\b`);
      const files = [e.test, ...(e.via ?? [])];
      if (!files.some((f) => word.test(source(f) ?? ''))) {
        problems.push(`${key}: none of ${files.join(', ')} mentions ${segment}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('the reference config itself validates (the refusals below are the changed value alone)', () => {
    const r = loadConfigText(referenceText, 'reference.yaml');
    assert.ok(r.ok, r.ok ? '' : formatIssues('reference.yaml', r.errors));
  });

  for (const [key, e] of ofKind('refused')) {
    it(`refuses ${key}: ${JSON.stringify(e.refused)}`, () => {
      const doc = parse(referenceText);
      assert.ok(setKeyPath(doc, key, e.refused) > 0, `${key} is not in reference.yaml`);
      const r = loadConfigText(stringify(doc), 'reference.yaml');
      assert.equal(r.ok, false, `${key}: ${JSON.stringify(e.refused)} validates`);
      const messages = r.ok ? [] : r.errors.map((i) => `${i.path}: ${i.message}`);
      assert.ok(
        messages.some((m) => e.message.test(m)),
        `no error matches ${e.message}: ${messages.join('; ')}`,
      );
    });
  }

  // Visible in every run until the lead names their tests (pending) or one is written (untested).
  for (const [key, e] of ofKind('pending')) it(`${key}: pending`, { todo: e.pending }, () => {});
  for (const [key, e] of ofKind('untested')) it(`${key}: untested`, { todo: e.untested }, () => {});
});
