/**
 * RFC 8470 on the request path: what happens to a request whose headers arrived in QUIC 0-RTT
 * early data. Early data can be replayed by anyone who recorded it, so only the methods listed in
 * `performance.early_data_methods` (safe ones: GET, HEAD, OPTIONS) are forwarded, marked
 * `Early-Data: 1` for the backend; any other method is answered 425 Too Early, and the client
 * repeats it once the handshake is complete.
 */

/** `spooky_quic_early_data_total{outcome}` values. */
export type EarlyDataOutcome = 'accepted' | 'rejected_425';

export interface EarlyDataPolicy {
  quic_0rtt: boolean;
  early_data_methods: readonly string[];
}

/** null for a request that did not arrive in early data (nothing to decide). */
export function earlyDataOutcome(
  inEarlyData: boolean,
  method: string,
  policy: EarlyDataPolicy,
): EarlyDataOutcome | null {
  if (!inEarlyData) return null;
  // With quic_0rtt off no new connection accepts early data; a connection that accepted it before
  // an apply turned it off gets 425 for everything, as the operator asked.
  return policy.quic_0rtt && policy.early_data_methods.includes(method) ? 'accepted' : 'rejected_425';
}
