/**
 * The data plane assembled: listener (QUIC endpoint) → connection (HTTP/3 session) → stream →
 * router/forwarder → upstream agent, all reading one snapshot reference. Used by the
 * `spooky-dataplane` command and by `spooky run`.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { RuntimeConfig } from '../controlplane/config/runtime.js';
import { h3ErrorName } from './h3/errors.js';
import { H3ServerSession } from './h3/server.js';
import { Forwarder } from './proxy/forwarder.js';
import { QuicEndpoint } from './quic/endpoint.js';
import { type Config, quiche } from './quic/quiche.js';
import { Snapshot } from './snapshot.js';
import { UpstreamAgent, upstreamTlsOptions } from './upstream/agent.js';

type Performance = RuntimeConfig['performance'];

/** One quiche Config per listener: certificate, ALPN h3, flow-control limits, ticket key. */
export function buildQuicServerConfig(certFile: string, keyFile: string, perf: Performance): Config {
  const cert = readFileSync(certFile);
  const key = readFileSync(keyFile);
  const cfg = quiche.Config.withBoringSslCtx(false, false, null, [key], [cert], null);
  cfg.setApplicationProtos(['h3']);
  cfg.setMaxIdleTimeout(perf.quic_max_idle_timeout_ms);
  cfg.setMaxRecvUdpPayloadSize(quiche.MAX_DATAGRAM_SIZE);
  cfg.setMaxSendUdpPayloadSize(quiche.MAX_DATAGRAM_SIZE);
  cfg.setInitialMaxData(perf.quic_initial_max_data);
  cfg.setInitialMaxStreamDataBidiLocal(perf.quic_initial_max_stream_data);
  cfg.setInitialMaxStreamDataBidiRemote(perf.quic_initial_max_stream_data);
  cfg.setInitialMaxStreamDataUni(perf.quic_initial_max_stream_data);
  cfg.setInitialMaxStreamsBidi(perf.quic_initial_max_streams_bidi);
  cfg.setInitialMaxStreamsUni(perf.quic_initial_max_streams_uni);
  cfg.setCcAlgorithmName(perf.quic_cc_algorithm);
  cfg.setDisableActiveMigration(true);
  // A per-process ticket key lets clients resume sessions (one round trip saved on reconnect).
  cfg.setTicketKey(randomBytes(48));
  if (perf.quic_0rtt) cfg.enableEarlyData();
  return cfg;
}

export class DataPlane {
  private snapshot: Snapshot;
  private readonly agent: UpstreamAgent;
  private endpoint: QuicEndpoint | null = null;
  private readonly sessions = new Set<H3ServerSession>();
  private stopping: Promise<void> | null = null;

  constructor(
    config: RuntimeConfig,
    private readonly log: Logger,
  ) {
    this.snapshot = new Snapshot(1, config);
    this.agent = new UpstreamAgent(upstreamTlsOptions(config.upstreamTls));
    if (!config.upstreamTls.verify) {
      log.warn(
        'upstream_tls.verify is false: backend certificates are not checked (anyone on the path can impersonate a backend)',
      );
    }
  }

  get current(): Snapshot {
    return this.snapshot;
  }

  get address(): { host: string; port: number } {
    if (!this.endpoint) throw new Error('not listening');
    return this.endpoint.address;
  }

  async start(): Promise<void> {
    const { listen, performance: perf } = this.snapshot.config;
    const quicConfig = buildQuicServerConfig(listen.certFile, listen.keyFile, perf);
    const forwarder = new Forwarder({
      snapshot: () => this.snapshot,
      agent: this.agent,
      log: this.log.child({ component: 'access' }),
    });
    const sessionOptions = {
      maxFieldSectionSize: perf.max_request_headers_bytes,
      maxHeaderCount: perf.max_request_headers_count,
    };
    this.endpoint = await QuicEndpoint.listen(listen.address, listen.port, {
      config: quicConfig,
      onConnection: (conn) => {
        const session = new H3ServerSession(conn, forwarder, sessionOptions);
        this.sessions.add(session);
        session.onGone = () => this.sessions.delete(session);
      },
    });
    const port = this.endpoint.address.port;
    const altSvc = this.snapshot.config.listen.altSvc;
    forwarder.altSvc = altSvc ? `h3=":${altSvc.port ?? port}"; ma=${altSvc.maxAge}` : null;
    if (this.snapshot.config.listen.tcp) {
      this.log.warn('listen.tcp is enabled, but this build serves HTTP/3 only: no TCP listener runs yet');
    }
    const buffers = this.endpoint.socketBuffers;
    this.log.info({ address: listen.address, port, protocol: 'h3', udp_recv_buffer: buffers.recv }, 'listening');
    if (buffers.recv < 8 * 1024 * 1024) {
      this.log.warn(
        { udp_recv_buffer: buffers.recv },
        'UDP receive buffer is small, bursts will be dropped: set net.core.rmem_max = 67108864 (e.g. /etc/sysctl.d/99-spooky.conf)',
      );
    }
  }

  /**
   * Graceful stop: GOAWAY on every connection, wait for in-flight streams up to the drain
   * timeout, then close connections, upstream sessions and the socket.
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const ep = this.endpoint;
    if (!ep) return;
    ep.stopAccepting();
    const openAtStop = ep.connectionCount;
    const timeoutMs = this.snapshot.config.performance.shutdown_drain_timeout_ms;
    const drained = [...this.sessions].map(
      (s) =>
        new Promise<void>((resolve) => {
          s.onDrained = () => resolve();
          s.beginDrain();
        }),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(drained), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    await ep.close(0x100, 'shutting down');
    this.agent.destroy();
    this.log.info({ code: h3ErrorName(0x100), connections_at_stop: openAtStop, ...ep.counters }, 'stopped');
  }
}
