/** The same walking-skeleton checks with a third-party HTTP/3 client: ngtcp2's gtlsclient. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import {
  dataplaneConfig,
  gtlsclient,
  gtlsStatuses,
  type RunningDataplane,
  startDataplane,
  tempDir,
} from './support/harness.js';

describe('gtlsclient through spooky-dataplane', () => {
  let a: DemoBackend;
  let b: DemoBackend;
  let dp: RunningDataplane;
  let base: string;

  before(async () => {
    a = await startDemoBackend('a');
    b = await startDemoBackend('b');
    dp = await startDataplane(
      dataplaneConfig(`  api:
    route: { path_prefix: /api }
    backends:
      - { id: api-a, address: "${a.origin}" }
  web:
    route: { path_prefix: / }
    backends:
      - { id: web-a, address: "${a.origin}" }
      - { id: web-b, address: "${b.origin}" }
`),
    );
    base = `https://localhost:${dp.port}`;
  });

  after(async () => {
    await dp?.stop();
    await a?.close();
    await b?.close();
  });

  it('GET / and /api/x reach the right pools', async () => {
    const dl = tempDir();
    const r = await gtlsclient(dp.port, [`${base}/api/x`], ['--download', dl]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(gtlsStatuses(r.stderr + r.stdout), [200]);
    const body = JSON.parse(readFileSync(join(dl, 'x'), 'utf8'));
    assert.equal(body.backend, 'a');
    assert.equal(body.path, '/api/x');
    assert.equal(body.authority, `localhost:${dp.port}`);
    const root = await gtlsclient(dp.port, [`${base}/`]);
    assert.equal(root.code, 0, root.stderr);
    assert.deepEqual(gtlsStatuses(root.stderr + root.stdout), [200]);
  });

  it('4 requests alternate a,b,a,b', async () => {
    const before = a.seen.length + b.seen.length;
    const order: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await gtlsclient(dp.port, [`${base}/alt/${i}`]);
      assert.equal(r.code, 0, r.stderr);
      order.push(a.seen.some((s) => s.path === `/alt/${i}`) ? 'a' : 'b');
    }
    assert.equal(a.seen.length + b.seen.length - before, 4);
    assert.ok(order.join() === 'a,b,a,b' || order.join() === 'b,a,b,a', order.join());
  });

  it('echoes a 5 MiB POST byte for byte', async () => {
    const dir = tempDir();
    const file = join(dir, 'upload.bin');
    const body = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31 + 7) & 0xff;
    writeFileSync(file, body);
    const dl = join(dir, 'out');
    mkdirSync(dl);
    // -q: the per-frame debug output of 10 MiB of traffic would take longer than the transfer.
    const r = await gtlsclient(dp.port, [`${base}/echo`], ['-q', '-m', 'POST', '--data', file, '--download', dl]);
    assert.equal(r.code, 0, r.stderr);
    const got = readFileSync(join(dl, readdirSync(dl)[0]));
    assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(body).digest('hex'));
  });

  it('downloads 2 MiB intact through tiny client flow-control windows', async () => {
    const dl = tempDir();
    const r = await gtlsclient(
      dp.port,
      [`${base}/bytes/2097152`],
      ['-q', '--max-data=65536', '--max-stream-data-bidi-local=16384', '--download', dl],
    );
    assert.equal(r.code, 0, r.stderr);
    const got = readFileSync(join(dl, '2097152'));
    assert.equal(got.length, 2097152);
    // The demo backend repeats one 64 KiB block of "spooky!…".
    const block = Buffer.alloc(65536, 'spooky!');
    assert.ok(got.equals(Buffer.concat(Array.from({ length: 32 }, () => block))), 'the bytes sent, in order');
  });

  it('100 concurrent streams on one connection all succeed', async () => {
    const r = await gtlsclient(dp.port, [`${base}/n`], ['-n', '100']);
    assert.equal(r.code, 0, r.stderr);
    const statuses = gtlsStatuses(r.stderr + r.stdout);
    assert.equal(statuses.length, 100);
    assert.ok(statuses.every((s) => s === 200));
  });

  it('receives response trailers', async () => {
    const r = await gtlsclient(dp.port, [`${base}/trailers`]);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stderr + r.stdout;
    assert.match(out, /\[x-checksum: abc123\]/);
    assert.match(out, /\[grpc-status: 0\]/);
  });
});
