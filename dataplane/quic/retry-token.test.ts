import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkRetryToken,
  isRetryTokenFormat,
  mintRetryToken,
  newRetryTokenKey,
  RETRY_TOKEN_LEN,
  RETRY_TOKEN_LIFETIME_MS,
} from './retry-token.js';

const key = newRetryTokenKey();
const peer = { host: '192.0.2.7', port: 4433 };
const retryScid = Buffer.alloc(20, 0xab);
const odcid = Buffer.from('0102030405060708', 'hex');
const t0 = 50_000;

describe('Retry tokens', () => {
  it('a token checks out for the same address, port and destination id, and gives back the original id', () => {
    const token = mintRetryToken(key, peer, retryScid, odcid, t0);
    assert.equal(token.length, RETRY_TOKEN_LEN);
    assert.ok(isRetryTokenFormat(token));
    const r = checkRetryToken(key, token, { ...peer }, retryScid, t0 + 100);
    assert.deepEqual(r, { ok: true, odcid: Uint8Array.from(odcid) });
  });

  it('keeps a 20-byte original id and a zero-length one', () => {
    for (const id of [Buffer.alloc(20, 7), Buffer.alloc(0)]) {
      const r = checkRetryToken(key, mintRetryToken(key, peer, retryScid, id, t0), peer, retryScid, t0);
      assert.deepEqual(r, { ok: true, odcid: Uint8Array.from(id) });
    }
    assert.throws(() => mintRetryToken(key, peer, retryScid, Buffer.alloc(21), t0), RangeError);
  });

  it('refuses a token from another address or another port', () => {
    const token = mintRetryToken(key, peer, retryScid, odcid, t0);
    assert.deepEqual(checkRetryToken(key, token, { host: '192.0.2.8', port: 4433 }, retryScid, t0), {
      ok: false,
      reason: 'wrong_address',
    });
    assert.deepEqual(checkRetryToken(key, token, { host: '192.0.2.7', port: 4434 }, retryScid, t0), {
      ok: false,
      reason: 'wrong_address',
    });
  });

  it('refuses a token used with another destination id', () => {
    const token = mintRetryToken(key, peer, retryScid, odcid, t0);
    assert.deepEqual(checkRetryToken(key, token, peer, Buffer.alloc(20, 0xac), t0), { ok: false, reason: 'invalid' });
  });

  it(`expires a token after ${RETRY_TOKEN_LIFETIME_MS} ms and refuses one from the future`, () => {
    const token = mintRetryToken(key, peer, retryScid, odcid, t0);
    assert.equal(checkRetryToken(key, token, peer, retryScid, t0 + RETRY_TOKEN_LIFETIME_MS).ok, true);
    assert.deepEqual(checkRetryToken(key, token, peer, retryScid, t0 + RETRY_TOKEN_LIFETIME_MS + 1), {
      ok: false,
      reason: 'expired',
    });
    assert.deepEqual(checkRetryToken(key, token, peer, retryScid, t0 - 1), { ok: false, reason: 'expired' });
    assert.equal(checkRetryToken(key, token, peer, retryScid, t0, 5).ok, true);
    assert.equal(checkRetryToken(key, token, peer, retryScid, t0 + 6, 5).ok, false);
  });

  it("refuses another process's token (another key) and every single-bit change", () => {
    const token = mintRetryToken(key, peer, retryScid, odcid, t0);
    assert.deepEqual(checkRetryToken(newRetryTokenKey(), token, peer, retryScid, t0), { ok: false, reason: 'invalid' });
    for (let i = 1; i < token.length; i++) {
      const forged = Buffer.from(token);
      forged[i] ^= 0x01;
      assert.deepEqual(
        checkRetryToken(key, forged, peer, retryScid, t0),
        { ok: false, reason: 'invalid' },
        `byte ${i}`,
      );
    }
  });

  it('tells our tokens from other tokens by length and marker, and refuses the others', () => {
    const token = mintRetryToken(key, peer, retryScid, odcid, t0);
    const wrongMarker = Buffer.from(token);
    wrongMarker[0] ^= 0xff;
    for (const t of [Buffer.alloc(0), token.subarray(1), Buffer.concat([token, Buffer.from([0])]), wrongMarker]) {
      assert.equal(isRetryTokenFormat(t), false);
      assert.deepEqual(checkRetryToken(key, t, peer, retryScid, t0), { ok: false, reason: 'invalid' });
    }
  });

  it('each token is different (random nonce), even for the same inputs', () => {
    const a = mintRetryToken(key, peer, retryScid, odcid, t0);
    const b = mintRetryToken(key, peer, retryScid, odcid, t0);
    assert.notDeepEqual(a, b);
  });
});
