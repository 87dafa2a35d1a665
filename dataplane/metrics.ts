/**
 * The data plane's own Prometheus metrics (operations.md names). They travel to spooky-control
 * in the Stats message as text, where they are merged into its one metrics endpoint.
 */
import { Counter, Gauge, Registry } from 'prom-client';

export type OverloadReason =
  | 'global_inflight'
  | 'upstream_inflight'
  | 'backend_inflight'
  | 'connection_rate'
  | 'connection_cap'
  | 'circuit_open'
  | 'no_healthy_backend';

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

  shed(reason: OverloadReason): void {
    this.overloadShed.inc({ reason });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
