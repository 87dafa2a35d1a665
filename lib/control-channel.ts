/** What both ends of the control connection agree on when it runs over TCP (control.listen/server). */

/** Keepalive pings on a TCP control stream: a silent peer is given up after about twice this. */
export const KEEPALIVE_MS = 10_000;

/** `host:port` for grpc-js, with IPv6 literals bracketed. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
