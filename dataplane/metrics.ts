/**
 * The data plane's own Prometheus metrics (operations.md names). They travel to spooky-control
 * as text in Stats (rendered when a scrape asks), where they are merged into its one endpoint.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics } from '../lib/process-metrics.js';
import type { EndpointCounters } from './quic/endpoint.js';

/** What the transport layer reports at scrape time. */
export interface TransportFigures {
  connections: number;
  streams: number;
  counters: EndpointCounters;
}

export type OverloadReason =
  | 'global_inflight'
  | 'upstream_inflight'
  | 'backend_inflight'
  | 'connection_rate'
  | 'connection_cap'
  | 'memory'
  | 'source_connection_rate'
  | 'source_connection_cap'
  | 'circuit_open'
  | 'no_healthy_backend'
  | 'brownout'
  | 'adaptive_admission';

export class DataPlaneMetrics {
  readonly registry = new Registry();
  readonly overloadShed = new Counter({
    name: 'spooky_overload_shed_by_reason_total',
    help: 'Requests or connections refused to protect Spooky or its backends, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly retries = new Counter({
    name: 'spooky_retries_total',
    help: 'Requests retried on another backend, by the failure that caused the retry',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly circuitOpen = new Gauge({
    name: 'spooky_circuit_breaker_open',
    help: '1 while the circuit breaker of a backend is open or half-open',
    labelNames: ['backend'] as const,
    registers: [this.registry],
  });

  readonly requests = new Counter({
    name: 'spooky_requests_total',
    help: 'Client requests answered, by route (pool) and status code',
    labelNames: ['route', 'code'] as const,
    registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: 'spooky_request_duration_seconds',
    help: 'Time from request headers to the end of the response, by route (pool)',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly upstreamRequests = new Counter({
    name: 'spooky_upstream_requests_total',
    help: 'Attempts sent to backends, by route, backend and outcome (ok or the failure kind)',
    labelNames: ['route', 'backend', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly upstreamDuration = new Histogram({
    name: 'spooky_upstream_duration_seconds',
    help: 'Time from sending a request to a backend until its response headers',
    labelNames: ['route', 'backend'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly quicEarlyData = new Counter({
    name: 'spooky_quic_early_data_total',
    help: 'Requests that arrived in QUIC 0-RTT early data, by outcome (accepted: forwarded with Early-Data: 1; rejected_425: method not in performance.early_data_methods, answered 425 Too Early)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly quicRtt = new Histogram({
    name: 'spooky_quic_rtt_seconds',
    help: 'Smoothed round-trip time of QUIC connections, observed when they close',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  constructor() {
    collectProcessMetrics(this.registry);
  }

  /**
   * Connection, stream and packet figures, read from the transport when scraped. Counters follow
   * the transport's own monotonic counts (prom-client counters only go up by increments).
   */
  /** Requests holding an upstream in-flight slot (all pools), read at scrape time. */
  bindInflight(read: () => number): void {
    new Gauge({
      name: 'spooky_upstream_inflight',
      help: 'Requests in flight to backends (holding an in-flight limit slot)',
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /** Adaptive admission and brownout state, read at scrape time. */
  bindOverload(read: () => { brownoutActive: boolean; adaptiveEnabled: boolean; adaptiveLimit: number }): void {
    new Gauge({
      name: 'spooky_brownout_active',
      help: '1 while brownout sheds requests to non-core pools (resilience.brownout), else 0',
      registers: [this.registry],
      collect() {
        this.set(read().brownoutActive ? 1 : 0);
      },
    });
    new Gauge({
      name: 'spooky_adaptive_admission_limit',
      help: 'Current adaptive admission limit on requests in flight (0 while resilience.adaptive_admission is off)',
      registers: [this.registry],
      collect() {
        const s = read();
        this.set(s.adaptiveEnabled ? s.adaptiveLimit : 0);
      },
    });
  }

  /** Per-source admission shares tracked (bounded by open connections and recent admissions). */
  bindAdmission(read: () => number): void {
    new Gauge({
      name: 'spooky_admission_sources',
      help: 'Client sources (IPv4 address or IPv6 /64) with per-source admission state',
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  bindTransport(figures: () => TransportFigures | null): void {
    const seen = new Map<string, number>();
    const follow = (counter: Counter<string>, key: string, value: number, labels: Record<string, string> = {}) => {
      const delta = value - (seen.get(key) ?? 0);
      if (delta > 0) counter.inc(labels, delta);
      seen.set(key, value);
    };
    const gauge = (name: string, help: string, read: (f: TransportFigures) => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          const f = figures();
          this.set(f ? read(f) : 0);
        },
      });
    gauge('spooky_active_connections', 'Open client connections (QUIC and TCP)', (f) => f.connections);
    gauge('spooky_active_streams', 'Open client request streams', (f) => f.streams);
    const counter = (
      name: string,
      help: string,
      labelNames: string[],
      update: (c: Counter<string>, f: TransportFigures) => void,
    ) =>
      new Counter({
        name,
        help,
        labelNames,
        registers: [this.registry],
        collect() {
          const f = figures();
          if (f) update(this, f);
        },
      });
    // A counter with one series per key of an endpoint tally (reason → count).
    const byLabel = (
      name: string,
      help: string,
      label: string,
      read: (f: TransportFigures) => Partial<Record<string, number>>,
    ) =>
      counter(name, help, [label], (c, f) => {
        for (const [key, n] of Object.entries(read(f))) follow(c, `${name}:${key}`, n ?? 0, { [label]: key });
      });
    counter('spooky_connections_total', 'Client connections accepted (QUIC)', [], (c, f) =>
      follow(c, 'conn', f.counters.accepted),
    );
    byLabel(
      'spooky_quic_handshake_failures_total',
      'QUIC connections closed before the handshake completed, by reason',
      'reason',
      (f) => f.counters.handshakeFailures,
    );
    counter('spooky_quic_packets_received_total', 'UDP datagrams received', [], (c, f) =>
      follow(c, 'in', f.counters.datagramsIn),
    );
    counter('spooky_quic_packets_sent_total', 'UDP datagrams sent', [], (c, f) =>
      follow(c, 'out', f.counters.datagramsOut),
    );
    byLabel(
      'spooky_quic_packets_dropped_total',
      'Datagrams dropped before reaching a connection, by reason',
      'reason',
      (f) => f.counters.dropped,
    );
    byLabel(
      'spooky_quic_connections_shed_total',
      'QUIC connections Spooky closed or drained to protect itself, by reason (overhead: input that is not stream data; max_age: performance.max_connection_age_ms; memory: over performance.memory_limit_mib)',
      'reason',
      (f) => f.counters.shed,
    );
    counter('spooky_quic_packets_lost_total', 'Packets QUIC declared lost (closed connections)', [], (c, f) =>
      follow(c, 'lost', f.counters.lostPackets),
    );
    byLabel(
      'spooky_quic_retry_total',
      'Stateless Retry: Retry packets sent, tokens validated, and tokens refused by reason',
      'outcome',
      (f) => f.counters.retries,
    );
    byLabel(
      'spooky_quic_amplification_limited_total',
      'Datagrams held back (or discarded) to keep sends before address validation within 3x (closed connections)',
      'action',
      (f) => ({ held: f.counters.amplificationHeld, discarded: f.counters.amplificationDiscarded }),
    );
    byLabel(
      'spooky_quic_steered_datagrams_total',
      'Datagrams handed over between workers to the one owning their connection id (out: sent to the owner; in: received as the owner)',
      'direction',
      (f) => ({ out: f.counters.steeredOut, in: f.counters.steeredIn }),
    );
  }

  /** Every series of this registry carries `worker` (a data plane of several workers). */
  labelWorker(index: number): void {
    this.registry.setDefaultLabels({ worker: String(index) });
  }

  shed(reason: OverloadReason): void {
    this.overloadShed.inc({ reason });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
