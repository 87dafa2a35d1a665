import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseStrictJson } from '../e2e/support/strict-json.js';
import { componentLogger, createLogger, setLogLevel } from './log.js';

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

  it('json: a component logger names its component once (no duplicate key)', () => {
    const file = join(dir, 'components.log');
    const log = createLogger({ level: 'info', format: 'json', component: 'dataplane', destination: file });
    const access = componentLogger(log, 'access');
    access.info({ status: 200 }, 'request');
    componentLogger(access, 'tcp').info('connection');
    log.info('main');
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const parsed = lines.map((l) => parseStrictJson(l) as Record<string, unknown>);
    assert.deepEqual(
      parsed.map((o) => o.component),
      ['access', 'tcp', 'dataplane'],
    );
    assert.equal(parsed[0].status, 200);
  });

  it('setLogLevel sets the level of every component logger of the process', () => {
    const file = join(dir, 'levels.log');
    const log = createLogger({ level: 'info', format: 'json', component: 'dataplane', destination: file });
    log.level = 'warn';
    const access = componentLogger(log, 'access');
    assert.equal(access.level, 'warn', 'created at the level of its sibling');
    setLogLevel(log, 'error');
    assert.equal(access.level, 'error');
    access.warn('hidden');
    setLogLevel(access, 'info');
    assert.equal(log.level, 'info');
    access.info('shown');
    assert.deepEqual(
      readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { msg: string }).msg),
      ['shown'],
    );
  });

  it('the strict parser refuses a duplicate key that JSON.parse accepts', () => {
    const line = '{"a":1,"component":"dataplane","b":[1,{"c":null}],"component":"access"}';
    assert.equal((JSON.parse(line) as { component: string }).component, 'access');
    assert.throws(() => parseStrictJson(line), /duplicate key "component"/);
    assert.deepEqual(parseStrictJson('{"a":1,"b":[1,{"c":null}],"s":"x\\"y"}'), {
      a: 1,
      b: [1, { c: null }],
      s: 'x"y',
    });
  });
});
