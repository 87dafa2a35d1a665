import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfigText } from '../controlplane/config/load.js';
import { checkFeatureSupport } from './feature-support.js';

function config(extra: string, backend = '{ id: w, address: "http://127.0.0.1:1" }', tls = '') {
  const r = loadConfigText(
    `listen:\n  tls: { cert: c.pem, key: k.pem${tls} }\nupstream:\n  web:\n    backends: [${backend}]\n${extra}`,
    't.yaml',
  );
  assert.ok(r.ok);
  return r.config;
}

describe('checkFeatureSupport', () => {
  it('refuses optional mTLS; allows the rest (0-RTT included)', () => {
    const off = 'security: { privileges: { enabled: false } }\n';
    assert.deepEqual(checkFeatureSupport(config(off)), { fatal: [], warnings: [] });
    assert.deepEqual(checkFeatureSupport(config('')).fatal, [], 'privileges on: they are dropped after binding');
    const mtls = config(off, undefined, ', client_auth: { enabled: true, ca_file: ca.pem }');
    assert.deepEqual(checkFeatureSupport(mtls).fatal, []);
    const optional = config(off, undefined, ', client_auth: { enabled: true, ca_file: ca.pem, require: false }');
    assert.match(checkFeatureSupport(optional).fatal[0], /require: false is not supported/);
    assert.deepEqual(checkFeatureSupport(config(`${off}performance: { quic_0rtt: true }\n`)).fatal, []);
    const h1 = config(off, '{ id: w, address: "http://127.0.0.1:1", protocol: http1 }');
    assert.deepEqual(checkFeatureSupport(h1).fatal, []);
  });

  it('has nothing to warn about for policies and health checks (all implemented)', () => {
    const c = config(
      'load_balancing: { type: least-connections }\nsecurity: { privileges: { enabled: false } }\n',
      '{ id: w, address: "http://127.0.0.1:1", health_check: {} }',
    );
    assert.deepEqual(checkFeatureSupport(c), { fatal: [], warnings: [] });
  });
});
