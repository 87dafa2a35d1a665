/**
 * Traffic management end to end, real processes and backends: health checks taking a backend out
 * and back, 503 when nothing is left, in-flight limits, retries and the circuit breaker,
 * sticky-cid, and HTTP/1.1 backends.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import {
  dataplaneConfig,
  type RunningControl,
  type RunningDataplane,
  startControl,
  startDataplane,
} from './support/harness.js';
import { config, newSetup, spooky } from './support/pair.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const connect = (port: number) =>
  H3ClientSession.connect('127.0.0.1', port, { insecure: true, serverName: 'localhost' });

async function whoAnswers(client: H3ClientSession, path = '/x'): Promise<string> {
  const r = await client.fetch({ path, authority: 'localhost' });
  if (r.status !== 200) return `status ${r.status}`;
  return JSON.parse(r.body.toString()).backend;
}

describe('health checks', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => {});
  });

  it('takes a stopped backend out within interval × failure_threshold + 1 s, back after cooldown + successes; 503 when none is left', async () => {
    const a = await startDemoBackend('a');
    let b: DemoBackend = await startDemoBackend('b');
    const bPort = b.port;
    cleanup.push(
      () => a.close(),
      () => b.close(),
    );
    const s = newSetup();
    const hc =
      '{ path: /health, interval: 300, timeout_ms: 200, failure_threshold: 2, success_threshold: 2, cooldown_ms: 500 }';
    writeFileSync(
      s.file,
      config(
        s,
        `  web:\n    backends:\n      - { id: a, address: "${a.origin}", health_check: ${hc} }\n      - { id: b, address: "${b.origin}", health_check: ${hc} }\n`,
      ),
    );
    const cp: RunningControl = await startControl(s.file);
    cleanup.push(() => cp.stop());
    const dp: RunningDataplane = await startDataplane((await import('node:fs')).readFileSync(s.file, 'utf8'), {
      file: s.file,
    });
    cleanup.push(() => dp.stop());
    const client = await connect(dp.port);
    cleanup.push(() => client.close());
    // Both healthy first.
    const seen = new Set<string>();
    for (let i = 0; i < 20 && seen.size < 2; i++) seen.add(await whoAnswers(client));
    assert.deepEqual(seen, new Set(['a', 'b']));

    await b.close();
    const stoppedAt = performance.now();
    // Health checks take it out (requests meanwhile are retried on a: none fails).
    let bInfo: { state: string; last_probe: { ok: boolean; error?: string } | null } | undefined;
    for (let i = 0; i < 100; i++) {
      const backends = JSON.parse((await spooky(s, cp, 'backends', '--json')).stdout).backends;
      bInfo = backends.find((x: { id: string }) => x.id === 'b');
      if (bInfo?.state === 'unhealthy') break;
      assert.equal(await whoAnswers(client), 'a');
      await sleep(50);
    }
    const outAfter = performance.now() - stoppedAt;
    process.stdout.write(`# backend b out after ${outAfter.toFixed(0)} ms\n`);
    assert.equal(bInfo?.state, 'unhealthy');
    assert.ok(outAfter <= 300 * 2 + 1000, `b still in after ${outAfter} ms`);
    assert.equal(bInfo?.last_probe?.ok, false);
    assert.match(bInfo?.last_probe?.error ?? '', /ECONNREFUSED/);
    for (let i = 0; i < 4; i++) assert.equal(await whoAnswers(client), 'a');
    const table = await spooky(s, cp, 'backends');
    assert.match(table.stdout, /b\s+web\s+unhealthy/);

    // Every backend down: 503 with Retry-After.
    await a.close();
    let last = { status: 0, retryAfter: null as string | null };
    for (let i = 0; i < 60 && last.status !== 503; i++) {
      const r = await client.fetch({ path: '/x', authority: 'localhost' });
      last = { status: r.status, retryAfter: r.headers.find((h) => h[0] === 'retry-after')?.[1] ?? null };
      if (last.status !== 503) await sleep(100);
    }
    assert.equal(last.status, 503);
    assert.equal(last.retryAfter, '1');

    // b comes back on its port: healthy again after cooldown + 2 successful probes.
    b = await startDemoBackend('b', { port: bPort });
    const startedAt = performance.now();
    let backAfter = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 100; i++) {
      if ((await whoAnswers(client)) === 'b') {
        backAfter = performance.now() - startedAt;
        break;
      }
      await sleep(50);
    }
    process.stdout.write(`# backend b back after ${backAfter.toFixed(0)} ms\n`);
    assert.ok(backAfter < 500 + 300 * 3 + 1000, `b not back after ${backAfter} ms`);
  });
});

describe('admission, retries, circuit breaker, sticky-cid', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => {});
  });

  it('each in-flight limit at 1: of two concurrent slow requests one gets 200, the other 503 with its reason', async () => {
    const a = await startDemoBackend('a');
    cleanup.push(() => a.close());
    for (const [key, reason] of [
      ['global_inflight_limit', 'global_inflight'],
      ['per_upstream_inflight_limit', 'upstream_inflight'],
      ['per_backend_inflight_limit', 'backend_inflight'],
    ] as const) {
      const dp = await startDataplane(
        dataplaneConfig(`  web:\n    backends: [{ id: a, address: "${a.origin}" }]\n`, `performance: { ${key}: 1 }\n`),
      );
      const client = await connect(dp.port);
      try {
        const slow = () => client.fetch({ path: '/late-end?ms=400', authority: 'localhost' });
        const results = await Promise.all([slow(), slow()]);
        const statuses = results.map((r) => r.status).sort();
        assert.deepEqual(statuses, [200, 503], key);
        const shed = results.find((r) => r.status === 503);
        assert.equal(shed?.body.toString(), `503 overloaded: ${reason}\n`);
        assert.equal(shed?.headers.find((h) => h[0] === 'retry-after')?.[1], '1');
      } finally {
        await client.close();
        await dp.stop();
      }
    }
  });

  it('with one of two backends refusing connections, 200 GETs in a row succeed and its breaker opens', async () => {
    const good = await startDemoBackend('good');
    const gone = await startDemoBackend('gone');
    await gone.close();
    cleanup.push(() => good.close());
    const dp = await startDataplane(
      dataplaneConfig(
        `  web:\n    backends: [{ id: good, address: "${good.origin}" }, { id: gone, address: "${gone.origin}" }]\n`,
        'resilience: { circuit_breaker: { consecutive_failures: 3, open_ms: 60000 } }\n',
      ),
    );
    cleanup.push(() => dp.stop());
    const client = await connect(dp.port);
    cleanup.push(() => client.close());
    for (let i = 0; i < 200; i++) assert.equal(await whoAnswers(client), 'good', `request ${i}`);
    const access = dp.logs.filter((o) => o.access === true);
    const retried = access.filter((o) => Number(o.retries ?? 0) > 0).length;
    // The breaker opens after 3 consecutive failures: later requests never try `gone`.
    assert.ok(retried >= 1 && retried <= 3, `${retried} requests needed a retry`);
    assert.ok(access.slice(-150).every((o) => o.retries === undefined));
  });

  it('sticky-cid: one QUIC connection sticks to one backend; 20 connections use them all', async () => {
    const backends = await Promise.all(['a', 'b', 'c'].map((n) => startDemoBackend(n)));
    cleanup.push(() => Promise.all(backends.map((b) => b.close())));
    const list = backends.map((b) => `{ id: ${b.name}, address: "${b.origin}" }`).join(', ');
    const dp = await startDataplane(
      dataplaneConfig(`  web:\n    load_balancing: { type: sticky-cid }\n    backends: [${list}]\n`),
    );
    cleanup.push(() => dp.stop());
    const used = new Set<string>();
    for (let c = 0; c < 20; c++) {
      const client = await connect(dp.port);
      try {
        const seen = new Set<string>();
        for (let i = 0; i < 5; i++) seen.add(await whoAnswers(client));
        assert.equal(seen.size, 1, `connection ${c} reached ${[...seen]}`);
        used.add([...seen][0]);
      } finally {
        await client.close();
      }
    }
    assert.deepEqual(used, new Set(['a', 'b', 'c']));
  });
});

describe('HTTP/1.1 backends', () => {
  let server: http.Server;
  let dp: RunningDataplane;
  let client: H3ClientSession;
  after(async () => {
    await client?.close();
    await dp?.stop();
    if (server) await new Promise((r) => server.close(r));
  });

  it('serve GET, a 5 MiB POST and chunked responses', async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/echo') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        req.pipe(res);
      } else if (req.url === '/chunked') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        let n = 0;
        const timer = setInterval(() => {
          res.write(`chunk ${n}\n`);
          if (++n === 5) {
            clearInterval(timer);
            res.end();
          }
        }, 20);
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ backend: 'h1', path: req.url, host: req.headers.host, version: req.httpVersion }));
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    dp = await startDataplane(
      dataplaneConfig(`  web:\n    backends: [{ id: h1, address: "http://127.0.0.1:${port}", protocol: http1 }]\n`),
    );
    client = await connect(dp.port);
    const get = await client.fetch({ path: '/hello?x=1', authority: 'app.example' });
    assert.equal(get.status, 200);
    assert.deepEqual(JSON.parse(get.body.toString()), {
      backend: 'h1',
      path: '/hello?x=1',
      host: 'app.example',
      version: '1.1',
    });
    const body = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
    const post = await client.fetch({ method: 'POST', path: '/echo', authority: 'app.example', body });
    assert.equal(post.status, 200);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    assert.equal(sha(post.body), sha(body));
    const chunked = await client.fetch({ path: '/chunked', authority: 'app.example' });
    assert.equal(chunked.status, 200);
    assert.equal(chunked.body.toString(), [0, 1, 2, 3, 4].map((n) => `chunk ${n}\n`).join(''));
  });
});
