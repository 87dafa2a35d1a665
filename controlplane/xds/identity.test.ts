import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { certificateNodeId, identify } from './identity.js';

const cert = (CN: string | string[] | undefined, subjectaltname?: string) => ({
  subject: (CN === undefined ? { O: 'Spooky' } : { CN, O: 'Spooky' }) as never,
  subjectaltname,
});

describe('certificateNodeId', () => {
  it('is the subject CN, the first of several, else the first DNS subjectAltName', () => {
    assert.equal(certificateNodeId(cert('edge-1', 'DNS:other.example')), 'edge-1');
    assert.equal(certificateNodeId(cert(['edge-2', 'edge-x'])), 'edge-2');
    assert.equal(
      certificateNodeId(cert(undefined, 'IP Address:10.0.0.1, DNS:edge-3.example, DNS:b')),
      'edge-3.example',
    );
    assert.equal(certificateNodeId(cert(undefined, 'IP Address:10.0.0.1')), null);
    assert.equal(certificateNodeId(cert(undefined)), null);
  });
});

describe('identify', () => {
  const tls = (c: ReturnType<typeof cert>) => ({ transportSecurityType: 'ssl', sslPeerCertificate: c });

  it('trusts the unix socket’s word, and only the certificate over TCP (plus a worker suffix)', () => {
    assert.deepEqual(identify(null, false, 'host:443'), { kind: 'local' });
    assert.deepEqual(identify(tls(cert('edge-1')), true, 'liar:443/w12'), {
      kind: 'certificate',
      nodeId: 'edge-1/w12',
    });
    assert.deepEqual(identify(tls(cert('edge-1')), true, 'edge-9'), { kind: 'certificate', nodeId: 'edge-1' });
    // Only a trailing /wN is taken: anything else the data plane says is ignored.
    assert.deepEqual(identify(tls(cert('edge-1')), true, '/w1/evil'), { kind: 'certificate', nodeId: 'edge-1' });
  });

  it('refuses TCP without a verified certificate, and an id that is not printable without spaces', () => {
    assert.equal(identify({}, true, 'x').kind, 'refused');
    assert.equal(identify(null, true, 'x').kind, 'refused');
    const spaced = identify(tls(cert('edge one')), true, 'x');
    assert.equal(spaced.kind, 'refused');
    assert.match(spaced.kind === 'refused' ? spaced.reason : '', /no usable node id/);
    assert.equal(identify(tls(cert('a\u0007b')), true, 'x').kind, 'refused');
    assert.equal(identify(tls(cert('x'.repeat(201))), true, 'x').kind, 'refused');
  });
});
