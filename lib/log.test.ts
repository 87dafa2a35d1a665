import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createLogger } from './log.js';

const dir = mkdtempSync(join(tmpdir(), 'spooky-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('createLogger', () => {
  it('json: one object per line with time, level, msg, component; secrets redacted', () => {
    const file = join(dir, 'json.log');
    const log = createLogger({ level: 'info', format: 'json', component: 'test', destination: file });
    log.info(
      { token: 'sekrit-1', authorization: 'Bearer sekrit-2', req: { authorization: 'Bearer sekrit-3' }, keep: 'me' },
      'hello',
    );
    log.debug('below the level');
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(lines.length, 1);
    const o = JSON.parse(lines[0]);
    assert.equal(o.msg, 'hello');
    assert.equal(o.component, 'test');
    assert.equal(o.level, 30);
    assert.match(o.time, /^\d{4}-\d\d-\d\dT/);
    assert.equal(o.keep, 'me');
    assert.doesNotMatch(lines[0], /sekrit/);
  });

  it('plain: readable lines with the level, component and fields; secrets redacted', () => {
    const file = join(dir, 'plain.log');
    const log = createLogger({ level: 'warn', format: 'plain', component: 'dataplane', destination: file });
    log.info('hidden');
    log.warn({ port: 443, auth_token: 'sekrit-4' }, 'careful');
    const text = readFileSync(file, 'utf8');
    assert.match(text, /^\S+ WARN {2}dataplane careful port=443 auth_token=.*\n$/);
    assert.doesNotMatch(text, /sekrit|hidden/);
  });
});
