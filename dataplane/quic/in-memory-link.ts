/**
 * For unit tests of quiche connections without sockets: what a connection has to send now, and
 * handing datagrams to the other side, as a lossless in-memory link would.
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSelfSigned } from '../../cli/certs.js';
import { type Config, type Connection, type Host, quiche } from './quiche.js';

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

/** The settings both ends of an in-memory pair use: h3, a 30 s idle timeout, generous stream limits. */
function linkSettings(c: Config): Config {
  c.setApplicationProtos(['h3']);
  c.setMaxIdleTimeout(30000);
  c.setInitialMaxData(1 << 20);
  c.setInitialMaxStreamDataBidiLocal(1 << 20);
  c.setInitialMaxStreamDataBidiRemote(1 << 20);
  c.setInitialMaxStreamsBidi(10);
  c.setInitialMaxStreamsUni(10);
  return c;
}

/** A client config with the link's settings that does not verify the server's certificate. */
export function linkClientConfig(): Config {
  return linkSettings(quiche.Config.withBoringSslCtx(false, false, null, null, null, null));
}

/** A server config (a fresh self-signed certificate for `localhost`) and a client config, both with the link's settings. */
export function linkConfigs(tag: string): { server: Config; client: Config } {
  const cert = generateSelfSigned(join(tmpdir(), `spooky-${tag}-${process.pid}`));
  const server = quiche.Config.withBoringSslCtx(
    false,
    false,
    null,
    [readFileSync(cert.keyFile)],
    [readFileSync(cert.certFile)],
    null,
  );
  return { server: linkSettings(server), client: linkClientConfig() };
}
