/**
 * spooky-control's TCP listener for remote data planes (control.listen): a gRPC server of its own
 * (so every stream on it is known to be TCP, never mistaken for the unix socket), TLS 1.2+ with a
 * client certificate from the fleet CA required at the handshake, and keepalive so that a peer
 * that vanished (power loss, partition) is noticed within about 20 s.
 */
import type { Http2SecureServer } from 'node:http2';
import type net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { hostPort, KEEPALIVE_MS } from '../../lib/control-channel.js';
import type { ControlListen } from '../../model/config/runtime.js';
import { type ControlPlaneServer, ControlPlaneService } from '../../proto/gen/spooky/v1/control.js';

/** Refused handshakes logged at warn per minute (a scanner must not flood the log); then debug. */
const HANDSHAKE_WARNINGS_PER_MINUTE = 20;

export const KEEPALIVE_OPTIONS: grpc.ServerOptions = {
  'grpc.keepalive_time_ms': KEEPALIVE_MS,
  'grpc.keepalive_timeout_ms': KEEPALIVE_MS,
};

export async function startFleetListener(
  l: ControlListen,
  service: ControlPlaneServer,
  log: Logger,
): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server(KEEPALIVE_OPTIONS);
  server.addService(ControlPlaneService, service);
  const credentials = grpc.ServerCredentials.createSsl(
    Buffer.from(l.clientCaPem),
    [{ cert_chain: Buffer.from(l.certPem), private_key: Buffer.from(l.keyPem) }],
    true,
  );
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(hostPort(l.address, l.port), credentials, (err, bound) => (err ? reject(err) : resolve(bound)));
  });
  reportHandshakeFailures(server, log);
  return { server, port };
}

/**
 * grpc-js drops a client whose certificate fails verification without telling anyone; the
 * operator of a fleet needs to see who knocked. Its TLS servers are not public API, so this
 * reaches into the field it keeps them in and does nothing if that ever changes.
 */
function reportHandshakeFailures(server: grpc.Server, log: Logger): void {
  const servers = (server as unknown as { http2Servers?: Map<unknown, unknown> }).http2Servers;
  if (!(servers instanceof Map)) return;
  let windowStart = 0;
  let inWindow = 0;
  for (const s of servers.keys()) {
    const tls = s as Http2SecureServer;
    if (typeof tls.on !== 'function') continue;
    // By the time TLS fails, its socket is closed and has forgotten its peer: noted on accept.
    const peers = new WeakMap<net.Socket, string>();
    tls.on('connection', (tcp: net.Socket) => peers.set(tcp, hostPort(tcp.remoteAddress ?? '?', tcp.remotePort ?? 0)));
    tls.on('tlsClientError', (e: Error & { code?: string }, socket: net.Socket & { _parent?: net.Socket }) => {
      const now = Date.now();
      if (now - windowStart >= 60_000) {
        windowStart = now;
        inWindow = 0;
      }
      log[++inWindow <= HANDSHAKE_WARNINGS_PER_MINUTE ? 'warn' : 'debug'](
        { peer: peers.get(socket._parent ?? socket) ?? '?', reason: e.code ?? e.message },
        'refused a TLS connection on control.listen (no client certificate from the fleet CA, or not TLS)',
      );
    });
  }
}
