/**
 * The data plane's end of the control protocol: dials the control plane (its local unix socket,
 * or a remote one over TCP with mutual TLS: control.server), says hello, applies each snapshot it
 * is offered and answers ACK or NACK, applies backend states, sends stats every few seconds and
 * whenever the control plane asks (a metrics scrape). When the stream breaks it keeps serving
 * what it has and redials with capped exponential backoff and jitter.
 */
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { hostPort, KEEPALIVE_MS } from '../../lib/control-channel.js';
import type { ControlServer } from '../../model/config/runtime.js';
import {
  type BackendStates,
  ControlPlaneClient,
  type ControlPlaneMessage,
  type DataPlaneMessage,
  type Snapshot,
  type Stats,
} from '../../proto/gen/spooky/v1/control.js';
import type { ApplyOutcome } from '../dataplane.js';
import { diagnoseControlTls, type TlsDiagnosis } from './tls-probe.js';

/** Where the control plane is: its local unix socket, or a remote one over TCP with mutual TLS. */
export type ControlTarget = { socketPath: string } | ControlServer;

export interface ControlClientOptions {
  target: ControlTarget;
  nodeId: string;
  build: string;
  /** The listener this data plane serves, said at hello (a control plane admits only its own). */
  listen: { address: string; port: number };
  servedVersion(): number;
  onSnapshot(snapshot: Snapshot): ApplyOutcome;
  onBackendStates(states: BackendStates): void;
  /** Figures without metrics text; `advanceRate` as in DataPlane.stats. */
  stats(advanceRate: boolean): Omit<Stats, 'servedVersion' | 'metricsText' | 'requestId'>;
  /** The data plane's Prometheus exposition, rendered now. */
  metricsText(): Promise<string>;
  log: Logger;
  statsIntervalMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Over TCP, say why the control plane cannot be reached (one process per host: worker 0). */
  diagnose?: boolean;
}

/** Delay before redial `attempt` (0-based): doubling from initial, capped, with full jitter. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  // Half fixed, half random: never a hot loop, and a fleet of data planes does not redial in step.
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export class ControlClient {
  private readonly client: grpc.Client & {
    stream(): grpc.ClientDuplexStream<DataPlaneMessage, ControlPlaneMessage>;
  };
  private call: grpc.ClientDuplexStream<DataPlaneMessage, ControlPlaneMessage> | null = null;
  private attempt = 0;
  private redialTimer: NodeJS.Timeout | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private connectedOnce = false;
  /** Over TCP: one plain TLS handshake that says why the control plane cannot be reached. */
  private diagnose: (() => TlsDiagnosis) | null = null;
  private probe: TlsDiagnosis | null = null;
  private probedThisOutage = false;
  /** The control plane's address, for log lines. */
  private readonly where: Record<string, string>;
  /** The reason of the last refusal logged at error (repeats of it go to debug). */
  private refusal: string | null = null;

  constructor(private readonly opts: ControlClientOptions) {
    const t = opts.target;
    this.where = 'socketPath' in t ? { socket: t.socketPath } : { control_server: hostPort(t.address, t.port) };
    const options: grpc.ChannelOptions = {
      // Our own backoff decides when to redial; keep grpc-js from adding a second, longer one.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
    };
    if ('socketPath' in t) {
      this.client = new ControlPlaneClient(`unix:${t.socketPath}`, grpc.credentials.createInsecure(), options) as never;
      return;
    }
    // Over the network the stream must notice a dead peer (a host that lost power) by itself.
    options['grpc.keepalive_time_ms'] = KEEPALIVE_MS;
    options['grpc.keepalive_timeout_ms'] = KEEPALIVE_MS;
    // The control plane's certificate must name server_name, else the address dialled (a DNS
    // name, or an IP literal in an IP subjectAltName). grpc-js would send an IP literal as SNI,
    // which Node refuses with a deprecation warning; SNI is unused by spooky-control, so an IP
    // target sends a fixed name there and the check below still compares against the IP.
    const expected = t.serverName ?? t.address;
    options['grpc.ssl_target_name_override'] = isIP(expected) === 0 ? expected : 'spooky-control';
    const verify = (_sni: string, cert: PeerCertificate) => checkServerIdentity(expected, cert);
    const credentials = grpc.credentials.createSsl(
      Buffer.from(t.caPem),
      Buffer.from(t.keyPem),
      Buffer.from(t.certPem),
      {
        checkServerIdentity: verify,
      },
    );
    // One process per host says why (the workers of a host share its credentials and fate).
    if (opts.diagnose !== false) this.diagnose = () => diagnoseControlTls(t, verify);
    this.client = new ControlPlaneClient(hostPort(t.address, t.port), credentials, options) as never;
  }

  start(): void {
    this.dial();
    this.statsTimer = setInterval(() => void this.sendStats(), this.opts.statsIntervalMs ?? 5000);
    this.statsTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    this.probe?.cancel();
    this.probe = null;
    if (this.redialTimer) clearTimeout(this.redialTimer);
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.call?.cancel();
    this.client.close();
  }

  private dial(): void {
    if (this.stopped) return;
    const call = this.client.stream();
    this.call = call;
    let live = true;
    const lost = (why: string, refused = false, unavailable = false) => {
      if (!live) return;
      live = false;
      if (this.call === call) this.call = null;
      if (this.stopped) return;
      const delay = backoffDelay(this.attempt++, this.opts.backoffInitialMs ?? 200, this.opts.backoffMaxMs ?? 5000);
      // The first failure is news; repeats while the control plane stays away are not.
      const first = this.attempt === 1;
      if (refused) {
        // Not a transient fault: say it loudly once per reason, even after a spell of
        // "unreachable" (a control plane that came up and refused us), and keep asking: an apply
        // may make us belong.
        const news = this.refusal !== why;
        this.refusal = why;
        this.opts.log[news ? 'error' : 'debug'](
          { ...this.where, reason: why, retry_in_ms: delay },
          'the control plane refused this data plane; serving the last snapshot',
        );
      } else {
        this.refusal = null;
        // Once per outage, on a connection that does not come up (UNAVAILABLE; an outage that
        // began with the peer ending the stream, a control plane restarting, still gets one).
        if (unavailable && !this.probedThisOutage && this.diagnose && !this.probe) {
          this.probedThisOutage = true;
          const probe = this.diagnose();
          this.probe = probe;
          void probe.result.then((diagnosis) => {
            this.probe = null;
            // Still away (connected since: nothing to explain).
            if (!this.stopped && this.attempt > 0)
              this.opts.log.warn({ ...this.where, diagnosis }, 'why the control plane cannot be reached');
          });
        }
        this.opts.log[first ? 'warn' : 'debug'](
          { ...this.where, reason: why, retry_in_ms: delay },
          'control plane unreachable; serving the last snapshot',
        );
      }
      this.redialTimer = setTimeout(() => this.dial(), delay);
    };
    call.on('data', (msg: ControlPlaneMessage) => {
      if (!this.connectedOnce || this.attempt > 0) this.opts.log.info(this.where, 'connected to the control plane');
      this.connectedOnce = true;
      this.attempt = 0;
      this.probedThisOutage = false;
      this.refusal = null;
      this.onMessage(call, msg);
    });
    call.on('error', (e: grpc.ServiceError) =>
      e.code === grpc.status.FAILED_PRECONDITION
        ? lost(e.details, true)
        : lost(e.message, false, e.code === grpc.status.UNAVAILABLE),
    );
    call.on('end', () => lost('stream ended'));
    call.on('status', () => {});
    call.write({
      message: {
        $case: 'hello',
        value: {
          nodeId: this.opts.nodeId,
          pid: process.pid,
          build: this.opts.build,
          servedVersion: this.opts.servedVersion(),
          listenAddress: this.opts.listen.address,
          listenPort: this.opts.listen.port,
        },
      },
    });
    // Figures (and metrics) from the start, not one interval later.
    void this.sendStats(call);
  }

  private onMessage(
    call: grpc.ClientDuplexStream<DataPlaneMessage, ControlPlaneMessage>,
    msg: ControlPlaneMessage,
  ): void {
    const m = msg.message;
    if (!m) return;
    if (m.$case === 'backendStates') {
      this.opts.onBackendStates(m.value);
      return;
    }
    if (m.$case === 'statsRequest') {
      void this.sendStats(call, m.value.requestId);
      return;
    }
    const snapshot = m.value;
    this.opts.log.info({ version: snapshot.version }, 'snapshot received');
    const previous = this.opts.servedVersion();
    let outcome: ApplyOutcome;
    try {
      outcome = this.opts.onSnapshot(snapshot);
    } catch (e) {
      outcome = { ok: false, error: (e as Error).message, restartRequired: false };
    }
    if (outcome.ok) {
      call.write({ message: { $case: 'ack', value: { version: snapshot.version, nonce: snapshot.nonce } } });
    } else {
      this.opts.log.warn({ version: snapshot.version, error: outcome.error }, 'snapshot refused');
      call.write({
        message: {
          $case: 'nack',
          value: {
            version: snapshot.version,
            nonce: snapshot.nonce,
            servedVersion: previous,
            error: outcome.error,
            restartRequired: outcome.restartRequired,
          },
        },
      });
    }
  }

  /** Periodic Stats (requestId 0) or the reply to a StatsRequest, with metrics rendered now. */
  private async sendStats(call = this.call, requestId = 0): Promise<void> {
    if (!call) return;
    const figures = this.opts.stats(requestId === 0);
    let metricsText = '';
    try {
      metricsText = await this.opts.metricsText();
    } catch (e) {
      this.opts.log.warn({ err: (e as Error).message }, 'cannot render metrics');
    }
    // The stream may have broken while rendering.
    if (call !== this.call || call.writableEnded) return;
    const value: Stats = { ...figures, servedVersion: this.opts.servedVersion(), metricsText, requestId };
    call.write({ message: requestId === 0 ? { $case: 'stats', value } : { $case: 'statsReply', value } });
  }
}
