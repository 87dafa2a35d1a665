/**
 * The walking skeleton end to end: Spooky's own HTTP/3 client → spooky-dataplane (a real
 * process) → real HTTP/2 backends.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { DIST, dataplaneConfig, type RunningDataplane, run, startDataplane, tempDir } from './support/harness.js';

const header = (fields: ReadonlyArray<readonly [string, string]>, name: string) =>
  fields.find((f) => f[0] === name)?.[1];

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

describe('proxying HTTP/3 to HTTP/2 with Spooky’s client', () => {
  let a: DemoBackend;
  let b: DemoBackend;
  let gone: DemoBackend;
  let dp: RunningDataplane;
  let client: H3ClientSession;

  before(async () => {
    a = await startDemoBackend('a');
    b = await startDemoBackend('b');
    gone = await startDemoBackend('gone');
    await gone.close(); // its port now refuses connections
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
  dead:
    route: { path_prefix: /dead }
    backends:
      - { id: dead-1, address: "${gone.origin}" }
  slow:
    route: { path_prefix: /hang }
    timeouts: { backend_timeout_ms: 800 }
    backends:
      - { id: slow-1, address: "${a.origin}" }
`),
    );
    client = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
  });

  after(async () => {
    await client?.close();
    await dp?.stop();
    await a?.close();
    await b?.close();
  });

  const get = (path: string, headers: Array<[string, string]> = []) =>
    client.fetch({ path, authority: `localhost:${dp.port}`, headers });

  it('routes / and /api/x to their pools', async () => {
    const api = await get('/api/x');
    assert.equal(api.status, 200);
    const apiBody = JSON.parse(api.body.toString());
    assert.equal(apiBody.backend, 'a');
    assert.equal(apiBody.path, '/api/x');
    const root = await get('/');
    assert.equal(root.status, 200);
    assert.ok(['a', 'b'].includes(JSON.parse(root.body.toString()).backend));
  });

  it('alternates a,b,a,b over a two-backend pool', async () => {
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) seen.push(JSON.parse((await get('/rr')).body.toString()).backend);
    assert.ok(seen.join() === 'a,b,a,b' || seen.join() === 'b,a,b,a', `expected alternation, got ${seen.join()}`);
  });

  it('echoes a 5 MiB POST byte for byte', async () => {
    const body = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7919) & 0xff;
    const res = await client.fetch({
      method: 'POST',
      path: '/echo',
      authority: `localhost:${dp.port}`,
      headers: [['content-type', 'application/octet-stream']],
      body,
    });
    assert.equal(res.status, 200);
    assert.equal(res.body.length, body.length);
    assert.equal(createHash('sha256').update(res.body).digest('hex'), createHash('sha256').update(body).digest('hex'));
  });

  it('ends a response whose body was acknowledged long before the backend finished', async () => {
    // quiche 0.18 drops a bare FIN written after every byte was acknowledged (the stream is
    // collected unsent): the client would wait for the idle timeout.
    const res = await withDeadline(get('/late-end?ms=300'), 5000, 'response never ended');
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'first line\n');
  });

  it('serves 100 concurrent streams on one connection', async () => {
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => get(`/many/${i}`)));
    for (const [i, r] of results.entries()) {
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body.toString()).path, `/many/${i}`);
    }
  });

  it('forwards response trailers', async () => {
    const res = await get('/trailers');
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'body before trailers\n');
    assert.ok(res.trailers, 'trailers arrived');
    assert.equal(header(res.trailers, 'x-checksum'), 'abc123');
    assert.equal(header(res.trailers, 'grpc-status'), '0');
  });

  it('passes :authority and replaces spoofed forwarding headers', async () => {
    const res = await get('/api/who', [
      ['x-forwarded-for', '6.6.6.6'],
      ['forwarded', 'for=6.6.6.6'],
      ['x-forwarded-proto', 'http'],
    ]);
    const seen = JSON.parse(res.body.toString());
    assert.equal(seen.authority, `localhost:${dp.port}`);
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.equal(seen.headers['x-forwarded-host'], `localhost:${dp.port}`);
    assert.match(seen.headers.forwarded, /^for=127\.0\.0\.1;proto=https;host="localhost:\d+"$/);
    assert.equal(seen.headers.via, '3 spooky');
    assert.match(seen.headers['x-request-id'], /^[0-9a-f]{20}$/);
    assert.equal(header(res.headers, 'x-request-id'), seen.headers['x-request-id']);
    assert.equal(header(res.headers, 'alt-svc'), `h3=":${dp.port}"; ma=86400`);
  });

  it('advertises the alt-svc port and max_age the config sets, or none when disabled', async () => {
    for (const [altSvc, expected] of [
      ['{ port: 443, max_age: 60 }', 'h3=":443"; ma=60'],
      ['{ enabled: false }', undefined],
    ] as const) {
      const config = dataplaneConfig(`  web:\n    backends:\n      - { id: w, address: "${a.origin}" }\n`).replace(
        '  port: 0\n',
        `  port: 0\n  alt_svc: ${altSvc}\n`,
      );
      const other = await startDataplane(config);
      const c = await H3ClientSession.connect('127.0.0.1', other.port, { insecure: true, serverName: 'localhost' });
      try {
        const res = await c.fetch({ path: '/', authority: 'localhost' });
        assert.equal(res.status, 200);
        assert.equal(header(res.headers, 'alt-svc'), expected);
      } finally {
        await c.close();
        await other.stop();
      }
    }
  });

  it('`spooky get` prints the body, sends -n requests and uploads --data', async () => {
    const cli = join(DIST, 'cli/main.js');
    const url = `https://localhost:${dp.port}`;
    const one = await run(process.execPath, [cli, 'get', '--insecure', `${url}/api/cli`]);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(JSON.parse(one.stdout).path, '/api/cli');
    const many = await run(process.execPath, [cli, 'get', '-k', '-n', '5', `${url}/api/many`]);
    assert.equal(many.code, 0, many.stderr);
    assert.equal([...many.stdout.matchAll(/^HTTP\/3 200$/gm)].length, 5);
    const file = join(tempDir(), 'body.txt');
    writeFileSync(file, 'boo!');
    const up = await run(process.execPath, [cli, 'get', '-k', '-d', file, `${url}/echo`]);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(up.stdout, 'boo!');
    const bad = await run(process.execPath, [cli, 'get', 'not a url']);
    assert.equal(bad.code, 2);
  });

  it('answers 502 for a stopped backend, 504 for a silent one, then serves normally', async () => {
    const c2 = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
    try {
      const bad = await c2.fetch({ path: '/dead/x', authority: 'localhost' });
      assert.equal(bad.status, 502);
      assert.equal(header(bad.headers, 'content-type'), 'text/plain; charset=utf-8');
      assert.ok(header(bad.headers, 'x-request-id'));
      const slow = await c2.fetch({ path: '/hang', authority: 'localhost' });
      assert.equal(slow.status, 504);
      assert.equal(slow.body.toString(), '504 backend timed out\n');
      const ok = await c2.fetch({ path: '/api/after', authority: 'localhost' });
      assert.equal(ok.status, 200);
    } finally {
      await c2.close();
    }
  });
});
