/**
 * A quiche client and server joined by an in-memory link (real QUIC, real TLS, no socket), so
 * the order of ACKs and writes can be forced. It pins down the quiche 0.18 behaviour behind
 * `END_OF_STREAM`: a bare FIN written after the stream's data was sent, followed by the ACK
 * of that data, is never delivered; a FIN that rides on a byte always is.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { END_OF_STREAM } from '../h3/frames.js';
import { deliver, drain, linkConfigs } from './in-memory-link.js';
import { type Host, quiche } from './quiche.js';

const CLIENT: Host = { host: '127.0.0.1', port: 40001 };
const SERVER: Host = { host: '127.0.0.1', port: 40002 };

function connectedPair() {
  const cfg = linkConfigs('fin');
  const client = quiche.Connection.connect('localhost', randomBytes(16), CLIENT, SERVER, cfg.client);
  const first = drain(client);
  const server = quiche.Connection.accept(randomBytes(16), null, SERVER, CLIENT, cfg.server);
  deliver(first, server, { from: CLIENT, to: SERVER });
  for (let i = 0; i < 10 && !(client.isEstablished() && server.isEstablished()); i++) {
    deliver(drain(server), client, { from: SERVER, to: CLIENT });
    deliver(drain(client), server, { from: CLIENT, to: SERVER });
  }
  assert.ok(client.isEstablished() && server.isEstablished(), 'handshake over the in-memory link');
  return { client, server };
}

/** A request stream answered with `body`; its end written only after the body went out. */
function finishAfterBodyAcked(fin: Uint8Array): boolean {
  const { client, server } = connectedPair();
  const toServer = { from: CLIENT, to: SERVER };
  const toClient = { from: SERVER, to: CLIENT };
  client.streamSend(0, Buffer.from('request'), true);
  deliver(drain(client), server, toServer);
  const rbuf = new Uint8Array(1024);
  assert.deepEqual(server.streamRecv(0, rbuf), [7, true]);
  server.streamSend(0, Buffer.from('response body'), false);
  deliver(drain(server), client, toClient);
  const ack = drain(client); // the client acknowledges the body …
  server.streamSend(0, fin, true); // … while the server, in the same loop turn, ends the stream
  deliver(ack, server, toServer); // the ACK is processed before the server's next send pass
  for (let i = 0; i < 5; i++) {
    deliver(drain(server), client, toClient);
    deliver(drain(client), server, toServer);
  }
  let finished = false;
  for (let i = 0; i < 5 && !finished; i++) {
    const r = client.streamRecv(0, rbuf);
    if (r === null) break;
    finished = r[1];
  }
  return finished;
}

describe('stream FIN after acknowledged data (quiche 0.18)', () => {
  it('a bare FIN is lost: this is why END_OF_STREAM exists', () => {
    // If this starts failing, quiche fixed the bug and END_OF_STREAM could go.
    assert.equal(finishAfterBodyAcked(new Uint8Array(0)), false);
  });

  it('a FIN riding on END_OF_STREAM reaches the client', () => {
    assert.ok(END_OF_STREAM.length > 0);
    assert.equal(finishAfterBodyAcked(END_OF_STREAM), true);
  });
});
