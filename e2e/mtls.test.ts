/**
 * mTLS (listen.tls.client_auth) with a real HTTP/3 client presenting certificates: no
 * certificate and one from another CA are refused at the handshake; a valid one gets through and
 * its subject reaches the backend in `x-client-cert-subject` (a client-sent value never does).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateSelfSigned } from '../cli/certs.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import {
  dataplaneConfig,
  devCert,
  gtlsclient,
  gtlsStatuses,
  type RunningDataplane,
  startDataplane,
  tempDir,
} from './support/harness.js';
import { TestPki } from './support/pki.js';

interface Pki {
  ca: string;
  client: { cert: string; key: string };
  stranger: { cert: string; key: string };
}

/** A client CA, a client certificate it issued, and a self-signed stranger. */
function makePki(dir: string): Pki {
  const ca = new TestPki(dir, 'Spooky test client CA');
  const stranger = generateSelfSigned(join(dir, 'stranger'));
  return {
    ca: ca.ca,
    client: ca.issue('client', '/CN=client one/O=Spooky'),
    stranger: { cert: stranger.certFile, key: stranger.keyFile },
  };
}

/** A data plane requiring client certificates from a fresh CA, in front of a demo backend. */
async function startMtls(): Promise<{ backend: DemoBackend; dp: RunningDataplane; pki: Pki }> {
  const pki = makePki(tempDir('spooky-mtls-'));
  const backend = await startDemoBackend('mtls');
  const dp = await startDataplane(
    dataplaneConfig(`  web:\n    backends: [{ id: m, address: "${backend.origin}" }]\n`).replace(
      /(\n {4}key: .*)/,
      `$1\n    client_auth: { enabled: true, ca_file: ${pki.ca} }`,
    ),
  );
  return { backend, dp, pki };
}

async function stopMtls(backend: DemoBackend | undefined, dp: RunningDataplane | undefined): Promise<void> {
  await dp?.stop();
  await backend?.close();
}

describe('mTLS over QUIC', () => {
  let backend: DemoBackend;
  let dp: RunningDataplane;
  let pki: Pki;
  before(async () => ({ backend, dp, pki } = await startMtls()));
  after(() => stopMtls(backend, dp));

  const url = () => `https://localhost:${dp.port}/whoami`;

  it('refuses a client without a certificate', async () => {
    const before = backend.seen.length;
    const r = await gtlsclient(dp.port, [url()], ['--timeout=3s']);
    assert.deepEqual(gtlsStatuses(r.stdout + r.stderr), []);
    assert.equal(backend.seen.length, before, 'nothing reached the backend');
  });

  it('refuses a certificate from another CA', async () => {
    const before = backend.seen.length;
    const r = await gtlsclient(
      dp.port,
      [url()],
      [`--key=${pki.stranger.key}`, `--cert=${pki.stranger.cert}`, '--timeout=3s'],
    );
    assert.deepEqual(gtlsStatuses(r.stdout + r.stderr), []);
    assert.equal(backend.seen.length, before);
  });

  it('lets a valid certificate through and forwards its subject', async () => {
    const r = await gtlsclient(dp.port, [url()], [`--key=${pki.client.key}`, `--cert=${pki.client.cert}`]);
    assert.deepEqual(gtlsStatuses(r.stdout + r.stderr), [200], r.stderr.slice(-2000));
    const seen = backend.seen.at(-1);
    assert.equal(seen?.path, '/whoami');
    assert.equal(seen?.headers['x-client-cert-subject'], 'CN=client one, O=Spooky');
  });
});

describe('mTLS over TCP (HTTP/2 and HTTP/1.1 on the same port)', () => {
  let backend: DemoBackend;
  let dp: RunningDataplane;
  let pki: Pki;
  before(async () => ({ backend, dp, pki } = await startMtls()));
  after(() => stopMtls(backend, dp));

  /** One HTTP/1.1 GET over TLS, optionally with a client certificate: the status or the error code. */
  function h1(id?: { cert: string; key: string }): Promise<string> {
    return new Promise((resolve) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: dp.port,
          path: '/tcp-h1',
          servername: 'localhost',
          ca: readFileSync(devCert().certFile),
          ...(id ? { cert: readFileSync(id.cert), key: readFileSync(id.key) } : {}),
          agent: false,
          timeout: 3000,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(String(res.statusCode)));
        },
      );
      req.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end();
    });
  }

  function h2(id?: { cert: string; key: string }): Promise<string> {
    return new Promise((resolve) => {
      const session = http2.connect(`https://localhost:${dp.port}`, {
        host: '127.0.0.1',
        servername: 'localhost',
        ca: readFileSync(devCert().certFile),
        ...(id ? { cert: readFileSync(id.cert), key: readFileSync(id.key) } : {}),
      });
      let settled = false;
      // A refused TLS 1.3 client certificate may surface as an error, a close, or nothing at all
      // on the client side: every path ends here, bounded.
      const timer = setTimeout(() => done('error timeout'), 5000);
      const done = (r: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        session.destroy();
        resolve(r);
      };
      session.on('error', (e: NodeJS.ErrnoException) => done(`error ${e.code ?? e.message}`));
      session.on('close', () => done('error session closed'));
      const req = session.request({ ':path': '/tcp-h2' });
      req.on('response', (h) => {
        req.resume();
        req.on('end', () => done(String(h[':status'])));
      });
      req.on('error', (e: NodeJS.ErrnoException) => done(`error ${e.code ?? e.message}`));
      req.end();
    });
  }

  it('refuses clients without a certificate or with one from another CA, on HTTP/1.1 and HTTP/2', async () => {
    const before = backend.seen.length;
    for (const result of [await h1(), await h1(pki.stranger), await h2(), await h2(pki.stranger)]) {
      assert.match(result, /^error /);
    }
    assert.equal(backend.seen.length, before, 'nothing reached the backend');
  });

  it('lets a valid certificate through on both protocols and forwards its subject', async () => {
    assert.equal(await h1(pki.client), '200');
    assert.equal(backend.seen.at(-1)?.headers['x-client-cert-subject'], 'CN=client one, O=Spooky');
    assert.equal(backend.seen.at(-1)?.headers.via, '1.1 spooky');
    assert.equal(await h2(pki.client), '200');
    assert.equal(backend.seen.at(-1)?.headers['x-client-cert-subject'], 'CN=client one, O=Spooky');
    assert.equal(backend.seen.at(-1)?.headers.via, '2 spooky');
  });
});
