import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfigText } from '../model/config/load.js';
import { buildRuntimeConfig } from '../model/config/runtime.js';
import { snapshotSupportError } from './feature-support.js';

const OFF = 'security: { privileges: { enabled: false } }\n';

function load(extra: string, tls = '') {
  return loadConfigText(
    `listen:\n  tls: { cert: c.pem, key: k.pem${tls} }\nupstream:\n  web:\n    backends: [{ id: w, address: "http://127.0.0.1:1" }]\n${OFF}${extra}`,
    't.yaml',
  );
}

describe('what this build does not honour', () => {
  it('validation refuses client_auth.require: false with the words the data plane NACKs with', () => {
    const r = load('', ', client_auth: { enabled: true, ca_file: ca.pem, require: false }');
    assert.equal(r.ok, false);
    const issue = r.errors.find((e) => e.path === 'listen.tls.client_auth.require');
    assert.ok(issue, JSON.stringify(r.errors));
    assert.match(issue.message, /^false is not supported: .*set require: true, or enabled: false$/);

    // A snapshot from a control plane that let it through is NACKed with the same words.
    const ok = load('', ', client_auth: { enabled: true, ca_file: ca.pem }');
    assert.ok(ok.ok);
    const rt = buildRuntimeConfig(ok.config, { baseDir: '/', readPem: () => 'pem' });
    assert.equal(snapshotSupportError(rt), null, 'require: true is served');
    const optional = { ...rt, listen: { ...rt.listen, clientAuth: { ...rt.listen.clientAuth, require: false } } };
    assert.equal(snapshotSupportError(optional as typeof rt), `listen.tls.client_auth.require: ${issue.message}`);
  });

  it('serves mTLS required, 0-RTT, HTTP/1.1 backends and every policy', () => {
    const r = load(
      'load_balancing: { type: least-connections }\nperformance: { quic_0rtt: true }\n',
      ', client_auth: { enabled: true, ca_file: ca.pem }',
    );
    assert.ok(r.ok);
    const rt = buildRuntimeConfig(r.config, { baseDir: '/', readPem: () => 'pem' });
    assert.equal(snapshotSupportError(rt), null);
  });
});
