import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseStrictJson } from '../e2e/support/strict-json.js';
import { BatchedLineWriter, componentLogger, createLogger, setLogLevel } from './log.js';

/** Lines leave at the end of the event-loop turn they were logged in. */
const turn = () => new Promise<void>((r) => setImmediate(r));

const dir = mkdtempSync(join(tmpdir(), 'spooky-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('createLogger', () => {
  it('json: one object per line with time, level, msg, component; secrets redacted', async () => {
    const file = join(dir, 'json.log');
    const log = createLogger({ level: 'info', format: 'json', component: 'test', destination: file });
    log.info(
      { token: 'sekrit-1', authorization: 'Bearer sekrit-2', req: { authorization: 'Bearer sekrit-3' }, keep: 'me' },
      'hello',
    );
    log.debug('below the level');
    await turn();
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

  it('plain: readable lines with the level, component and fields; secrets redacted', async () => {
    const file = join(dir, 'plain.log');
    const log = createLogger({ level: 'warn', format: 'plain', component: 'dataplane', destination: file });
    log.info('hidden');
    log.warn({ port: 443, auth_token: 'sekrit-4' }, 'careful');
    await turn();
    const text = readFileSync(file, 'utf8');
    assert.match(text, /^\S+ WARN {2}dataplane careful port=443 auth_token=.*\n$/);
    assert.doesNotMatch(text, /sekrit|hidden/);
  });

  it('json: a component logger names its component once (no duplicate key)', async () => {
    const file = join(dir, 'components.log');
    const log = createLogger({ level: 'info', format: 'json', component: 'dataplane', destination: file });
    const access = componentLogger(log, 'access');
    access.info({ status: 200 }, 'request');
    componentLogger(access, 'tcp').info('connection');
    log.info('main');
    await turn();
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const parsed = lines.map((l) => parseStrictJson(l) as Record<string, unknown>);
    assert.deepEqual(
      parsed.map((o) => o.component),
      ['access', 'tcp', 'dataplane'],
    );
    assert.equal(parsed[0].status, 200);
  });

  it('a component logger without redaction writes its fields as given; its siblings still redact', async () => {
    const file = join(dir, 'unredacted.log');
    const log = createLogger({ level: 'info', format: 'json', component: 'dataplane', destination: file });
    const access = componentLogger(log, 'access', { redact: false });
    access.info({ status: 200, path: '/a?key=1', client: '127.0.0.1' }, 'request');
    componentLogger(access, 'tcp').info({ token: 'sekrit-5', nested: { authorization: 'sekrit-6' } }, 'connection');
    await turn();
    const [a, t] = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => parseStrictJson(l) as Record<string, unknown>);
    assert.deepEqual([a?.component, a?.status, a?.path, a?.client], ['access', 200, '/a?key=1', '127.0.0.1']);
    assert.equal(t?.component, 'tcp');
    assert.equal(t?.token, '[Redacted]');
    assert.deepEqual(t?.nested, { authorization: '[Redacted]' });
  });

  it('setLogLevel sets the level of every component logger of the process', async () => {
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
    await turn();
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

describe('BatchedLineWriter', () => {
  it('writes the lines of one turn in one write, at once past 64 KiB', async () => {
    const writes: string[] = [];
    const w = new BatchedLineWriter({ write: (d: string) => writes.push(d) });
    for (let i = 0; i < 100; i++) w.write(`line ${i}\n`);
    assert.equal(writes.length, 0, 'nothing before the end of the turn');
    await turn();
    assert.equal(writes.length, 1);
    assert.equal(writes[0]?.split('\n').length, 101);
    const big = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 64; i++) w.write(big);
    assert.equal(writes.length, 2, 'a 64 KiB batch leaves without waiting');
    w.write('tail\n');
    await turn();
    assert.deepEqual(writes.slice(2), ['tail\n']);
  });

  it('what a process logged just before process.exit or a crash is written', async () => {
    const logUrl = new URL('./log.js', import.meta.url).href;
    for (const ending of ['process.exit(3)', "throw new Error('boom')"]) {
      const script = `import { createLogger } from ${JSON.stringify(logUrl)};
        const log = createLogger({ level: 'info', format: 'json', component: 't' });
        for (let i = 0; i < 3; i++) log.info({ i }, 'last words');
        ${ending};`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines.length, 3, `${ending}: ${r.stdout}${r.stderr}`);
      assert.deepEqual(
        lines.map((l) => (JSON.parse(l) as { i: number }).i),
        [0, 1, 2],
      );
    }
  });
});
