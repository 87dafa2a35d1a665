import assert from 'node:assert/strict';
import { constants } from 'node:http2';
import { describe, it } from 'node:test';
import { goawayCodeFor } from './h2-abuse.js';

/** The shape of Node's internal NghttpError (lib/internal/http2/util.js). */
function nghttpError(errno: number, code = 'ERR_HTTP2_ERROR'): Error {
  return Object.assign(new Error('nghttp2'), { errno, code });
}

describe('goawayCodeFor (RFC 9113 codes for the errors Node ends a session with)', () => {
  it('names floods ENHANCE_YOUR_CALM', () => {
    assert.equal(goawayCodeFor(nghttpError(-904)), constants.NGHTTP2_ENHANCE_YOUR_CALM); // FLOODED
    assert.equal(goawayCodeFor(nghttpError(-902)), constants.NGHTTP2_ENHANCE_YOUR_CALM); // Node's guards
  });
  it('names invalid frames and a bad preface PROTOCOL_ERROR, flow control FLOW_CONTROL_ERROR', () => {
    assert.equal(
      goawayCodeFor(nghttpError(-902, 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES')),
      constants.NGHTTP2_PROTOCOL_ERROR,
    );
    assert.equal(goawayCodeFor(nghttpError(-903)), constants.NGHTTP2_PROTOCOL_ERROR);
    assert.equal(goawayCodeFor(nghttpError(-505)), constants.NGHTTP2_PROTOCOL_ERROR);
    assert.equal(goawayCodeFor(nghttpError(-524)), constants.NGHTTP2_FLOW_CONTROL_ERROR);
  });
  it('leaves everything else to Node', () => {
    assert.equal(goawayCodeFor(undefined), undefined);
    assert.equal(goawayCodeFor(new Error('x')), undefined);
    assert.equal(goawayCodeFor(nghttpError(-901)), undefined); // NOMEM: our side
  });
});
