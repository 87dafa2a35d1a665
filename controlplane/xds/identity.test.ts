import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { certificateNodeId, identify, peerAddress, peerHost } from './identity.js';

const cert = (CN: string | string[] | undefined, subjectaltname?: string) => ({
  subject: (CN === undefined ? { O: 'Spooky' } : { CN, O: 'Spooky' }) as never,
  subjectaltname,
});

describe('certificateNodeId', () => {
  it('is the subject CN (the first of several); never a subjectAltName', () => {
    assert.equal(certificateNodeId(cert('edge-1', 'DNS:other.example')), 'edge-1');
    assert.equal(certificateNodeId(cert(['edge-2', 'edge-x'])), 'edge-2');
    // Node flattens SANs into one string; a quoted URI could smuggle "DNS:edge-1" into it.
    assert.equal(certificateNodeId(cert(undefined, 'URI:"x, DNS:edge-1, y"')), null);
    assert.equal(certificateNodeId(cert(undefined)), null);
  });
});

describe('peerAddress and peerHost', () => {
  it('bracket IPv6 and keep IPv4 as they are', () => {
    assert.equal(peerAddress('10.0.0.5:40112'), '10.0.0.5:40112');
    assert.equal(peerAddress('::1:40112'), '[::1]:40112');
    assert.equal(peerAddress('fd00::5:9903'), '[fd00::5]:9903');
    assert.equal(peerAddress('unknown'), 'unknown');
    assert.equal(peerHost('[fd00::5]:9903'), 'fd00::5');
    assert.equal(peerHost('10.0.0.5:40112'), '10.0.0.5');
  });
});

describe('identify', () => {
  const tls = (c: ReturnType<typeof cert>) => ({ transportSecurityType: 'ssl', sslPeerCertificate: c });

  it('trusts the unix socket’s word, and only the certificate over TCP (plus a worker suffix)', () => {
    assert.deepEqual(identify(null, false, 'host:443'), { kind: 'local' });
    const edge1 = (nodeId: string) => ({ kind: 'certificate', certId: 'edge-1', nodeId });
    assert.deepEqual(identify(tls(cert('edge-1')), true, 'liar:443/w12'), edge1('edge-1/w12'));
    assert.deepEqual(identify(tls(cert('edge-1')), true, 'edge-9'), edge1('edge-1'));
    // Only a trailing /wN below 256 is taken: anything else the data plane says is ignored.
    assert.deepEqual(identify(tls(cert('edge-1')), true, '/w1/evil'), edge1('edge-1'));
    assert.deepEqual(identify(tls(cert('edge-1')), true, 'x/w256'), edge1('edge-1'));
    assert.deepEqual(identify(tls(cert('edge-1')), true, 'x/w007'), edge1('edge-1/w7'));
  });

  it('refuses TCP without a verified certificate, and an id that is not printable without spaces', () => {
    assert.equal(identify({}, true, 'x').kind, 'refused');
    assert.equal(identify(null, true, 'x').kind, 'refused');
    const spaced = identify(tls(cert('edge one')), true, 'x');
    assert.equal(spaced.kind, 'refused');
    assert.match(spaced.kind === 'refused' ? spaced.reason : '', /no usable node id/);
    assert.equal(identify(tls(cert('a\u0007b')), true, 'x').kind, 'refused');
    assert.equal(identify(tls(cert('x'.repeat(201))), true, 'x').kind, 'refused');
    // A `/` in the CN would pass for a worker suffix of another node.
    assert.equal(identify(tls(cert('edge-1/w3')), true, 'x').kind, 'refused');
  });
});
