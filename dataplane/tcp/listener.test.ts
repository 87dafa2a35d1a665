import assert from 'node:assert/strict';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { generateSelfSigned } from '../../cli/certs.js';
import { H3 } from '../h3/errors.js';
import type { ClientRequest, ClientStream, RequestHandler } from '../proxy/client-stream.js';
import { buildRequest, TcpListener } from './listener.js';

function pems(): { cert: string; key: string } {
  const c = generateSelfSigned(mkdtempSync(join(tmpdir(), 'spooky-tcp-')));
  return { cert: readFileSync(c.certFile, 'utf8'), key: readFileSync(c.keyFile, 'utf8') };
}

const silent = { info() {}, warn() {} };

/** Echoes /echo, sends trailers on /trailers, resets on /reset, waits on /slow, else JSON of what it saw. */
class TestHandler implements RequestHandler {
  rejected: Array<{ status: number; reason: string }> = [];

  onRequest(s: ClientStream, req: ClientRequest): void {
    const url = new URL(req.path, 'https://x');
    if (url.pathname === '/echo') {
      s.respond(200, [['content-type', 'application/octet-stream']]);
      s.onData = (c) => {
        if (!s.write(c)) s.pause();
      };
      s.onDrain = () => s.resume();
      s.onEnd = () => s.end();
      return;
    }
    if (url.pathname === '/trailers') {
      s.respond(200, [['content-type', 'text/plain']]);
      s.write(Buffer.from('body before trailers\n'));
      s.end([
        ['x-checksum', 'abc123'],
        ['grpc-status', '0'],
      ]);
      return;
    }
    if (url.pathname === '/reset') {
      s.respond(200, [['content-type', 'text/plain']]);
      s.write(Buffer.from('partial'));
      setTimeout(() => s.reset(H3.INTERNAL_ERROR), 50);
      return;
    }
    const json = () => {
      const body = Buffer.from(
        JSON.stringify({ ...req, protocol: s.protocol, clientIp: s.clientIp, connectionKey: s.connectionKey }),
      );
      s.respond(200, [
        ['content-type', 'application/json'],
        ['content-length', String(body.length)],
      ]);
      s.write(body);
      s.end();
    };
    s.onEnd = () => setTimeout(json, url.pathname === '/slow' ? Number(url.searchParams.get('ms')) : 0);
  }

  onRejected(s: ClientStream, status: number, reason: string): void {
    this.rejected.push({ status, reason });
    s.discardRequestBody();
    s.respond(status, [['content-type', 'text/plain']]);
    s.write(Buffer.from(`${status} ${reason}\n`));
    s.end();
  }
}

interface Reply {
  status: number;
  headers: Record<string, unknown>;
  body: Buffer;
  trailers: Record<string, unknown>;
}

function h2req(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const s = session.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let status = 0;
    let head: Record<string, unknown> = {};
    let trailers: Record<string, unknown> = {};
    s.on('response', (h) => {
      status = Number(h[':status']);
      head = h;
    });
    s.on('trailers', (t) => {
      trailers = t;
    });
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve({ status, headers: head, body: Buffer.concat(chunks), trailers }));
    s.on('error', reject);
    if (body !== undefined) s.end(body);
  });
}

describe('TcpListener', () => {
  const { cert, key } = pems();
  const handler = new TestHandler();
  let listener: TcpListener;
  let port = 0;
  let session: http2.ClientHttp2Session;
  const limits = { maxHeaderCount: 40, maxHeaderBytes: 4096 };

  function h1req(opts: https.RequestOptions, body?: Buffer): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, ca: cert, agent: false, ...opts }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
            trailers: res.trailers,
          }),
        );
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  before(async () => {
    listener = new TcpListener({
      address: '127.0.0.1',
      port: 0,
      certPem: cert,
      keyPem: key,
      handler,
      limits,
      log: silent,
    });
    port = (await listener.listen()).port;
    session = http2.connect(`https://127.0.0.1:${port}`, { ca: cert });
  });

  after(async () => {
    session?.destroy();
    await listener?.close(100);
  });

  it('GET over h2 and HTTP/1.1 builds the ClientRequest', async () => {
    const a = await h2req(session, { ':path': '/json?x=1', 'x-test': 'yes' });
    assert.equal(a.status, 200);
    const ra = JSON.parse(a.body.toString());
    assert.deepEqual(
      { method: ra.method, scheme: ra.scheme, authority: ra.authority, path: ra.path, protocol: ra.protocol },
      { method: 'GET', scheme: 'https', authority: `127.0.0.1:${port}`, path: '/json?x=1', protocol: 'h2' },
    );
    assert.equal(ra.contentLength, 0);
    assert.equal(ra.clientIp, '127.0.0.1');
    assert.ok(ra.headers.some((f: string[]) => f[0] === 'x-test' && f[1] === 'yes'));
    assert.ok(!ra.headers.some((f: string[]) => f[0].startsWith(':')));
    const again = JSON.parse((await h2req(session, { ':path': '/json' })).body.toString());
    assert.equal(again.connectionKey, ra.connectionKey, 'one key per connection');

    const b = await h1req({ path: '/json?y=2', headers: { 'X-Test': 'yes' } });
    assert.equal(b.status, 200);
    const rb = JSON.parse(b.body.toString());
    assert.equal(rb.protocol, 'http/1.1');
    assert.equal(rb.path, '/json?y=2');
    assert.equal(rb.authority, `127.0.0.1:${port}`);
    assert.equal(rb.contentLength, 0);
    assert.ok(rb.headers.some((f: string[]) => f[0] === 'x-test'));
    assert.notEqual(rb.connectionKey, ra.connectionKey);
  });

  it('echoes a 1 MiB POST over both protocols', async () => {
    const body = randomBytes(1024 * 1024);
    const sum = createHash('sha256').update(body).digest('hex');
    const a = await h2req(session, { ':method': 'POST', ':path': '/echo' }, body);
    assert.equal(createHash('sha256').update(a.body).digest('hex'), sum);
    const b = await h1req({ method: 'POST', path: '/echo' }, body);
    assert.equal(b.status, 200);
    assert.equal(createHash('sha256').update(b.body).digest('hex'), sum);
  });

  it('sends response trailers (h2 and chunked HTTP/1.1)', async () => {
    const a = await h2req(session, { ':path': '/trailers' });
    assert.equal(a.body.toString(), 'body before trailers\n');
    assert.equal(a.trailers['x-checksum'], 'abc123');
    assert.equal(a.trailers['grpc-status'], '0');
    const b = await h1req({ path: '/trailers' });
    assert.equal(b.trailers['x-checksum'], 'abc123');
  });

  it('answers 431 over the header count and size limits', async () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < 50; i++) many[`x-h${i}`] = 'v';
    const before = handler.rejected.length;
    assert.equal((await h2req(session, { ':path': '/json', ...many })).status, 431);
    assert.equal((await h1req({ path: '/json', headers: many })).status, 431);
    assert.equal((await h2req(session, { ':path': '/json', 'x-big': 'a'.repeat(5000) })).status, 431);
    assert.equal((await h1req({ path: '/json', headers: { 'x-big': 'a'.repeat(5000) } })).status, 431);
    assert.deepEqual(
      handler.rejected.slice(before).map((r) => r.status),
      [431, 431, 431, 431],
    );
  });

  it('strips connection-specific fields (and those Connection names) instead of rejecting', async () => {
    const r = await h1req({
      path: '/json',
      headers: { Connection: 'keep-alive, X-Hop', 'Keep-Alive': 'timeout=5', 'X-Hop': '1', TE: 'trailers, deflate' },
    });
    assert.equal(r.status, 200);
    const names = (JSON.parse(r.body.toString()).headers as string[][]).map((f) => f[0]);
    for (const n of ['connection', 'keep-alive', 'x-hop']) assert.ok(!names.includes(n), n);
    assert.ok(names.includes('te'));
  });

  it('refuses CONNECT with 501 and a missing Host with 400', async () => {
    assert.equal((await h2req(session, { ':method': 'CONNECT', ':authority': 'example.com:443' })).status, 501);
    const raw = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const c = tls.connect({ host: '127.0.0.1', port, ca: cert, ALPNProtocols: ['http/1.1'] }, () => c.end(text));
        let out = '';
        c.on('data', (d) => {
          out += d;
        });
        c.on('close', () => resolve(out));
        c.on('error', reject);
      });
    assert.match(await raw('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'), /^HTTP\/1\.1 501/);
    assert.match(await raw('GET /json HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400/);
    // Smuggling attempt: Node's parser refuses it before the handler sees anything.
    const smuggle =
      'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n';
    assert.match(await raw(smuggle), /^HTTP\/1\.1 400/);
  });

  it('reset(): the client sees a stream error (h2) or a broken connection (HTTP/1.1)', async () => {
    await assert.rejects(h2req(session, { ':path': '/reset' }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_HTTP2_STREAM_ERROR');
      assert.match(e.message, /NGHTTP2_INTERNAL_ERROR/);
      return true;
    });
    await assert.rejects(h1req({ path: '/reset' }), /socket hang up|aborted|ECONNRESET/);
  });

  it('setCertificate() changes what new connections see', async () => {
    const next = pems();
    const seen = () =>
      new Promise<{ fp: string; alpn: string | false | null }>((resolve, reject) => {
        const c = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['h2'] }, () => {
          resolve({ fp: c.getPeerCertificate().fingerprint256, alpn: c.alpnProtocol });
          c.destroy();
        });
        c.on('error', reject);
      });
    assert.equal((await seen()).fp, new X509Certificate(cert).fingerprint256);
    listener.setCertificate(next.cert, next.key);
    const after = await seen();
    assert.equal(after.fp, new X509Certificate(next.cert).fingerprint256);
    assert.equal(after.alpn, 'h2');
    listener.setCertificate(cert, key);
  });

  it('close() lets in-flight requests finish, then refuses new connections', async () => {
    const l = new TcpListener({
      address: '127.0.0.1',
      port: 0,
      certPem: cert,
      keyPem: key,
      handler,
      limits,
      log: silent,
    });
    const p = (await l.listen()).port;
    const s = http2.connect(`https://127.0.0.1:${p}`, { ca: cert });
    const inflightH2 = h2req(s, { ':path': '/slow?ms=300' });
    const inflightH1 = new Promise<Reply>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: p, ca: cert, agent: false, path: '/slow?ms=300' }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), trailers: {} }),
        );
      });
      req.on('error', reject);
      req.end();
    });
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    const closed = l.close(5000);
    const [a, b] = await Promise.all([inflightH2, inflightH1]);
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.equal(b.headers.connection, 'close');
    await closed;
    assert.ok(performance.now() - t0 < 4000, 'closed without waiting for the drain timeout');
    s.destroy();
    await assert.rejects(
      new Promise((resolve, reject) => {
        const c = tls.connect({ host: '127.0.0.1', port: p, ca: cert }, () => resolve(c.destroy()));
        c.on('error', reject);
      }),
      /ECONNREFUSED/,
    );
  });
});

describe('buildRequest (issue #12: authority, scheme, transfer codings, path normalisation)', () => {
  const limits = { maxHeaderCount: 40, maxHeaderBytes: 4096 };
  const h1 = (raw: string[], target = '/a') =>
    buildRequest(
      {
        method: 'POST',
        target,
        authority: undefined,
        scheme: undefined,
        raw,
        pseudo: [[':method', 'POST']],
        bodyless: false,
        requireHost: true,
      },
      limits,
    );
  const h2 = (authority: string, scheme = 'https', target = '/a') =>
    buildRequest(
      { method: 'GET', target, authority, scheme, raw: [], pseudo: [], bodyless: true, requireHost: true },
      limits,
    );
  const status = (b: ReturnType<typeof buildRequest>) => (b.ok ? 0 : b.status);

  it('answers 501 for a transfer coding other than chunked, 400 for chunked twice', () => {
    assert.equal(status(h1(['host', 'a.example', 'transfer-encoding', 'gzip, chunked'])), 501);
    assert.equal(status(h1(['host', 'a.example', 'transfer-encoding', 'gzip', 'transfer-encoding', 'chunked'])), 501);
    assert.equal(status(h1(['host', 'a.example', 'transfer-encoding', 'chunked, chunked'])), 400);
    const ok = h1(['host', 'a.example', 'Transfer-Encoding', 'Chunked']);
    assert.ok(ok.ok);
    assert.equal(ok.request.contentLength, -1);
  });
  it('refuses a malformed host or :authority, and a scheme other than http(s)', () => {
    assert.equal(status(h1(['host', 'a b'])), 400);
    assert.equal(status(h1(['host', 'user@a.example'])), 400);
    assert.equal(status(h1(['host', ''])), 400);
    assert.equal(status(h1([], 'https://user@a.example/x')), 400);
    assert.equal(status(h2('a b/c')), 400);
    assert.equal(status(h2('a.example:99999')), 400);
    assert.equal(status(h2('a.example', 'ftp')), 400);
    assert.equal(status(h2('[::1]:8443')), 0);
  });
  it('routes and forwards the normalised path', () => {
    const r = h2('a.example', 'https', '/h1/%2e%2e/admin?q=/../x');
    assert.ok(r.ok);
    assert.equal(r.request.path, '/admin?q=/../x');
    assert.equal(status(h2('a.example', 'https', '/../x')), 400);
  });
});
