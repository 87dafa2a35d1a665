/**
 * Issue #12 item 7: names that are also property names of JavaScript objects. A pool named
 * `__proto__` validated as "2 pools" for 3 written, applied with exit 0, and its routes answered
 * 404; a request header named `constructor` reached the backend as
 * "function Object() { [native code] }, VALUE". Now `__proto__` as a pool name is refused with a
 * clear error, and every other such name (pools, backend ids, header names) just works: checked
 * with the real CLI, spooky-control, spooky-dataplane and clients on both listeners.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import {
  DIST,
  type RunningControl,
  type RunningDataplane,
  run,
  startControl,
  startDataplane,
} from './support/harness.js';
import { config, newSetup, type Setup, spooky } from './support/pair.js';

const CLI = join(DIST, 'cli', 'main.js');

/** A header received as a field of its own (not something inherited from Object.prototype). */
const own = (headers: object | undefined, name: string): unknown =>
  headers === undefined ? undefined : Object.getOwnPropertyDescriptor(headers, name)?.value;

/** An HTTP/2 backend that records request headers and answers with a `constructor` header. */
async function startHeaderBackend(): Promise<{
  origin: string;
  seen: http2.IncomingHttpHeaders[];
  close(): Promise<void>;
}> {
  const seen: http2.IncomingHttpHeaders[] = [];
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    seen.push(headers);
    stream.on('error', () => {});
    // fromEntries defines `__proto__` as a field (an object literal would set the prototype).
    stream.respond(
      Object.fromEntries([
        [':status', 200],
        ['constructor', 'from-backend'],
        ['__proto__', 'also-from-backend'],
      ]),
    );
    stream.end('ok\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe('names that are JavaScript object keys', () => {
  let s: Setup;
  let cp: RunningControl;
  let dp: RunningDataplane;
  const demo: Record<string, DemoBackend> = Object.create(null);
  let headers: Awaited<ReturnType<typeof startHeaderBackend>>;

  // constructor, toString and hasOwnProperty as pool names and (crossed) backend ids.
  const goodPools = () => `  constructor:
    route: { path_prefix: /c }
    backends: [{ id: toString, address: "${demo.c.origin}" }]
  toString:
    route: { path_prefix: /t }
    backends: [{ id: valueOf, address: "${demo.t.origin}" }]
  hasOwnProperty:
    route: { path_prefix: /h }
    backends: [{ id: constructor, address: "${demo.h.origin}" }]
  valueOf:
    route: { path_prefix: /r }
    backends: [{ id: hasOwnProperty, address: "${headers.origin}" }]
`;
  const protoPools = () => `  a:
    route: { path_prefix: /a }
    backends: [{ id: a, address: "${demo.c.origin}" }]
  __proto__:
    route: { path_prefix: /p }
    backends: [{ id: p, address: "${demo.t.origin}" }]
  b:
    route: { path_prefix: /b }
    backends: [{ id: b, address: "${demo.h.origin}" }]
`;
  const withTcp = (text: string) => text.replace('tcp: { enabled: false }', 'tcp: { enabled: true }');

  before(async () => {
    for (const name of ['c', 't', 'h']) demo[name] = await startDemoBackend(name);
    headers = await startHeaderBackend();
    s = newSetup();
    // Start on one ordinary pool; the names arrive with an apply.
    writeFileSync(s.file, withTcp(config(s, `  start:\n    backends: [{ id: start, address: "${demo.c.origin}" }]\n`)));
    cp = await startControl(s.file);
    dp = await startDataplane(readFileSync(s.file, 'utf8'), { file: s.file });
  });

  after(async () => {
    await dp?.stop();
    await cp?.stop();
    for (const b of Object.values(demo)) await b.close();
    await headers?.close();
  });

  it('spooky validate refuses a pool named __proto__ with a clear error (it used to count 2 pools of 3)', async () => {
    const file = join(s.dir, 'proto.yaml');
    writeFileSync(file, config(s, protoPools()));
    const r = await run(process.execPath, [CLI, 'validate', file]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /proto\.yaml:\d+:\d+: upstream\.__proto__: pool name "__proto__" is not allowed/);
    assert.doesNotMatch(r.stdout, /2 pools/);
  });

  it('spooky apply and the control API refuse it too; nothing changes', async () => {
    const file = join(s.dir, 'proto.yaml');
    const cli = await spooky(s, cp, 'apply', file);
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(cli.stderr, /upstream\.__proto__: pool name "__proto__" is not allowed/);
    const token = readFileSync(join(s.dir, 'state', 'control.token'), 'utf8').trim();
    const res = await fetch(`${cp.apiUrl}/v1/config`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: readFileSync(file, 'utf8'),
    });
    assert.equal(res.status, 422);
    const body = (await res.json()) as { errors: Array<{ path: string }> };
    assert.deepEqual(
      body.errors.map((e) => e.path),
      ['upstream.__proto__'],
    );
  });

  it('validates, applies and routes pools and backends named constructor, toString, hasOwnProperty and valueOf', async () => {
    const file = join(s.dir, 'good.yaml');
    writeFileSync(file, withTcp(config(s, goodPools())));
    const v = await run(process.execPath, [CLI, 'validate', file]);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /4 pools, 4 backends/);
    const applied = await spooky(s, cp, 'apply', file);
    assert.equal(applied.code, 0, applied.stderr);
    const c = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
    try {
      for (const [path, backend] of [
        ['/c/x', 'c'],
        ['/t', 't'],
        ['/h?q=1', 'h'],
      ]) {
        const r = await c.fetch({ path, authority: 'localhost' });
        assert.equal(r.status, 200, `${path}: ${r.body}`);
        assert.equal(JSON.parse(r.body.toString()).backend, backend, path);
      }
      assert.equal((await c.fetch({ path: '/elsewhere', authority: 'localhost' })).status, 404);
    } finally {
      await c.close();
    }
    const listed = JSON.parse((await spooky(s, cp, 'backends', '--json')).stdout) as {
      backends: Array<{ id: string }>;
    };
    assert.deepEqual(listed.backends.map((b) => b.id).sort(), ['constructor', 'hasOwnProperty', 'toString', 'valueOf']);
  });

  it('forwards request fields named constructor and __proto__ as sent (HTTP/3 → HTTP/2)', async () => {
    const c = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
    try {
      const r = await c.fetch({
        path: '/c/fields',
        authority: 'localhost',
        headers: [
          ['constructor', 'one'],
          ['__proto__', 'two'],
        ],
      });
      assert.equal(r.status, 200);
    } finally {
      await c.close();
    }
    const seen = demo.c.seen.at(-1)?.headers;
    assert.equal(own(seen, 'constructor'), 'one');
    assert.equal(own(seen, '__proto__'), 'two');
  });

  it('passes such fields both ways on the TCP listener (HTTP/2 client → backend → client)', async () => {
    const session = http2.connect(`https://127.0.0.1:${dp.port}`, { rejectUnauthorized: false });
    session.on('error', () => {});
    try {
      const req = session.request({ ':path': '/r', ':authority': 'localhost', constructor: 'three' });
      const got = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        req.on('response', resolve);
        req.on('error', reject);
        req.setTimeout(10_000, () => reject(new Error('no response within 10 s')));
      });
      req.resume();
      assert.equal(got[':status'], 200);
      assert.equal(own(got, 'constructor'), 'from-backend');
      assert.equal(own(got, '__proto__'), 'also-from-backend');
      assert.equal(own(headers.seen.at(-1), 'constructor'), 'three');
    } finally {
      session.close();
    }
  });
});
