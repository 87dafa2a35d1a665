/**
 * Why Spooky does not pace by quiche's hint (issue #16 item 4; docs/performance.md): the
 * binding hands `SendInfo.at`, quiche's release time for the datagram, to JavaScript as an empty
 * object (Rust's `Instant` has no readable value), so there is nothing to wait for. If this test
 * fails, a binding update made the time readable: honour it in `QuicConnection.flush`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { deliver, drain, linkConfigs } from './in-memory-link.js';
import { type Host, quiche } from './quiche.js';

const CLIENT: Host = { host: '127.0.0.1', port: 40031 };
const SERVER: Host = { host: '127.0.0.1', port: 40032 };

describe("quiche's pacing hint through the binding", () => {
  it('SendInfo.at carries no readable time', () => {
    const { server, client } = linkConfigs('pacing');
    server.enablePacing(true);
    client.enablePacing(true);
    const cl = quiche.Connection.connect('localhost', randomBytes(16), CLIENT, SERVER, client);
    const first = drain(cl);
    const sv = quiche.Connection.accept(randomBytes(16), null, SERVER, CLIENT, server);
    deliver(first, sv, { from: CLIENT, to: SERVER });
    const res = sv.send(new Uint8Array(quiche.MAX_DATAGRAM_SIZE));
    assert.ok(res, 'the server answers the Initial');
    const at: unknown = res[1].at;
    assert.equal(typeof at, 'object');
    assert.deepEqual(Object.keys(at as object), []);
    // A prototype-less object: not even a `valueOf` to turn into a number.
    assert.equal(Object.getPrototypeOf(at), null);
  });
});
