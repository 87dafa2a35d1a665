import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Snapshot } from '../../proto/gen/spooky/v1/control.js';
import { loadConfigText } from '../config/load.js';
import { buildRuntimeConfig, type RuntimeConfig } from '../config/runtime.js';
import { decodeSnapshot, encodeSnapshot } from './codec.js';

const readPem = (path: string) => `-----BEGIN X-----\n${path}\n-----END X-----\n`;

function runtime(text: string): RuntimeConfig {
  const r = loadConfigText(text, 't.yaml');
  if (!r.ok) assert.fail(JSON.stringify(r.errors));
  return buildRuntimeConfig(r.config, { baseDir: '/etc/spooky', readPem });
}

/** Plain data of a RuntimeConfig (maps and the route table as what they hold). */
function plain(rt: RuntimeConfig) {
  return { ...rt, pools: [...rt.pools.entries()], routes: undefined };
}

const FULL = `listen:
  address: "::"
  port: 8443
  tls: { cert: c.pem, key: k.pem, client_auth: { enabled: true, ca_file: ca.pem, require: true } }
  tcp: { enabled: false }
  alt_svc: { port: 443, max_age: 60 }
upstream:
  api:
    route: { host: "*.example.com", path_prefix: /v1 }
    load_balancing: { type: consistent-hash, key: "header:x-user" }
    timeouts: { backend_timeout_ms: 5000 }
    backends:
      - { id: a1, address: "10.0.0.1:8443", weight: 300 }
      - { id: a2, address: "http://[::1]:8080", protocol: http1 }
  web:
    backends: [{ id: w1, address: "https://web.internal" }]
upstream_tls: { verify: false, ca_file: ca2.pem, server_name: b.internal, client_cert: me.pem, client_key: me.key }
log: { level: haunt, format: json, access_log: false }
performance: { quic_0rtt: true, early_data_methods: [GET], quic_cc_algorithm: bbr, max_request_body_bytes: 1099511627776 }
resilience: { retries: { attempts: 3, on: [refused-stream] }, brownout: { enabled: true } }
`;

describe('snapshot codec', () => {
  it('decode(encode(x)) is x, through the protobuf wire format', () => {
    const rt = runtime(FULL);
    const wire = Snapshot.decode(Snapshot.encode(encodeSnapshot(rt, 7, 'n1')).finish());
    assert.equal(wire.version, 7);
    assert.equal(wire.nonce, 'n1');
    const back = decodeSnapshot(wire);
    assert.deepEqual(plain(back), plain(rt));
    assert.equal(back.routes.match('a.example.com', '/v1/x'), 'api');
    assert.equal(back.routes.match('other', '/'), 'web');
    assert.ok(Object.isFrozen(back.listen));
  });

  it('round-trips the defaults of a minimal config', () => {
    const rt = runtime(
      'listen: { tls: { cert: c.pem, key: k.pem } }\nupstream: { web: { backends: [{ id: w, address: "h:1" }] } }\n',
    );
    assert.deepEqual(plain(decodeSnapshot(encodeSnapshot(rt, 1, 'x'))), plain(rt));
  });

  it('refuses a snapshot without its required parts', () => {
    assert.throws(() => decodeSnapshot(Snapshot.fromPartial({ version: 1 })), /lacks listener/);
  });
});
