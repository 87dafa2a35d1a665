import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { createServer as createHttp1Server, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  createServer as createH2cServer,
  createSecureServer,
  type Http2SecureServer,
  type Http2Server,
} from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateSelfSigned } from '../../cli/certs.js';
import type { RuntimeBackend, RuntimeConfig } from '../../model/config/runtime.js';
import { MAX_BODY_BYTES, type ProbeSpec, probeBackend, statusMatches } from './prober.js';

const SPEC: ProbeSpec = { method: 'GET', path: '/health', timeoutMs: 2000, expectedStatus: '2xx' };
const PLAIN: RuntimeConfig['upstreamTls'] = { verify: true };

function backend(port: number, protocol: 'h2' | 'http1', tls = false): RuntimeBackend {
  const origin = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  return { id: 'b1', pool: 'p', origin, tls, host: '127.0.0.1', port, protocol, weight: 100 };
}

function portOf(server: { address(): unknown }): number {
  return (server.address() as { port: number }).port;
}

async function listen<S extends Server>(server: S): Promise<S> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** What the test servers answer: GET /status/NNN answers NNN, /big a 1 MiB body, /hang never. */
const seen: Array<{ method: string; path: string; ua: string | undefined }> = [];
function route(method: string, path: string, ua: string | undefined): { status: number; body: string } | null {
  seen.push({ method, path, ua });
  if (path === '/hang') return null;
  if (path === '/big') return { status: 200, body: 'x'.repeat(1024 * 1024) };
  const m = /^\/status\/(\d{3})$/.exec(path);
  return { status: m ? Number(m[1]) : 200, body: 'ok' };
}

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail('condition not met in time');
    await sleep(10);
  }
}

describe('statusMatches', () => {
  it('understands codes, classes, ranges and lists', () => {
    const cases: Array<[string, number, boolean]> = [
      ['2xx', 200, true],
      ['2xx', 204, true],
      ['2xx', 301, false],
      ['200', 200, true],
      ['200', 201, false],
      ['200-399', 302, true],
      ['200-399', 399, true],
      ['200-399', 400, false],
      ['200-399', 199, false],
      ['200,204', 204, true],
      ['2xx, 404', 404, true],
      ['2xx,404', 500, false],
      ['5XX', 503, true],
    ];
    for (const [expected, status, want] of cases) {
      assert.equal(statusMatches(expected, status), want, `${expected} vs ${status}`);
    }
  });
});

describe('probeBackend', () => {
  const dir = join(tmpdir(), `spooky-prober-${process.pid}`);
  const servers: Server[] = [];
  /** Server-side sockets still open, per port: a probe must leave none behind. */
  const open = new Map<number, Set<Socket>>();
  const idle = (...ports: number[]) => ports.every((port) => open.get(port)?.size === 0);
  let certPem: string;
  let otherCertPem: string;
  let h2c: number;
  let h2tls: number;
  let h1: number;
  let h1tls: number;
  let silentTcp: number;

  function serveH2<S extends Http2Server | Http2SecureServer>(server: S): S {
    (server as Http2Server).on('stream', (stream, headers) => {
      stream.on('error', () => {}); // the probe may close mid-body
      const r = route(String(headers[':method']), String(headers[':path']), headers['user-agent']);
      if (r === null) return;
      stream.respond({ ':status': r.status });
      stream.end(r.body);
    });
    return server;
  }

  function h1Handler(req: IncomingMessage, res: ServerResponse): void {
    const r = route(req.method ?? '', req.url ?? '', req.headers['user-agent']);
    if (r === null) return;
    res.writeHead(r.status);
    res.end(r.body);
  }

  async function add(server: Server): Promise<number> {
    const sockets = new Set<Socket>();
    server.on('connection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    servers.push(await listen(server));
    open.set(portOf(server), sockets);
    return portOf(server);
  }

  before(async () => {
    const a = generateSelfSigned(join(dir, 'a'));
    const b = generateSelfSigned(join(dir, 'b'));
    certPem = readFileSync(a.certFile, 'utf8');
    otherCertPem = readFileSync(b.certFile, 'utf8');
    const keyPem = readFileSync(a.keyFile, 'utf8');
    h2c = await add(serveH2(createH2cServer()));
    h2tls = await add(serveH2(createSecureServer({ cert: certPem, key: keyPem })));
    h1 = await add(createHttp1Server(h1Handler));
    h1tls = await add(createHttpsServer({ cert: certPem, key: keyPem }, h1Handler));
    silentTcp = await add(createTcpServer((s) => s.resume())); // reads, never answers
  });

  after(async () => {
    for (const server of servers) {
      for (const s of open.get(portOf(server)) ?? []) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('HTTP/2 cleartext: 200 is ok, with the user-agent', async () => {
    seen.length = 0;
    const r = await probeBackend(backend(h2c, 'h2'), SPEC, PLAIN);
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.status, 200);
    assert.equal(r.error, undefined);
    assert.ok(r.latencyMs >= 0);
    assert.deepEqual(seen, [{ method: 'GET', path: '/health', ua: 'spooky-health-check' }]);
    await waitFor(() => idle(h2c));
  });

  it('HTTP/2 cleartext: 503 is not ok', async () => {
    const r = await probeBackend(backend(h2c, 'h2'), { ...SPEC, path: '/status/503' }, PLAIN);
    assert.deepEqual({ ok: r.ok, status: r.status, error: r.error }, { ok: false, status: 503, error: 'status 503' });
  });

  it('expected_status ranges and lists decide', async () => {
    const b = backend(h2c, 'h2');
    const probe = (path: string, expectedStatus: string) => probeBackend(b, { ...SPEC, path, expectedStatus }, PLAIN);
    assert.equal((await probe('/status/302', '200-399')).ok, true);
    assert.equal((await probe('/status/404', '200-399')).ok, false);
    assert.equal((await probe('/status/404', '2xx,404')).ok, true);
    assert.equal((await probe('/status/204', '200')).ok, false);
  });

  it('HTTP/2 over TLS verifies against the configured CA', async () => {
    const r = await probeBackend(backend(h2tls, 'h2', true), SPEC, { verify: true, caPem: certPem });
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.status, 200);
  });

  it('HTTP/2 over TLS with the wrong CA is a tls error', async () => {
    const r = await probeBackend(backend(h2tls, 'h2', true), SPEC, { verify: true, caPem: otherCertPem });
    assert.equal(r.ok, false);
    assert.match(r.error ?? '', /^tls [A-Z_]+$/, JSON.stringify(r));
    assert.equal(r.status, undefined);
  });

  it('verify: false accepts any certificate', async () => {
    const r = await probeBackend(backend(h2tls, 'h2', true), SPEC, { verify: false });
    assert.equal(r.ok, true, JSON.stringify(r));
  });

  it('an h2 backend whose TLS server does not offer h2 fails on ALPN', async () => {
    const r = await probeBackend(backend(h1tls, 'h2', true), SPEC, { verify: true, caPem: certPem });
    assert.equal(r.ok, false);
    assert.match(r.error ?? '', /^tls (ALPN_NOT_H2|ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL)$/);
  });

  it('HTTP/1.1 cleartext: 200 ok, 503 not ok, HEAD works, and the connection is closed after', async () => {
    seen.length = 0;
    const b = backend(h1, 'http1');
    const ok = await probeBackend(b, SPEC, PLAIN);
    assert.equal(ok.ok, true, JSON.stringify(ok));
    assert.equal(ok.status, 200);
    const bad = await probeBackend(b, { ...SPEC, path: '/status/503' }, PLAIN);
    assert.deepEqual(
      { ok: bad.ok, status: bad.status, error: bad.error },
      { ok: false, status: 503, error: 'status 503' },
    );
    const head = await probeBackend(b, { ...SPEC, method: 'HEAD' }, PLAIN);
    assert.equal(head.ok, true, JSON.stringify(head));
    assert.deepEqual(
      seen.map((s) => [s.method, s.ua]),
      [
        ['GET', 'spooky-health-check'],
        ['GET', 'spooky-health-check'],
        ['HEAD', 'spooky-health-check'],
      ],
    );
    await waitFor(() => idle(h1));
  });

  it('HTTP/1.1 over TLS', async () => {
    const r = await probeBackend(backend(h1tls, 'http1', true), SPEC, { verify: true, caPem: certPem });
    assert.equal(r.ok, true, JSON.stringify(r));
  });

  it('reads at most 64 KiB of a big body, then closes', async () => {
    assert.equal(MAX_BODY_BYTES, 65536);
    for (const b of [backend(h1, 'http1'), backend(h2c, 'h2')]) {
      const r = await probeBackend(b, { ...SPEC, path: '/big' }, PLAIN);
      assert.equal(r.ok, true, JSON.stringify(r));
    }
    await waitFor(() => idle(h1, h2c, h2tls, h1tls, silentTcp));
  });

  it('a server that never answers times out within timeoutMs', async () => {
    const cases: Array<[RuntimeBackend, RuntimeConfig['upstreamTls']]> = [
      [backend(h1, 'http1'), PLAIN],
      [backend(h2c, 'h2'), PLAIN],
      [backend(silentTcp, 'h2', true), { verify: true, caPem: certPem }],
    ];
    for (const [b, tls] of cases) {
      const started = Date.now();
      const r = await probeBackend(b, { ...SPEC, path: '/hang', timeoutMs: 300 }, tls);
      const took = Date.now() - started;
      assert.deepEqual({ ok: r.ok, error: r.error }, { ok: false, error: 'timeout' }, b.origin);
      assert.ok(took >= 290 && took < 1000, `took ${took} ms`);
    }
    await waitFor(() => idle(h1, h2c, h2tls, h1tls, silentTcp));
  });

  it('a closed port is connect ECONNREFUSED', async () => {
    const s = await listen(createTcpServer());
    const port = portOf(s);
    await new Promise((resolve) => s.close(resolve));
    for (const b of [backend(port, 'h2'), backend(port, 'http1'), backend(port, 'h2', true)]) {
      const r = await probeBackend(b, SPEC, PLAIN);
      assert.deepEqual({ ok: r.ok, error: r.error }, { ok: false, error: 'connect ECONNREFUSED' }, b.origin);
    }
  });

  it('never throws, even for a request Node refuses to send', async () => {
    const r = await probeBackend(backend(h1, 'http1'), { ...SPEC, path: '/bad path\n' }, PLAIN);
    assert.equal(r.ok, false);
    assert.match(r.error ?? '', /^error /);
  });
});
