/**
 * For unit tests of quiche connections without sockets: what a connection has to send now, and
 * handing datagrams to the other side, as a lossless in-memory link would.
 */
import { type Connection, type Host, quiche } from './quiche.js';

const buf = new Uint8Array(quiche.MAX_DATAGRAM_SIZE);

/** Every datagram `from` has ready now (bounded, in case a connection never runs dry). */
export function drain(from: Connection): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < 1000; i++) {
    const r = from.send(buf);
    if (r === null) break;
    out.push(Buffer.from(buf.subarray(0, r[0])));
  }
  return out;
}

export function deliver(datagrams: Uint8Array[], to: Connection, info: { from: Host; to: Host }): void {
  for (const d of datagrams) to.recv(d, info);
}
