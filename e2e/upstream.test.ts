/** Upstream HTTP/2 over TLS and cleartext: address forms, verification, session reuse and reconnect. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { generateSelfSigned } from '../cli/certs.js';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { dataplaneConfig, devCert, type RunningDataplane, startDataplane, tempDir } from './support/harness.js';

describe('upstream connections', () => {
  let tlsBackend: DemoBackend;
  let untrusted: DemoBackend;
  let plain: DemoBackend;
  let dp: RunningDataplane;
  let client: H3ClientSession;

  before(async () => {
    const cert = devCert();
    const tls = { cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) };
    tlsBackend = await startDemoBackend('tls', { tls });
    const other = generateSelfSigned(tempDir('spooky-other-ca-'));
    untrusted = await startDemoBackend('untrusted', {
      tls: { cert: readFileSync(other.certFile), key: readFileSync(other.keyFile) },
    });
    plain = await startDemoBackend('plain');
    dp = await startDataplane(
      dataplaneConfig(
        `  https-form:
    route: { path_prefix: /https }
    backends:
      - { id: tls-https, address: "https://localhost:${tlsBackend.port}" }
  bare-form:
    route: { path_prefix: /bare }
    backends:
      - { id: tls-bare, address: "127.0.0.1:${tlsBackend.port}" }
  untrusted:
    route: { path_prefix: /untrusted }
    backends:
      - { id: bad-cert, address: "https://localhost:${untrusted.port}" }
  plain:
    route: { path_prefix: / }
    backends:
      - { id: plain-1, address: "${plain.origin}" }
`,
        // The backends' CA comes from upstream_tls.ca_file, not the system trust store.
        `upstream_tls:\n  ca_file: ${cert.certFile}\n`,
      ),
    );
    client = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
  });

  after(async () => {
    await client?.close();
    await dp?.stop();
    await Promise.all([tlsBackend?.close(), untrusted?.close(), plain?.close()]);
  });

  const get = (path: string) => client.fetch({ path, authority: 'app.example' });

  it('reaches https://host:port and bare host:port backends over TLS', async () => {
    for (const path of ['/https/x', '/bare/y']) {
      const res = await get(path);
      assert.equal(res.status, 200, path);
      const body = JSON.parse(res.body.toString());
      assert.equal(body.backend, 'tls');
      assert.equal(body.path, path);
      assert.equal(body.authority, 'app.example');
    }
  });

  it('verifies backend certificates: an unknown CA is a 502', async () => {
    const res = await get('/untrusted/z');
    assert.equal(res.status, 502);
    assert.equal(untrusted.seen.length, 0);
  });

  it('multiplexes every request on one session per backend', async () => {
    const before = plain.sessionsOpened();
    await Promise.all(Array.from({ length: 20 }, (_, i) => get(`/reuse/${i}`)));
    for (let i = 0; i < 5; i++) assert.equal((await get(`/reuse/seq/${i}`)).status, 200);
    assert.ok(before <= 1);
    assert.equal(plain.sessionsOpened(), 1);
  });

  it('reconnects after the backend drops its connections', async () => {
    assert.equal((await get('/before-drop')).status, 200);
    plain.dropSessions();
    // Let the data plane see the close before the next request (it does not retry yet).
    await new Promise((r) => setTimeout(r, 200));
    const res = await get('/after-drop');
    assert.equal(res.status, 200);
    assert.equal(plain.sessionsOpened(), 2);
  });
});
