/**
 * Faults end to end, each with the exact outcome a client sees: a backend killed mid-response,
 * a backend that accepts and never answers, a client that vanishes mid-upload, spooky-control
 * and spooky-dataplane killed -9 and restarted, and `control.state_dir` read-only or full
 * during `spooky apply`. Real processes on one config; gauges read from the control plane's
 * merged metrics endpoint (the data plane reports every 200 ms here).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { metricsUrlOf, scrape, spookyGauges, until } from '../bench/soak.js';
import { H3ClientSession, type H3ClientStream, RequestFailed } from '../dataplane/h3/client.js';
import { H3, h3ErrorName } from '../dataplane/h3/errors.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import {
  DIST,
  type RunningControl,
  type RunningDataplane,
  run,
  startControl,
  startDataplane,
} from './support/harness.js';
import { Load } from './support/load.js';
import { config, newSetup, type Setup, spooky } from './support/pair.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const STATS_ARGS = ['--stats-interval-ms', '200'];
const IDLE_TIMEOUT_MS = 3000;

/** Resolves with `p`'s outcome, or 'pending' after `ms`: no wait in this file is unbounded. */
async function settleWithin<T>(
  p: Promise<T>,
  ms: number,
): Promise<{ state: 'resolved'; value: T } | { state: 'rejected'; error: unknown } | { state: 'pending' }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ state: 'pending' }>((r) => {
    timer = setTimeout(() => r({ state: 'pending' }), ms);
  });
  try {
    return await Promise.race([
      p.then(
        (value) => ({ state: 'resolved' as const, value }),
        (error: unknown) => ({ state: 'rejected' as const, error }),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A UDP port free right now (the data plane restarts on the same one). */
function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

interface Upload {
  path: string;
  bytes: number;
  ended: boolean;
  aborted: boolean;
  closed: boolean;
  rstCode: number | undefined;
  closedAt: number;
}

/**
 * The test's own HTTP/2 backend:
 *   /cut/N     200 with content-length N, N/4 bytes, then the whole session dies
 *   /upload/*  reads 256 KiB of the body, then stops reading (the upload cannot finish) and
 *              records how the stream ends
 */
async function startFaultBackend() {
  const server = http2.createServer();
  const uploads: Upload[] = [];
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => {});
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const path = String(headers[':path']);
    if (path.startsWith('/cut/')) {
      const n = Number(path.slice(5));
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': String(n) });
      stream.write(Buffer.alloc(n / 4, 'c'));
      setTimeout(() => stream.session?.destroy(), 100);
    } else if (path.startsWith('/upload/')) {
      const u: Upload = {
        path,
        bytes: 0,
        ended: false,
        aborted: false,
        closed: false,
        rstCode: undefined,
        closedAt: 0,
      };
      uploads.push(u);
      stream.on('data', (d: Buffer) => {
        u.bytes += d.length;
        if (u.bytes >= 256 * 1024) stream.pause();
      });
      stream.on('end', () => {
        u.ended = true;
        stream.respond({ ':status': 200 });
        stream.end(`${u.bytes}\n`);
      });
      stream.on('aborted', () => {
        u.aborted = true;
      });
      stream.on('close', () => {
        u.closed = true;
        u.rstCode = stream.rstCode;
        u.closedAt = performance.now();
      });
    } else {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end('fault backend\n');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as net.AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    uploads,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

/** An HTTP/2 backend in its own process, to be killed -9 while it sends a response. */
const KILLABLE_BACKEND = `
import http2 from 'node:http2';
const s = http2.createServer();
s.on('stream', (st) => {
  st.on('error', () => {});
  st.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': String(4 << 20) });
  st.write(Buffer.alloc(256 * 1024, 'k'), () => process.stdout.write('part sent\\n'));
});
s.listen(0, '127.0.0.1', () => process.stdout.write('port ' + s.address().port + '\\n'));
`;

/** A client in its own process that starts an 8 MiB upload and then is killed -9. */
const VANISHING_CLIENT = `
const { H3ClientSession } = await import(process.env.SPOOKY_CLIENT);
const c = await H3ClientSession.connect('127.0.0.1', Number(process.env.PORT), { insecure: true, serverName: 'localhost' });
const body = new Uint8Array(8 << 20);
c.fetch({ method: 'POST', path: '/upload/vanished', authority: 'localhost', headers: [['content-length', String(body.length)]], body }).catch(() => {});
process.stdout.write('uploading\\n');
setInterval(() => {}, 1000);
`;

function spawnNode(code: string, env: NodeJS.ProcessEnv = {}): { proc: ChildProcess; lines: string[] } {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const lines: string[] = [];
  let buf = '';
  proc.stdout?.on('data', (d) => {
    buf += d;
    let i = buf.indexOf('\n');
    while (i >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
      i = buf.indexOf('\n');
    }
  });
  process.once('exit', () => proc.kill('SIGKILL'));
  return { proc, lines };
}

async function killHard(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await settleWithin(gone, 5000);
}

interface DataPlanes {
  current_version: number;
  dataplanes: Array<{ node_id: string; pid: number; served_version: number }>;
}

describe('faults', () => {
  let s: Setup;
  let a: DemoBackend;
  let b: DemoBackend;
  let fault: Awaited<ReturnType<typeof startFaultBackend>>;
  let silent: net.Server;
  const silentSockets = new Set<net.Socket>();
  let killable: ReturnType<typeof spawnNode> | undefined;
  let vanishing: ReturnType<typeof spawnNode> | undefined;
  let cp: RunningControl;
  let dp: RunningDataplane;
  let metricsUrl = '';
  let port = 0;
  let stateDir = '';
  /** state_dir is a tmpfs of its own (root with mount): read-only and full can be real. */
  let mounted = false;
  const clients: H3ClientSession[] = [];

  const pools = (web: DemoBackend, killablePort: number, silentPort: number) => `  web:
    backends: [{ id: ${web.name}, address: "${web.origin}" }]
  cut:
    route: { path_prefix: /cut }
    backends: [{ id: cut, address: "${fault.origin}" }]
  killed:
    route: { path_prefix: /killed }
    backends: [{ id: killed, address: "http://127.0.0.1:${killablePort}" }]
  upload:
    route: { path_prefix: /upload }
    backends: [{ id: up, address: "${fault.origin}" }]
  hang:
    route: { path_prefix: /hang }
    timeouts: { backend_timeout_ms: 500 }
    backends: [{ id: hang, address: "${a.origin}" }]
  silent:
    route: { path_prefix: /silent }
    timeouts: { backend_timeout_ms: 500 }
    backends: [{ id: silent, address: "http://127.0.0.1:${silentPort}" }]
`;
  let killablePort = 0;
  let silentPort = 0;
  const configFor = (web: DemoBackend, comment = '') =>
    `${config(s, pools(web, killablePort, silentPort), {
      port,
      extra: `performance: { quic_max_idle_timeout_ms: ${IDLE_TIMEOUT_MS} }\n`,
    }).replace('metrics: { enabled: false }', 'metrics: { enabled: true, port: 0 }')}${comment}`;

  before(async () => {
    a = await startDemoBackend('a');
    b = await startDemoBackend('b');
    fault = await startFaultBackend();
    silent = net.createServer((sock) => {
      // Accepts the connection and never says anything: not even the HTTP/2 SETTINGS.
      silentSockets.add(sock);
      sock.on('error', () => {});
      sock.on('close', () => silentSockets.delete(sock));
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    silentPort = (silent.address() as net.AddressInfo).port;
    killable = spawnNode(KILLABLE_BACKEND);
    const portLine = await until(async () => killable?.lines.some((l) => l.startsWith('port ')) ?? false, 10_000, 20);
    assert.ok(portLine !== null, 'the killable backend did not start');
    killablePort = Number(killable.lines.find((l) => l.startsWith('port '))?.slice(5));
    port = await freeUdpPort();

    s = newSetup();
    stateDir = join(s.dir, 'state');
    mkdirSync(stateDir, { recursive: true });
    // SPOOKY_FAULTS_NO_MOUNT=1 exercises the fallback used where mount is not permitted.
    const canMount = process.getuid?.() === 0 && (existsSync('/bin/mount') || existsSync('/usr/bin/mount'));
    if (canMount && process.env.SPOOKY_FAULTS_NO_MOUNT !== '1') {
      const m = await run('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0750', 'spooky-faults', stateDir], 10_000);
      mounted = m.code === 0;
    }
    writeFileSync(s.file, configFor(a));
    cp = await startControl(s.file);
    metricsUrl = metricsUrlOf(cp);
    dp = await startDataplane(readFileSync(s.file, 'utf8'), { file: s.file, args: STATS_ARGS });
    // The data plane's series reach the control plane's endpoint.
    const arrived = await until(async () => /^spooky_active_connections /m.test(await scrape(metricsUrl)), 15_000);
    assert.ok(arrived !== null, 'no data plane metrics at the control plane');
  });

  after(async () => {
    await Promise.all(clients.map((c) => settleWithin(c.close(), 5000)));
    await killHard(killable?.proc);
    await killHard(vanishing?.proc);
    await dp?.stop();
    await cp?.stop();
    for (const sock of silentSockets) sock.destroy();
    if (silent) await new Promise((r) => silent.close(r));
    await Promise.all([a?.close(), b?.close(), fault?.close()]);
    if (mounted) await run('umount', ['-l', stateDir], 10_000);
  });

  const connect = async () => {
    const c = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
    clients.push(c);
    return c;
  };
  const gauges = async () => spookyGauges(await scrape(metricsUrl));
  /** Waits (≤ limitMs) until the named gauges read `want`; returns how long it took, or null. */
  const gaugesBack = async (want: Record<string, number>, limitMs = 10_000) => {
    let last: Record<string, number> = {};
    const ms = await until(async () => {
      last = await gauges();
      return Object.entries(want).every(([k, v]) => (last[k] ?? 0) === v);
    }, limitMs);
    return { ms, last: Object.fromEntries(Object.keys(want).map((k) => [k, last[k]])) };
  };
  const dataplanes = async (): Promise<DataPlanes> => JSON.parse((await spooky(s, cp, 'dataplanes', '--json')).stdout);
  async function backendsSeen(path: string, n: number): Promise<Set<string>> {
    const cl = await connect();
    try {
      const seen = new Set<string>();
      for (let i = 0; i < n; i++) {
        const r = await cl.fetch({ path, authority: 'localhost' });
        seen.add(r.status === 200 ? JSON.parse(r.body.toString()).backend : `status ${r.status}`);
      }
      return seen;
    } finally {
      await cl.close();
    }
  }
  /**
   * How a response whose backend died mid-body ended for the client. Right: a RequestFailed
   * with an HTTP/3 code after part of the body. Wrong: a 200 "complete" with a short body.
   */
  const midBody: Array<{ name: string; declared: number; stream: H3ClientStream; outcome: Settled }> = [];
  type Settled = Awaited<ReturnType<typeof settleWithin<unknown>>>;
  function describeOutcome(m: (typeof midBody)[number]): string {
    const o = m.outcome;
    if (o.state === 'pending') return 'neither completed nor failed within 10 s';
    if (o.state === 'resolved') return `resolved as complete (FIN) after ${m.stream.bodyBytes} of ${m.declared} bytes`;
    const e = o.error;
    const code = e instanceof RequestFailed ? ` (${h3ErrorName(e.code)})` : '';
    return `rejected: ${String(e instanceof Error ? e.message : e)}${code} after ${m.stream.bodyBytes} of ${m.declared} bytes`;
  }

  it('backend connection dies mid-response: a parallel stream on the same connection completes', async (t) => {
    const client = await connect();
    const healthy = await client.request({ path: '/late-end?ms=1000', authority: 'localhost' });
    await sleep(100);
    const declared = 1 << 20;
    const cut = await client.request({ path: `/cut/${declared}`, authority: 'localhost' });
    const m = {
      name: 'backend session destroyed',
      declared,
      stream: cut,
      outcome: await settleWithin(cut.done, 10_000),
    };
    midBody.push(m);
    const ok = await settleWithin(healthy.done, 10_000);
    assert.equal(ok.state, 'resolved', 'the parallel stream to the healthy backend completed');
    assert.equal(ok.state === 'resolved' && ok.value.status, 200);
    assert.equal(ok.state === 'resolved' && ok.value.body.toString(), 'first line\n');
    assert.equal(client.closed, false, 'the client connection survived');
    assert.equal((await client.fetch({ path: '/after', authority: 'localhost' })).status, 200);
    assert.equal(cut.status, 200, 'the response had started');
    assert.ok(
      cut.bodyBytes > 0 && cut.bodyBytes < declared,
      `${cut.bodyBytes} of ${declared} bytes reached the client`,
    );
    const back = await gaugesBack({ spooky_upstream_inflight: 0, spooky_active_streams: 0 });
    assert.notEqual(back.ms, null, `gauges not back: ${JSON.stringify(back.last)}`);
    t.diagnostic(
      `observed: the cut stream ${describeOutcome(m)}; the parallel /late-end stream completed 200; in-flight 0 again`,
    );
  });

  it('backend process killed -9 mid-response: a parallel stream on the same connection completes', async (t) => {
    const client = await connect();
    const declared = 4 << 20;
    const parallel = client.fetch({ path: '/late-end?ms=800', authority: 'localhost' });
    const killed = await client.request({ path: '/killed/big', authority: 'localhost' });
    const sent = await until(
      async () => (killable?.lines.includes('part sent') ?? false) && killed.bodyBytes > 0,
      10_000,
      10,
    );
    assert.notEqual(sent, null, 'the first part of the body never reached the client');
    await killHard(killable?.proc);
    const m = {
      name: 'backend process killed -9',
      declared,
      stream: killed,
      outcome: await settleWithin(killed.done, 10_000),
    };
    midBody.push(m);
    const p = await settleWithin(parallel, 10_000);
    assert.equal(p.state === 'resolved' && p.value.status, 200, 'the parallel stream completed');
    assert.equal(client.closed, false, 'the client connection survived');
    t.diagnostic(`observed: the killed backend's stream ${describeOutcome(m)}; the parallel stream completed 200`);
  });

  it('a response cut mid-body reaches the client as a stream reset, never as a complete short body', () => {
    assert.equal(midBody.length, 2, 'both mid-response cases ran');
    for (const m of midBody) {
      assert.equal(m.outcome.state, 'rejected', `${m.name}: ${describeOutcome(m)}`);
      const err = (m.outcome as { error: unknown }).error;
      assert.ok(err instanceof RequestFailed, `${m.name}: expected RequestFailed, got ${String(err)}`);
      assert.ok(err.code >= H3.NO_ERROR && err.code <= H3.VERSION_FALLBACK, `H3 code 0x${err.code.toString(16)}`);
      assert.match(err.message, /reset/);
    }
  });

  it('backend that accepts and never answers: 504 after backend_timeout_ms, resources come back', async (t) => {
    const client = await connect();
    const seen: string[] = [];
    for (const path of ['/hang', '/silent/x']) {
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        const r = await settleWithin(client.fetch({ path, authority: 'localhost' }), 10_000);
        const ms = performance.now() - t0;
        assert.equal(r.state, 'resolved', `${path}: ${r.state === 'rejected' ? String(r.error) : 'no answer in 10 s'}`);
        const res = (r as { value: { status: number; body: Buffer } }).value;
        assert.equal(res.status, 504, `${path}: ${res.body.toString()}`);
        assert.match(res.body.toString(), /504 backend timed out/);
        assert.ok(ms >= 450 && ms < 3000, `${path}: answered after ${ms.toFixed(0)} ms (backend_timeout_ms 500)`);
        if (i === 0) seen.push(`${path}: 504 after ${ms.toFixed(0)} ms`);
      }
    }
    const back = await gaugesBack({ spooky_upstream_inflight: 0, spooky_active_streams: 0 });
    assert.notEqual(back.ms, null, `gauges not back: ${JSON.stringify(back.last)}`);
    assert.equal((await client.fetch({ path: '/after', authority: 'localhost' })).status, 200);
    t.diagnostic(
      `observed: ${seen.join('; ')} (HTTP/2 /hang and a TCP server that never sends SETTINGS); in-flight 0 again after ${back.ms?.toFixed(0)} ms; TCP connections held open to the silent backend: ${silentSockets.size}`,
    );
  });

  it('client closes its connection mid-upload: the backend request is aborted, permits released', async (t) => {
    const client = await connect();
    const body = new Uint8Array(8 << 20);
    void client
      .fetch({
        method: 'POST',
        path: '/upload/closed',
        authority: 'localhost',
        headers: [['content-length', String(body.length)]],
        body,
      })
      .catch(() => {});
    const started = await until(
      async () => (fault.uploads.find((u) => u.path === '/upload/closed')?.bytes ?? 0) >= 256 * 1024,
      10_000,
      20,
    );
    assert.notEqual(started, null, 'the upload never reached the backend');
    const u = fault.uploads.find((x) => x.path === '/upload/closed') as Upload;
    await sleep(200); // stuck: the backend stopped reading
    const before = u.bytes;
    const t0 = performance.now();
    await client.close();
    const aborted = await until(async () => u.closed, 10_000, 20);
    assert.notEqual(aborted, null, 'the backend request was never aborted');
    assert.equal(u.ended, false, 'the backend never saw the end of the body');
    assert.ok(u.aborted, 'the backend stream was aborted');
    const back = await gaugesBack({ spooky_upstream_inflight: 0, spooky_active_streams: 0 });
    assert.notEqual(back.ms, null, `gauges not back: ${JSON.stringify(back.last)}`);
    t.diagnostic(
      `observed: backend had ${before} of ${body.length} bytes; stream aborted (RST code ${u.rstCode}) ${(u.closedAt - t0).toFixed(0)} ms after the client's close; in-flight and streams 0 again`,
    );
  });

  it('client process killed -9 mid-upload: aborted at the idle timeout, permits released', async (t) => {
    vanishing = spawnNode(VANISHING_CLIENT, {
      SPOOKY_CLIENT: pathToFileURL(join(DIST, 'dataplane', 'h3', 'client.js')).href,
      PORT: String(dp.port),
    });
    const started = await until(
      async () => (fault.uploads.find((u) => u.path === '/upload/vanished')?.bytes ?? 0) >= 256 * 1024,
      10_000,
      20,
    );
    assert.notEqual(started, null, 'the upload never reached the backend');
    const u = fault.uploads.find((x) => x.path === '/upload/vanished') as Upload;
    const t0 = performance.now();
    await killHard(vanishing.proc);
    const aborted = await until(async () => u.closed, IDLE_TIMEOUT_MS + 10_000, 50);
    assert.notEqual(aborted, null, `not aborted within the idle timeout (${IDLE_TIMEOUT_MS} ms) + 10 s`);
    assert.equal(u.ended, false);
    assert.ok(u.aborted, 'the backend stream was aborted');
    const back = await gaugesBack(
      { spooky_upstream_inflight: 0, spooky_active_streams: 0, spooky_active_connections: 0 },
      10_000,
    );
    assert.notEqual(back.ms, null, `gauges not back: ${JSON.stringify(back.last)}`);
    t.diagnostic(
      `observed: backend had ${u.bytes} bytes when the client died; aborted (RST code ${u.rstCode}) ${(u.closedAt - t0).toFixed(0)} ms later (QUIC idle timeout ${IDLE_TIMEOUT_MS} ms); connections, streams and in-flight 0 again`,
    );
  });

  it('spooky-control killed -9 and restarted under load: zero failed requests, the data plane reconnects', async (t) => {
    const before = await dataplanes();
    assert.equal(before.dataplanes.length, 1);
    const load = await Load.start(dp.port, 2, 4);
    await sleep(300);
    cp.proc.kill('SIGKILL');
    await settleWithin(cp.exited, 5000);
    const atKill = load.ok;
    await sleep(1000);
    const duringOutage = load.ok - atKill;
    cp = await startControl(s.file);
    metricsUrl = metricsUrlOf(cp);
    let dps: DataPlanes = { current_version: 0, dataplanes: [] };
    const ms = await until(async () => {
      dps = await dataplanes();
      return dps.dataplanes.length === 1 && dps.dataplanes[0].served_version === dps.current_version;
    }, 15_000);
    await sleep(300);
    const { closedConnections } = await load.stop();
    assert.deepEqual(load.failures.slice(0, 5), [], `${load.failures.length} failed requests`);
    assert.equal(closedConnections, 0, 'no client connection closed');
    assert.ok(duringOutage > 0, 'requests kept completing while spooky-control was down');
    assert.notEqual(ms, null, `the data plane did not reconnect: ${JSON.stringify(dps)}`);
    assert.equal(dps.current_version, before.current_version, 'the restarted control plane serves the same version');
    assert.equal(dps.dataplanes[0].pid, dp.proc.pid);
    t.diagnostic(
      `observed: ${load.ok} requests, 0 failed (${duringOutage} during the 1 s outage); data plane back in spooky dataplanes ${ms?.toFixed(0)} ms after the restart, serving version ${dps.current_version}`,
    );
  });

  it('spooky-dataplane killed -9 and restarted: noticed, restarts from its cache, serves, shown again', async (t) => {
    const before = await dataplanes();
    assert.equal(before.dataplanes.length, 1);
    const old = await connect();
    assert.equal((await old.fetch({ path: '/x', authority: 'localhost' })).status, 200);
    const oldPid = dp.proc.pid;
    dp.proc.kill('SIGKILL');
    await settleWithin(dp.exited, 5000);
    const t0 = performance.now();
    const noticed = await until(async () => (await dataplanes()).dataplanes.length === 0, 10_000, 50);
    assert.notEqual(noticed, null, 'spooky dataplanes still lists the killed data plane after 10 s');

    dp = await startDataplane(readFileSync(s.file, 'utf8'), { file: s.file, args: STATS_ARGS });
    const cached = dp.logs.find((o) => o.msg === 'starting from the cached snapshot');
    assert.ok(cached, 'the restarted data plane started from its cached snapshot');
    assert.equal(cached.version, before.current_version, 'the cached snapshot is the current version');
    assert.equal(dp.port, port, 'same port');
    // Old connections are gone with the process; new ones succeed.
    const stale = await settleWithin(old.fetch({ path: '/x', authority: 'localhost' }), IDLE_TIMEOUT_MS + 5000);
    assert.equal(stale.state, 'rejected', 'a request on a connection to the dead process fails (never hangs)');
    const fresh = [];
    for (let i = 0; i < 5; i++) {
      const c = await connect();
      fresh.push((await c.fetch({ path: '/x', authority: 'localhost' })).status);
      await c.close();
    }
    assert.deepEqual(fresh, [200, 200, 200, 200, 200]);
    let dps: DataPlanes = { current_version: 0, dataplanes: [] };
    const shown = await until(async () => {
      dps = await dataplanes();
      return dps.dataplanes.length === 1 && dps.dataplanes[0].served_version === dps.current_version;
    }, 15_000);
    assert.notEqual(shown, null, `not shown again with the current version: ${JSON.stringify(dps)}`);
    assert.equal(dps.current_version, before.current_version);
    assert.notEqual(dps.dataplanes[0].pid, oldPid);
    const restartMs = performance.now() - t0;
    t.diagnostic(
      `observed: control plane dropped it ${noticed?.toFixed(0)} ms after the kill; restarted from cached version ${String(cached.version)}; the old connection failed (${String((stale as { error?: unknown }).error)}); 5/5 new connections 200; shown again serving ${dps.current_version} (${restartMs.toFixed(0)} ms after the kill)`,
    );
  });

  // state_dir during apply. What each failed apply showed, for the "nothing changes anywhere" test.
  const failedApplies: Array<{ name: string; snapshotsReceived: number; probeSaw: Set<string> }> = [];
  let resyncs = 0;

  /** Applies `text` (which must succeed) and waits until the data plane serves it. */
  async function applyOk(text: string): Promise<void> {
    const file = join(s.dir, `resync-${++resyncs}.yaml`);
    writeFileSync(file, text);
    const r = await spooky(s, cp, 'apply', file);
    assert.equal(r.code, 0, `apply: ${r.stderr}`);
    const ok = await until(async () => {
      const d = await dataplanes();
      return d.dataplanes.length === 1 && d.dataplanes[0].served_version === d.current_version;
    }, 10_000);
    assert.notEqual(ok, null, 'the data plane did not take the resync');
  }

  /**
   * Applies `web → b` while persisting must fail: exit 1 naming the state_dir problem, the
   * control API keeps the previous config, and the data plane ends up serving it. Records, for
   * the test below, whether the data plane was sent anything and what a probe saw meanwhile.
   */
  async function failedApply(name: string, problem: RegExp): Promise<string> {
    const before = JSON.parse((await spooky(s, cp, 'status', '--json')).stdout).config;
    const dpsBefore = await dataplanes();
    const mark = dp.logs.length;
    const probeClient = await connect();
    const probeSaw = new Set<string>();
    let probing = true;
    const probe = (async () => {
      while (probing) {
        const r = await settleWithin(probeClient.fetch({ path: '/x', authority: 'localhost' }), 5000);
        probeSaw.add(
          r.state === 'resolved' && r.value.status === 200 ? JSON.parse(r.value.body.toString()).backend : 'error',
        );
      }
    })();
    const file = join(s.dir, `${name}.yaml`);
    writeFileSync(file, configFor(b));
    const r = await spooky(s, cp, 'apply', file);
    await sleep(500);
    probing = false;
    await settleWithin(probe, 6000);
    await probeClient.close();
    const snapshotsReceived = dp.logs.slice(mark).filter((o) => o.msg === 'snapshot received').length;
    failedApplies.push({ name, snapshotsReceived, probeSaw });

    assert.equal(r.code, 1, `apply exit code (stderr: ${r.stderr})`);
    assert.match(r.stderr, problem);
    assert.match(r.stderr, /state_dir/, 'names the state_dir');
    const afterStatus = JSON.parse((await spooky(s, cp, 'status', '--json')).stdout).config;
    assert.equal(afterStatus.version, before.version, 'the control API reports the previous config version');
    assert.equal(afterStatus.sha256, before.sha256, 'and the previous config');
    let dps: DataPlanes = { current_version: 0, dataplanes: [] };
    const settled = await until(async () => {
      dps = await dataplanes();
      return dps.dataplanes.length === 1 && dps.dataplanes[0].served_version === dps.current_version;
    }, 5000);
    assert.notEqual(settled, null, `the data plane does not serve the control plane's version: ${JSON.stringify(dps)}`);
    assert.deepEqual(await backendsSeen('/x', 4), new Set(['a']), 'the data plane serves the previous config');
    return `${r.stderr.trim().split('\n').pop()} [config version ${afterStatus.version} kept; snapshot version ${dpsBefore.current_version} → ${dps.current_version}; data plane sent ${snapshotsReceived} snapshot(s) meanwhile; probe saw ${[...probeSaw].join('+')}]`;
  }

  it('state_dir read-only during apply: exit 1 with the state file problem; the control API keeps the previous version', async (t) => {
    await applyOk(configFor(a, '# resync before read-only\n'));
    let how: string;
    if (mounted) {
      const ro = await run('mount', ['-o', 'remount,ro', stateDir], 10_000);
      assert.equal(ro.code, 0, ro.stderr);
      how = 'state_dir on its own tmpfs, remounted read-only';
    } else {
      // Root ignores permission bits and mount is not available: make the rename target a
      // directory, so persisting fails the same way (cannot write the state file).
      const target = join(stateDir, 'config', 'previous.yaml');
      rmSync(target, { force: true });
      mkdirSync(join(target, 'blocker'), { recursive: true });
      how = 'config/previous.yaml replaced by a directory (no mount available)';
    }
    try {
      const stderr = await failedApply('read-only', mounted ? /read-only file system|EROFS/ : /EISDIR|directory/);
      t.diagnostic(`observed (${how}): spooky apply exit 1: ${stderr}`);
    } finally {
      if (mounted) await run('mount', ['-o', 'remount,rw', stateDir], 10_000);
      else rmSync(join(stateDir, 'config', 'previous.yaml'), { recursive: true, force: true });
    }
  });

  it('state_dir full during apply: exit 1 with the state file problem; after freeing space apply works', async (t) => {
    if (!mounted) {
      t.skip('needs root and mount(8) for a tiny tmpfs state_dir');
      return;
    }
    await applyOk(configFor(a, '# resync before full\n'));
    const filler = join(stateDir, 'filler');
    const fd = openSync(filler, 'w');
    try {
      const chunk = Buffer.alloc(4096, 'f');
      for (let i = 0; i < 1024; i++) writeSync(fd, chunk); // 4 MiB > the 1 MiB tmpfs
      assert.fail('the tmpfs never filled up');
    } catch (e) {
      assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
    } finally {
      closeSync(fd);
    }
    let stderr: string;
    try {
      stderr = await failedApply('full', /no space left on device|ENOSPC/);
    } finally {
      rmSync(filler, { force: true });
    }
    // Space back: the same change applies.
    await applyOk(configFor(b, '# after freeing space\n'));
    assert.deepEqual(await backendsSeen('/x', 4), new Set(['b']));
    await applyOk(configFor(a, '# back to a\n'));
    t.diagnostic(`observed: spooky apply exit 1: ${stderr}; after freeing space the apply succeeded`);
  });

  it('a failed persist changes nothing anywhere: the data planes never see the config that was not saved', () => {
    assert.ok(failedApplies.length > 0, 'the state_dir cases ran');
    for (const c of failedApplies) {
      assert.equal(c.snapshotsReceived, 0, `${c.name}: snapshots sent to the data plane during the failed apply`);
      assert.deepEqual(c.probeSaw, new Set(['a']), `${c.name}: what a client saw during the failed apply`);
    }
  });
});
