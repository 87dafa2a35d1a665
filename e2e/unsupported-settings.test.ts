/**
 * Issue #13 item 4: what this build cannot do (an optional client certificate on QUIC) is refused
 * by every entry point with the same words: `spooky validate`, `spooky doctor`, `spooky apply`
 * against a running spooky-control, and spooky-dataplane's own start. Before, validate and doctor
 * passed it and the data plane then exited 1.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OPTIONAL_CLIENT_CERT_UNSUPPORTED } from '../model/config/build-support.js';
import { DIST, type RunningControl, run, startControl } from './support/harness.js';
import { config, newSetup, type Setup, spooky } from './support/pair.js';

const CLI = join(DIST, 'cli', 'main.js');
const POOLS = '  web:\n    backends: [{ id: a, address: "http://127.0.0.1:9" }]\n';
const WORDS = `listen.tls.client_auth.require: ${OPTIONAL_CLIENT_CERT_UNSUPPORTED}`;

describe('client_auth.require: false, which QUIC cannot ask for', () => {
  let s: Setup;
  let optional: string;
  let cp: RunningControl | null = null;

  before(() => {
    s = newSetup();
    writeFileSync(s.file, config(s, POOLS));
    optional = join(s.dir, 'optional-mtls.yaml');
    const text = config(s, POOLS).replace(
      /(tls: \{ cert: [^,]+, key: [^ ]+) \}/,
      `$1, client_auth: { enabled: true, ca_file: ${s.certs.certFile}, require: false } }`,
    );
    assert.match(text, /require: false/);
    writeFileSync(optional, text);
  });

  after(async () => {
    await cp?.stop();
  });

  it('spooky validate refuses it, exit 1, with line and column', async () => {
    const r = await run(process.execPath, [CLI, 'validate', optional]);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(r.stderr.includes(WORDS), r.stderr);
    assert.match(r.stderr, /optional-mtls\.yaml:\d+:\d+: listen\.tls\.client_auth\.require: false is not supported/);
  });

  it('spooky doctor fails its config check with the same words', async () => {
    const r = await run(process.execPath, [CLI, 'doctor', '--config', optional, '--json'], 60_000);
    assert.notEqual(r.code, 0);
    const body = JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string; detail: string }> };
    const valid = body.checks.find((ch) => ch.id === 'config-valid');
    assert.equal(valid?.status, 'fail');
    assert.ok(valid?.detail.includes(WORDS), valid?.detail);
  });

  it('spooky-dataplane refuses to start with the same words, before binding', async () => {
    const r = await run(process.execPath, [join(DIST, 'dataplane/main.js'), '--config', optional]);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(WORDS), r.stderr);
    assert.doesNotMatch(r.stdout, /listening/);
  });

  it('spooky apply is refused by a running spooky-control with the same words; nothing changes', async () => {
    cp = await startControl(s.file);
    const before = await spooky(s, cp, 'dataplanes', '--json');
    assert.equal(before.code, 0, before.stderr);
    const r = await spooky(s, cp, 'apply', optional);
    assert.notEqual(r.code, 0);
    assert.ok(`${r.stdout}${r.stderr}`.includes(WORDS), `${r.stdout}${r.stderr}`);
    const afterApply = await spooky(s, cp, 'dataplanes', '--json');
    const version = (text: string) => (JSON.parse(text) as { current_version: number }).current_version;
    assert.equal(typeof version(before.stdout), 'number', before.stdout);
    assert.equal(version(afterApply.stdout), version(before.stdout), 'the active version did not change');
  });
});
