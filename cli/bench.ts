/** `spooky bench URL`: the HTTP/3 load generator from the command line. */
import { readFileSync } from 'node:fs';
import { runLoadgen } from '../bench/parallel.js';
import { dialTarget, parseHttpsUrl } from './target.js';

export interface BenchOptions {
  connections: string;
  streams: string;
  duration: string;
  warmup: string;
  rate?: string;
  newConnections?: boolean;
  data?: string;
  processes: string;
  json?: boolean;
  connectTo?: string;
}

export async function runBench(urlText: string, o: BenchOptions): Promise<number> {
  const url = parseHttpsUrl(urlText);
  if (!url) return 2;
  const num = (v: string | undefined, name: string) => {
    const n = Number(v);
    if (v !== undefined && !(n > 0)) throw new Error(`--${name} needs a positive number`);
    return v === undefined ? undefined : n;
  };
  let target: { host: string; port: number };
  let opts: Parameters<typeof runLoadgen>[0];
  let processes: number;
  try {
    target = dialTarget(url, o.connectTo);
    processes = num(o.processes, 'processes') ?? 1;
    if (o.data) readFileSync(o.data); // fail here, with the path, if it cannot be read
    opts = {
      host: target.host,
      port: target.port,
      authority: url.host,
      path: url.pathname + url.search,
      connections: num(o.connections, 'connections') ?? 1,
      streams: num(o.streams, 'streams') ?? 1,
      durationMs: (num(o.duration, 'duration') ?? 10) * 1000,
      warmupMs: Number(o.warmup) * 1000 || 0,
      rate: num(o.rate, 'rate'),
      newConnectionPerRequest: o.newConnections,
      bodyFile: o.data,
      method: o.data ? 'POST' : 'GET',
    };
  } catch (e) {
    process.stderr.write(`spooky: ${(e as Error).message}\n`);
    return 2;
  }
  const r = await runLoadgen(opts, processes);
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ ...r, histogram: undefined })}\n`);
  } else {
    const ms = (us: number) => (us / 1000).toFixed(2);
    const errors = Object.entries(r.errors);
    process.stdout.write(
      [
        `requests     ${r.requests} in ${r.durationS.toFixed(1)} s: ${r.rps.toFixed(0)} req/s, ${(r.bytesPerS / 2 ** 20).toFixed(2)} MiB/s`,
        `latency ms   p50 ${ms(r.latencyUs.p50)}  p90 ${ms(r.latencyUs.p90)}  p99 ${ms(r.latencyUs.p99)}  p99.9 ${ms(r.latencyUs.p999)}  max ${ms(r.latencyUs.max)}`,
        `handshakes   ${r.handshakes} (${r.handshakesPerS.toFixed(1)}/s)`,
        `errors       ${errors.length === 0 ? 'none' : errors.map(([k, v]) => `${k}: ${v}`).join(', ')}`,
        `client CPU   ${r.clientCpuS.toFixed(2)} s over ${processes} process(es)`,
        '',
      ].join('\n'),
    );
  }
  return Object.keys(r.errors).length > 0 ? 1 : 0;
}
