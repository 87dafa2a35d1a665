/**
 * prom-client's process and Node.js metrics, minus the three gauges it names `_total`
 * (`nodejs_active_{handles,requests,resources}_total`): Prometheus reserves that suffix for
 * counters (`promtool check metrics` flags them), and the per-type gauges without the suffix
 * (`nodejs_active_handles{type}` …) carry the same numbers.
 */
import { collectDefaultMetrics, type Registry } from 'prom-client';

const GAUGES_NAMED_TOTAL = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of GAUGES_NAMED_TOTAL) registry.removeSingleMetric(name);
}
