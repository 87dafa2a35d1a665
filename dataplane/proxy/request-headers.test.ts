import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildUpstreamHeaders, clientRequestId, newRequestId } from './request-headers.js';

const get = (fields: ReadonlyArray<readonly [string, string]>, name: string) =>
  fields.filter((f) => f[0] === name).map((f) => f[1]);

describe('buildUpstreamHeaders', () => {
  const ctx = { clientIp: '203.0.113.7', authority: 'app.example', requestId: 'rid-1' };

  it('replaces client-supplied forwarding and client-certificate headers, never appends', () => {
    const out = buildUpstreamHeaders(
      [
        ['x-forwarded-for', '1.2.3.4'],
        ['forwarded', 'for=evil'],
        ['x-client-cert-subject', 'CN=admin'],
        ['accept', '*/*'],
      ],
      ctx,
    );
    assert.deepEqual(get(out, 'x-forwarded-for'), ['203.0.113.7']);
    assert.deepEqual(get(out, 'forwarded'), ['for=203.0.113.7;proto=https;host="app.example"']);
    assert.deepEqual(
      get(out, 'x-client-cert-subject'),
      [],
      'no certificate: no subject, and never the client-sent one',
    );
    assert.deepEqual(get(out, 'accept'), ['*/*']);
    const mtls = buildUpstreamHeaders([['x-client-cert-subject', 'CN=admin']], {
      ...ctx,
      clientCertSubject: 'CN=client one',
    });
    assert.deepEqual(get(mtls, 'x-client-cert-subject'), ['CN=client one']);
  });

  it('sends early-data: 1 only for accepted early data, never the client-sent value (RFC 8470)', () => {
    const sent: Array<[string, string]> = [
      ['early-data', '1'],
      ['accept', '*/*'],
    ];
    assert.deepEqual(get(buildUpstreamHeaders(sent, ctx), 'early-data'), []);
    assert.deepEqual(get(buildUpstreamHeaders(sent, { ...ctx, earlyData: false }), 'early-data'), []);
    assert.deepEqual(get(buildUpstreamHeaders(sent, { ...ctx, earlyData: true }), 'early-data'), ['1']);
    assert.deepEqual(get(buildUpstreamHeaders([['early-data', '0']], { ...ctx, earlyData: true }), 'early-data'), [
      '1',
    ]);
  });

  it('drops connection-specific fields and host, keeps te: trailers, extends via by the client protocol', () => {
    const out = buildUpstreamHeaders(
      [
        ['host', 'x'],
        ['connection', 'keep-alive'],
        ['te', 'trailers'],
        ['via', '1.1 cdn'],
      ],
      { ...ctx, protocol: 'http/1.1' },
    );
    assert.deepEqual(get(out, 'host'), []);
    assert.deepEqual(get(out, 'connection'), []);
    assert.deepEqual(get(out, 'te'), ['trailers']);
    assert.deepEqual(get(out, 'via'), ['1.1 cdn, 1.1 spooky']);
    assert.deepEqual(get(buildUpstreamHeaders([], ctx), 'via'), ['3 spooky']);
    assert.deepEqual(get(buildUpstreamHeaders([], { ...ctx, protocol: 'h2' }), 'via'), ['2 spooky']);
  });

  it('brackets IPv6 clients in forwarded', () => {
    const out = buildUpstreamHeaders([], { ...ctx, clientIp: '2001:db8::1' });
    assert.deepEqual(get(out, 'forwarded'), ['for="[2001:db8::1]";proto=https;host="app.example"']);
  });

  it('keeps a usable client x-request-id, makes unique ones otherwise', () => {
    assert.equal(clientRequestId([['x-request-id', 'abc-123']]), 'abc-123');
    assert.equal(clientRequestId([['x-request-id', 'has space']]), undefined);
    assert.equal(clientRequestId([['x-request-id', 'x'.repeat(129)]]), undefined);
    assert.notEqual(newRequestId(), newRequestId());
  });
});
