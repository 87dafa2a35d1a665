/**
 * The HTTP/3 load generator, on Spooky's own client: C connections × S concurrent streams,
 * closed loop (each stream sends its next request when the previous one completes) or open loop
 * (a fixed request rate, latency measured from the intended send time so a stall is not hidden),
 * or one request per connection. Warm-up is excluded from every figure.
 */
import { H3ClientSession } from '../dataplane/h3/client.js';
import { Histogram } from './histogram.js';

export interface LoadOptions {
  host: string;
  port: number;
  /** The :authority sent (also the TLS server name, without port). */
  authority: string;
  path: string;
  method?: string;
  body?: Uint8Array;
  connections: number;
  /** Concurrent streams per connection (closed loop). */
  streams: number;
  durationMs: number;
  warmupMs: number;
  /** Open loop: total requests per second across all connections. */
  rate?: number;
  /** One request per connection: measures handshakes. */
  newConnectionPerRequest?: boolean;
  /** Stop after this many measured requests (besides the duration). */
  maxRequests?: number;
}

export interface LoadResult {
  requests: number;
  durationS: number;
  rps: number;
  bytesPerS: number;
  handshakes: number;
  handshakesPerS: number;
  errors: Record<string, number>;
  latencyUs: { p50: number; p90: number; p99: number; p999: number; max: number };
  /** CPU seconds this load generator used while measuring (user + system). */
  clientCpuS: number;
  histogram: Array<[number, number]>;
}

function errorKind(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  if (/timed out/.test(msg)) return 'timeout';
  if (/connection closed/.test(msg)) return 'connection_closed';
  if (/reset/.test(msg)) return 'stream_reset';
  return msg.slice(0, 60);
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const hist = new Histogram();
  const errors: Record<string, number> = {};
  let requests = 0;
  let bytes = 0;
  let handshakes = 0;
  const serverName = o.authority.replace(/:\d+$/, '');
  const connect = () => H3ClientSession.connect(o.host, o.port, { insecure: true, serverName });
  const req = {
    method: o.method ?? (o.body ? 'POST' : 'GET'),
    path: o.path,
    authority: o.authority,
    headers: o.body ? ([['content-length', String(o.body.length)]] as Array<[string, string]>) : [],
    body: o.body,
    collectBody: false,
  };
  const start = performance.now();
  const measureFrom = start + o.warmupMs;
  const end = measureFrom + o.durationMs;
  let cpuAtMeasure: NodeJS.CpuUsage | null = null;
  const warmTimer = setTimeout(() => {
    cpuAtMeasure = process.cpuUsage();
  }, o.warmupMs);
  const done = () => performance.now() >= end || (o.maxRequests !== undefined && requests >= o.maxRequests);
  const record = (sentAt: number, ok: boolean, n: number, err?: unknown) => {
    if (sentAt < measureFrom) return;
    if (ok) {
      requests++;
      bytes += n;
      hist.record((performance.now() - sentAt) * 1000);
    } else {
      const k = errorKind(err);
      errors[k] = (errors[k] ?? 0) + 1;
    }
  };

  const workers: Array<Promise<void>> = [];
  if (o.newConnectionPerRequest) {
    for (let w = 0; w < o.connections * o.streams; w++) {
      workers.push(
        (async () => {
          while (!done()) {
            const t = performance.now();
            try {
              const s = await connect();
              if (t >= measureFrom) handshakes++;
              try {
                const r = await s.fetch(req);
                record(t, r.status < 500, r.bodyBytes, `status ${r.status}`);
              } finally {
                await s.close();
              }
            } catch (e) {
              record(t, false, 0, e);
              // A refusal can come back at once: never spin on it.
              await new Promise((r) => setTimeout(r, 10));
            }
          }
        })(),
      );
    }
  } else {
    const sessions = await Promise.all(Array.from({ length: o.connections }, connect));
    handshakes = 0;
    if (o.rate) {
      // Open loop: dispatch on a schedule regardless of completions.
      const interval = 1000 / o.rate;
      let next = performance.now();
      let i = 0;
      const inflight = new Set<Promise<void>>();
      while (!done()) {
        const now = performance.now();
        while (next <= now) {
          const intended = next;
          const s = sessions[i++ % sessions.length];
          const p = s.fetch(req).then(
            (r) => record(intended, r.status < 500, r.bodyBytes, `status ${r.status}`),
            (e) => record(intended, false, 0, e),
          );
          inflight.add(p);
          void p.finally(() => inflight.delete(p));
          next += interval;
        }
        await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
      }
      await Promise.allSettled([...inflight]);
    } else {
      for (const s of sessions) {
        for (let k = 0; k < o.streams; k++) {
          workers.push(
            (async () => {
              while (!done()) {
                const t = performance.now();
                try {
                  const r = await s.fetch(req);
                  record(t, r.status < 500, r.bodyBytes, `status ${r.status}`);
                } catch (e) {
                  record(t, false, 0, e);
                  // After GOAWAY every request fails at once: stop using this connection rather
                  // than spin (it once made 183,675 errors in 2 s and starved the event loop).
                  if (s.closed || s.peerGoawayId >= 0) return;
                  await new Promise((r) => setImmediate(r));
                }
              }
            })(),
          );
        }
      }
    }
    await Promise.all(workers);
    await Promise.all(sessions.map((s) => s.close()));
  }
  await Promise.all(workers);
  clearTimeout(warmTimer);
  const elapsedS = Math.max(0.001, (Math.min(performance.now(), end) - measureFrom) / 1000);
  const cpu = process.cpuUsage(cpuAtMeasure ?? undefined);
  return {
    requests,
    durationS: elapsedS,
    rps: requests / elapsedS,
    bytesPerS: bytes / elapsedS,
    handshakes,
    handshakesPerS: handshakes / elapsedS,
    errors,
    latencyUs: latencySummary(hist),
    clientCpuS: (cpu.user + cpu.system) / 1e6,
    histogram: hist.toSparse(),
  };
}

function latencySummary(hist: Histogram): LoadResult['latencyUs'] {
  return {
    p50: hist.percentile(50),
    p90: hist.percentile(90),
    p99: hist.percentile(99),
    p999: hist.percentile(99.9),
    max: hist.percentile(100),
  };
}

/** Merges results of several load-generator processes run side by side. */
export function mergeResults(results: LoadResult[]): LoadResult {
  const hist = new Histogram();
  const errors: Record<string, number> = {};
  let requests = 0;
  let bytesPerS = 0;
  let handshakes = 0;
  let durationS = 0;
  let clientCpuS = 0;
  for (const r of results) {
    hist.merge(Histogram.fromSparse(r.histogram));
    for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
    requests += r.requests;
    bytesPerS += r.bytesPerS;
    handshakes += r.handshakes;
    durationS = Math.max(durationS, r.durationS);
    clientCpuS += r.clientCpuS;
  }
  return {
    requests,
    durationS,
    rps: requests / durationS,
    bytesPerS,
    handshakes,
    handshakesPerS: handshakes / durationS,
    errors,
    latencyUs: latencySummary(hist),
    clientCpuS,
    histogram: hist.toSparse(),
  };
}
