/**
 * The data plane assembled: listener (QUIC endpoint) → connection (HTTP/3 session) → stream →
 * router/forwarder → the pool's cluster → upstream dispatcher, all reading one snapshot reference. Used by the
 * `spooky-dataplane` command and by `spooky run`.
 */

import type { Logger } from 'pino';
import { currentAllocator } from '../lib/allocator.js';
import { componentLogger, setLogLevel } from '../lib/log.js';
import type { RuntimeConfig } from '../model/config/runtime.js';
import {
  type AdmissionAttempt,
  type AdmissionLimits,
  type AdmissionVerdict,
  ConnectionAdmission,
} from './admission/connection-admission.js';
import type { BackendStates } from './backend-states.js';
import type { OverloadState } from './cluster/global-admission.js';
import { ClusterManager } from './cluster/manager.js';
import { ConnectionGuard } from './connection-guard.js';
import { h3ErrorName } from './h3/errors.js';
import { H3ServerSession, type ServerSessionOptions } from './h3/server.js';
import { DataPlaneMetrics } from './metrics.js';
import { Forwarder } from './proxy/forwarder.js';
import { type EndpointSteering, QuicEndpoint } from './quic/endpoint.js';
import type { Host } from './quic/quiche.js';
import { type Config, quiche } from './quic/quiche.js';
import { TicketKeyRotation } from './quic/ticket-keys.js';
import type { Snapshot } from './snapshot.js';
import { type TcpLimits, TcpListener } from './tcp/listener.js';

type Performance = RuntimeConfig['performance'];

/** How often the ticket key's age is checked (the rotation period is in quic/ticket-keys.ts). */
const TICKET_KEY_CHECK_MS = 60_000;

function tcpLimits(perf: Performance): TcpLimits {
  return {
    maxHeaderCount: perf.max_request_headers_count,
    maxHeaderBytes: perf.max_request_headers_bytes,
    maxConcurrentStreams: perf.quic_initial_max_streams_bidi,
    requestHeaderTimeoutMs: perf.request_header_timeout_ms,
  };
}

/**
 * The most stream data a client may have sent that the data plane has not read yet (an upload
 * waits in quiche while its backend is slower), which the overhead guard must not take for a
 * flood of other frames. quiche grows the windows of a client whose data is read quickly
 * (auto-tuning: streams up to 16 MiB, the connection up to 24 MiB), so it is told to keep them at
 * the configured sizes; it also keeps a connection's window at least 1.5 × a stream's, and a
 * ceiling below that makes it announce more credit than it then enforces (FLOW_CONTROL_ERROR).
 */
export function unreadWindowBytes(perf: Performance): number {
  return Math.max(perf.quic_initial_max_data, Math.ceil(1.5 * perf.quic_initial_max_stream_data));
}

/**
 * One quiche Config per listener, shared by every connection it accepts: certificate, ALPN h3,
 * flow-control limits, session-ticket key (see quic/ticket-keys.ts), early data.
 */
export function buildQuicServerConfig(
  certPem: string,
  keyPem: string,
  perf: Performance,
  clientCaPem: string | null,
  ticketKey: Uint8Array,
): Config {
  // With a client CA, BoringSSL asks for a client certificate and fails the handshake without a
  // valid one (alerts certificate_required / unknown_ca): mTLS with require: true.
  const ca = clientCaPem === null ? null : Buffer.from(clientCaPem);
  const cfg = quiche.Config.withBoringSslCtx(
    ca !== null,
    false,
    ca,
    [Buffer.from(keyPem)],
    [Buffer.from(certPem)],
    null,
  );
  cfg.setApplicationProtos(['h3']);
  cfg.setMaxIdleTimeout(perf.quic_max_idle_timeout_ms);
  cfg.setMaxRecvUdpPayloadSize(quiche.MAX_DATAGRAM_SIZE);
  cfg.setMaxSendUdpPayloadSize(quiche.MAX_DATAGRAM_SIZE);
  cfg.setInitialMaxData(perf.quic_initial_max_data);
  cfg.setMaxStreamWindow(perf.quic_initial_max_stream_data);
  cfg.setMaxConnectionWindow(unreadWindowBytes(perf));
  cfg.setInitialMaxStreamDataBidiLocal(perf.quic_initial_max_stream_data);
  cfg.setInitialMaxStreamDataBidiRemote(perf.quic_initial_max_stream_data);
  cfg.setInitialMaxStreamDataUni(perf.quic_initial_max_stream_data);
  cfg.setInitialMaxStreamsBidi(perf.quic_initial_max_streams_bidi);
  cfg.setInitialMaxStreamsUni(perf.quic_initial_max_streams_uni);
  cfg.setCcAlgorithmName(perf.quic_cc_algorithm);
  // Clients may migrate (a phone moving from Wi-Fi to cellular keeps its connection): every
  // connection is offered spare ids to migrate to, and with workers the ids steer the datagrams
  // of the new path to the worker that holds the connection.
  cfg.setDisableActiveMigration(false);
  // The process's ticket key, not one per Config: tickets stay valid across a config apply.
  cfg.setTicketKey(ticketKey);
  // Without this call BoringSSL issues tickets that do not allow early data and refuses 0-RTT.
  if (perf.quic_0rtt) cfg.enableEarlyData();
  return cfg;
}

/** The admission limits of the performance section. */
export function admissionLimits(perf: Performance): AdmissionLimits {
  return {
    maxActive: perf.max_active_connections,
    newPerSec: perf.new_connections_per_sec,
    newBurst: perf.new_connections_burst,
    perSourceMaxActive: perf.per_source_max_connections,
    perSourceNewPerSec: perf.per_source_new_connections_per_sec,
    perSourceNewBurst: perf.per_source_new_connections_burst,
  };
}

/** A data plane that is one of several workers on one port (dataplane/workers/). */
export interface WorkerRole {
  /** The port every worker binds with SO_REUSEPORT (chosen by the supervisor for listen.port 0). */
  readonly port: number;
  readonly steering: EndpointSteering;
  /** Shared by all workers: a Retry sent by one is honoured by any. */
  readonly retryKey: Uint8Array;
  /** The supervisor's current session-ticket key (it rotates it for every worker). */
  readonly ticketKey: Uint8Array;
}

/** The result of offering a snapshot to the data plane (ACK or NACK). */
export type ApplyOutcome = { ok: true } | { ok: false; error: string; restartRequired: boolean };

/** Certificate, key or QUIC transport settings differ: new connections need a new quiche Config. */
function quicSettingsChanged(a: RuntimeConfig, b: RuntimeConfig): boolean {
  if (a.listen.certPem !== b.listen.certPem || a.listen.keyPem !== b.listen.keyPem) return true;
  if (JSON.stringify(a.listen.clientAuth) !== JSON.stringify(b.listen.clientAuth)) return true;
  const keys = Object.keys(a.performance).filter((k) => k.startsWith('quic_')) as Array<
    keyof RuntimeConfig['performance']
  >;
  return keys.some((k) => JSON.stringify(a.performance[k]) !== JSON.stringify(b.performance[k]));
}

export class DataPlane {
  private snapshot: Snapshot;
  readonly metrics = new DataPlaneMetrics();
  /** The clusters of the current snapshot and the state that outlives snapshots. */
  private readonly clusters: ClusterManager;
  private endpoint: QuicEndpoint | null = null;
  /** HTTP/2 + HTTP/1.1 over TLS on the QUIC port (listen.tcp). */
  private tcp: TcpListener | null = null;
  private forwarder: Forwarder | null = null;
  private boundPort = 0;
  private readonly sessions = new Set<H3ServerSession>();
  private readonly guard: ConnectionGuard;
  private stopping: Promise<void> | null = null;
  /** Caps and rates on new connections, QUIC and TCP together (see admission/). */
  private readonly admission: ConnectionAdmission;
  /** The session-ticket key of this process, rotated on a timer, kept across applies. */
  private readonly ticketKeys = new TicketKeyRotation(performance.now());
  private ticketKeyTimer: NodeJS.Timeout | null = null;
  /** The key tickets are sealed with now (a worker's comes from its supervisor). */
  private ticketKey: Uint8Array;
  /** The quiche Config new QUIC connections are accepted with. */
  private quicConfig: Config | null = null;

  constructor(
    config: RuntimeConfig,
    private readonly log: Logger,
    version = 0,
    private readonly worker: WorkerRole | null = null,
  ) {
    this.ticketKey = worker?.ticketKey ?? this.ticketKeys.current;
    this.clusters = new ClusterManager(config, this.metrics);
    const admission = this.clusters.admission;
    this.metrics.bindInflight(() => admission.inFlight.value);
    this.metrics.bindOverload(() => admission.overloadState());
    this.metrics.bindTransport(() => {
      const ep = this.endpoint;
      if (!ep) return null;
      return { connections: this.connectionCount(), streams: this.streamCount(), counters: ep.counters };
    });
    this.admission = new ConnectionAdmission(admissionLimits(config.performance), performance.now());
    this.metrics.bindAdmission(() => this.admission.trackedSources(performance.now()));
    this.snapshot = this.clusters.build(version, config);
    this.clusters.commit(this.snapshot);
    this.guard = new ConnectionGuard(this.sessions, () => this.snapshot.config.performance, log);
    if (!config.upstreamTls.verify) {
      log.warn(
        'upstream_tls.verify is false: backend certificates are not checked (anyone on the path can impersonate a backend)',
      );
    }
  }

  /** Health and drain per backend, as the control plane pushes them. */
  get backendStates(): BackendStates {
    return this.clusters.states;
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
    const quicConfig = buildQuicServerConfig(
      listen.certPem,
      listen.keyPem,
      perf,
      listen.clientAuth?.caPem ?? null,
      this.ticketKey,
    );
    this.quicConfig = quicConfig;
    const forwarder = new Forwarder({
      snapshot: () => this.snapshot,
      metrics: this.metrics,
      // Access lines are built field by field from request metadata: nothing in them to redact.
      log: componentLogger(this.log, 'access', { redact: false }),
    });
    this.forwarder = forwarder;
    // Read per connection, so that an applied snapshot's limits hold for every new connection.
    const sessionOptions = (): ServerSessionOptions => {
      const p = this.snapshot.config.performance;
      return {
        maxFieldSectionSize: p.max_request_headers_bytes,
        maxHeaderCount: p.max_request_headers_count,
        requestHeaderTimeoutMs: p.request_header_timeout_ms,
      };
    };
    const admit = (attempt: AdmissionAttempt): AdmissionVerdict => this.admitConnection(attempt);
    let port = 0;
    const bindPort = this.worker?.port ?? listen.port;
    // With port 0 the OS picks a free UDP port; the same TCP port may be taken: pick again.
    for (let attempt = 1; ; attempt++) {
      const endpoint = await QuicEndpoint.listen(listen.address, bindPort, {
        steering: this.worker?.steering,
        retryKey: this.worker?.retryKey,
        config: quicConfig,
        admit,
        streamWindowBytes: () => unreadWindowBytes(this.snapshot.config.performance),
        handshakeTimeoutMs: () => this.snapshot.config.performance.tls_handshake_timeout_ms,
        retry: () => {
          const p = this.snapshot.config.performance;
          return { mode: p.quic_retry, newConnectionsPerSec: p.new_connections_per_sec };
        },
        onConnection: (conn) => {
          const session = new H3ServerSession(conn, forwarder, sessionOptions());
          this.sessions.add(session);
          session.onGone = () => this.sessions.delete(session);
        },
      });
      this.endpoint = endpoint;
      endpoint.onConnectionRtt = (ms) => this.metrics.quicRtt.observe(ms / 1000);
      port = endpoint.address.port;
      if (!listen.tcp) break;
      const tcp = new TcpListener({
        address: listen.address,
        port,
        certPem: listen.certPem,
        keyPem: listen.keyPem,
        handler: forwarder,
        limits: tcpLimits(perf),
        log: componentLogger(this.log, 'tcp'),
        admit,
        tlsHandshakeTimeoutMs: perf.tls_handshake_timeout_ms,
        clientCaPem: listen.clientAuth?.caPem ?? null,
        reusePort: this.worker !== null,
      });
      try {
        await tcp.listen();
        this.tcp = tcp;
        break;
      } catch (e) {
        this.endpoint = null;
        await endpoint.close(0x100, 'TCP port unavailable');
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EADDRINUSE' || bindPort !== 0 || attempt >= 5) {
          throw new Error(`cannot listen on TCP ${listen.address}:${port}: ${(e as Error).message}`);
        }
      }
    }
    this.boundPort = port;
    this.guard.start();
    if (!this.worker) {
      this.ticketKeyTimer = setInterval(() => this.rotateTicketKey(), TICKET_KEY_CHECK_MS);
      this.ticketKeyTimer.unref();
    }
    this.updateAltSvc();
    const buffers = (this.endpoint as QuicEndpoint).socketBuffers;
    this.log.info(
      {
        address: listen.address,
        port,
        protocol: 'h3',
        tcp_port: this.tcp ? port : undefined,
        udp_recv_buffer: buffers.recv,
        allocator: currentAllocator(),
      },
      'listening',
    );
    if (buffers.recv < 8 * 1024 * 1024) {
      this.log.warn(
        { udp_recv_buffer: buffers.recv },
        'UDP receive buffer is small, bursts will be dropped: set net.core.rmem_max = 67108864 (e.g. /etc/sysctl.d/99-spooky.conf)',
      );
    }
  }

  /**
   * A new ticket key once the rotation period passed. BoringSSL reads the key from the Config's
   * SSL_CTX for every ticket it seals or opens, so the key changes for all connections at once.
   */
  private rotateTicketKey(): void {
    const key = this.ticketKeys.rotateIfDue(performance.now());
    if (key) this.useTicketKey(key);
  }

  /** Seals and opens tickets with `key` from now on (a worker gets it from its supervisor). */
  useTicketKey(key: Uint8Array): void {
    this.ticketKey = key;
    if (!this.quicConfig) return;
    this.quicConfig.setTicketKey(key);
    this.log.info('QUIC session-ticket key rotated');
  }

  /** A datagram another worker received for one of this worker's connections. */
  receiveHandedOver(datagram: Buffer, from: Host): void {
    this.endpoint?.receiveHandedOver(datagram, from);
  }

  /**
   * One admission for QUIC and TCP: a new connection (a QUIC Initial, an accepted TCP socket)
   * starts only while the memory guard allows, then within the caps and rates of
   * ConnectionAdmission; a refused Initial is dropped (the client's handshake times out or it
   * retries later), a refused TCP connection closed, and either is counted by reason.
   */
  private admitConnection(attempt: AdmissionAttempt): AdmissionVerdict {
    if (this.guard.memory.refusing) {
      this.metrics.shed('memory');
      return { ok: false, reason: 'memory' };
    }
    const verdict = this.admission.admit(attempt, performance.now());
    if (!verdict.ok) this.metrics.shed(verdict.reason);
    return verdict;
  }

  /** Open client connections, QUIC and TCP together. */
  private connectionCount(): number {
    return (this.endpoint?.connectionCount ?? 0) + (this.tcp?.connectionCount ?? 0);
  }

  /** Open HTTP/3 request streams. */
  private streamCount(): number {
    let streams = 0;
    for (const s of this.sessions) streams += s.streams.size;
    return streams;
  }

  private statsAt = performance.now();
  private statsRequests = 0;

  /**
   * Figures for the control plane's `dataplanes` and `backends` views. `advanceRate` starts a
   * new requests-per-second window (the periodic Stats do; an on-demand reply reuses the window).
   */
  stats(advanceRate = true): {
    activeConnections: number;
    activeStreams: number;
    requestsTotal: number;
    requestsPerSecond: number;
    overload: OverloadState;
    backendInFlight: Array<{ backendId: string; inFlight: number }>;
  } {
    const now = performance.now();
    const total = this.forwarder?.requests ?? 0;
    const seconds = (now - this.statsAt) / 1000;
    const rps = seconds > 0 ? (total - this.statsRequests) / seconds : 0;
    if (advanceRate) {
      this.statsAt = now;
      this.statsRequests = total;
    }
    return {
      activeConnections: this.connectionCount(),
      activeStreams: this.streamCount(),
      requestsTotal: total,
      requestsPerSecond: Math.round(rps * 10) / 10,
      overload: this.clusters.admission.overloadState(),
      backendInFlight: this.clusters.backendsInFlight(),
    };
  }

  private updateAltSvc(): void {
    if (!this.forwarder) return;
    const altSvc = this.snapshot.config.listen.altSvc;
    this.forwarder.altSvc = altSvc ? `h3=":${altSvc.port ?? this.boundPort}"; ma=${altSvc.maxAge}` : null;
  }

  /**
   * Warms a new snapshot and swaps it in atomically. Requests in flight keep the snapshot they
   * started with; backends that left drain their HTTP/2 sessions; a new certificate serves new
   * connections. A change only a restart can make (listen address or port) is refused.
   */
  apply(config: RuntimeConfig, version: number): ApplyOutcome {
    const old = this.snapshot.config;
    if (config.listen.address !== old.listen.address || config.listen.port !== old.listen.port) {
      return {
        ok: false,
        restartRequired: true,
        error: `listen address or port changed (${old.listen.address}:${old.listen.port} → ${config.listen.address}:${config.listen.port}); restart spooky-dataplane to apply it`,
      };
    }
    if (
      (config.listen.clientAuth === null) !== (old.listen.clientAuth === null) ||
      config.listen.tcp !== old.listen.tcp
    ) {
      // A TLS server cannot start or stop asking for client certificates, nor a listener appear.
      return {
        ok: false,
        restartRequired: true,
        error: 'listen.tls.client_auth turned on or off, or listen.tcp changed; restart spooky-dataplane to apply it',
      };
    }
    let snapshot: Snapshot;
    let quicConfig: Config | null = null;
    try {
      if (this.endpoint && quicSettingsChanged(old, config)) {
        quicConfig = buildQuicServerConfig(
          config.listen.certPem,
          config.listen.keyPem,
          config.performance,
          config.listen.clientAuth?.caPem ?? null,
          this.ticketKey,
        );
      }
      snapshot = this.clusters.build(version, config);
    } catch (e) {
      return { ok: false, restartRequired: false, error: `cannot load the snapshot: ${(e as Error).message}` };
    }
    // Everything that can fail is done: from here the swap cannot be half-applied.
    if (quicConfig) {
      this.quicConfig = quicConfig;
      this.endpoint?.setServerConfig(quicConfig);
      this.tcp?.setCertificate(config.listen.certPem, config.listen.keyPem, config.listen.clientAuth?.caPem ?? null);
    }
    this.snapshot = snapshot;
    this.clusters.commit(snapshot);
    this.tcp?.setLimits(tcpLimits(config.performance));
    this.guard.configure(config.performance);
    this.admission.configure(admissionLimits(config.performance), performance.now());
    this.tcp?.setTlsHandshakeTimeout(config.performance.tls_handshake_timeout_ms);
    this.updateAltSvc();
    setLogLevel(this.log, config.log.level);
    this.log.info({ version, pools: config.pools.size }, 'snapshot applied');
    return { ok: true };
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
    this.guard.stop();
    if (this.ticketKeyTimer) clearInterval(this.ticketKeyTimer);
    const openAtStop = ep.connectionCount;
    const tcpAtStop = this.tcp?.connectionCount ?? 0;
    const timeoutMs = this.snapshot.config.performance.shutdown_drain_timeout_ms;
    // TCP: GOAWAY on HTTP/2, `connection: close` on HTTP/1.1, forced after the same timeout.
    const tcpClosed = this.tcp?.close(timeoutMs) ?? Promise.resolve();
    const drained = [...this.sessions].map(
      (s) =>
        new Promise<void>((resolve) => {
          s.onDrained = () => resolve();
          s.beginDrain();
        }),
    );
    const deadline = performance.now() + timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(drained), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    // Answers are complete for the application; let the client acknowledge their last bytes.
    while (performance.now() < deadline && [...this.sessions].some((s) => s.unacknowledged() > 0)) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await ep.close(0x100, 'shutting down');
    await tcpClosed;
    this.clusters.destroy();
    this.log.info(
      {
        code: h3ErrorName(0x100),
        connections_at_stop: openAtStop,
        tcp_connections_at_stop: this.tcp ? tcpAtStop : undefined,
        requests: this.forwarder?.requests ?? 0,
        // What this process answered in its life, by status class: the first place to look after
        // a stop (the benchmark also reads it to prove every request reached the backend).
        responses: responseSummary(this.forwarder?.responsesByClass),
        ...ep.counters,
      },
      'stopped',
    );
  }
}

/** `{ "2xx": 120, "5xx": 3 }`: the classes that occurred. */
function responseSummary(byClass: readonly number[] | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (let c = 1; c <= 5; c++) if (byClass?.[c]) out[`${c}xx`] = byClass[c] as number;
  return out;
}
