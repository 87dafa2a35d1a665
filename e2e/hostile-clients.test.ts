/**
 * Hostile and broken clients against the running data plane (spooky-control + spooky-dataplane,
 * real processes), each case watched from the outside: the RFC's error or a 4xx for the abuser,
 * only 200s for a bystander client that keeps doing GETs meanwhile, the process still up, and the
 * resources back afterwards (in-flight and stream gauges to 0, fds back to the baseline; see
 * support/observe.ts). hostile.test.ts covers single malformed datagrams and frame-level
 * violations one at a time; this file covers floods, hoarding, bombs, slowness and smuggling.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { H3, h3ErrorName } from '../dataplane/h3/errors.js';
import { encodeFrame, encodeSettings, Frame, FrameReader } from '../dataplane/h3/frames.js';
import { decodeFieldSection } from '../dataplane/h3/qpack/decoder.js';
import { encodeFieldSection } from '../dataplane/h3/qpack/encoder.js';
import { encodeInteger, integerLength } from '../dataplane/h3/qpack/integer.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { DIST } from './support/harness.js';
import { Observed } from './support/observe.js';
import { onlyPool } from './support/pair.js';
import { RawQuicClient } from './support/raw-client.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** quic_initial_max_streams_bidi of the shared pair. */
const STREAM_LIMIT = 16;
/** backend_idle_timeout_ms of the shared pair (the `patient` pool overrides it). */
const BACKEND_IDLE_MS = 2000;
/** quic_max_idle_timeout_ms of the shared pair: how long a vanished peer keeps its connection. */
const QUIC_IDLE_MS = 4000;
const MAX_HEADER_BYTES = 16384; // the default max_request_headers_bytes
const MAX_HEADER_COUNT = 128; // the default max_request_headers_count
/** resilience.circuit_breaker.open_ms of the shared pair: short, should a case open it. */
const BREAKER_OPEN_MS = 1500;

const CLIENT_CONTROL = 2;
const controlStream = Buffer.concat([
  Buffer.from([0x00]),
  encodeSettings([
    [0x01, 0],
    [0x07, 0],
  ]),
]);

// ---------------------------------------------------------------------------------------------
// Wire helpers

const headers = (fields: ReadonlyArray<readonly [string, string]>) =>
  encodeFrame(Frame.HEADERS, encodeFieldSection(fields));
const data = (bytes: string | Uint8Array) =>
  encodeFrame(Frame.DATA, typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);

/** A QPACK Literal Field Line with Literal Name, no Huffman (RFC 9204 §4.5.6). */
function literalLine(name: string, value: string): Buffer {
  const out = Buffer.alloc(integerLength(name.length, 3) + name.length + integerLength(value.length, 7) + value.length);
  let off = encodeInteger(out, 0, name.length, 3, 0x20);
  off += out.write(name, off, 'latin1');
  off = encodeInteger(out, off, value.length, 7, 0x00);
  out.write(value, off, 'latin1');
  return out;
}

/** A field section (Required Insert Count 0, Base 0) of raw field lines. */
const section = (lines: Uint8Array[]) => Buffer.concat([Buffer.from([0x00, 0x00]), ...lines]);

const GET_LINES = (authority: string, path: string) => [
  literalLine(':method', 'GET'),
  literalLine(':scheme', 'https'),
  literalLine(':authority', authority),
  literalLine(':path', path),
];

type Field = readonly [string, string];

const getFields = (authority: string, path: string): Field[] => [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':authority', authority],
  [':path', path],
];
const postFields = (authority: string, path: string): Field[] => [
  [':method', 'POST'],
  [':scheme', 'https'],
  [':authority', authority],
  [':path', path],
];
const GET_FIELDS = getFields('only.example', '/after');
const POST_ECHO = postFields('only.example', '/echo');
/** What a desynchronised HTTP/1.1 hop would take for a second request. */
const SMUGGLE = 'GET /smuggled-in-body HTTP/1.1\r\nhost: h1.example\r\n\r\n';
const mib = (n: number) => Math.round(n / 2 ** 20);

interface ParsedResponse {
  status: number;
  body: Buffer;
}

/** The status and body of raw response-stream bytes (status 0 when no HEADERS arrived). */
function parseResponse(raw: Buffer): ParsedResponse {
  let status = 0;
  const body: Buffer[] = [];
  new FrameReader(1 << 20).push(raw, {
    onFrameData: (chunk) => body.push(Buffer.from(chunk)),
    onFrame: (type, payload) => {
      if (type !== Frame.HEADERS || status !== 0) return;
      const s = decodeFieldSection(payload, 1 << 20).find((f) => f[0] === ':status');
      status = Number(s?.[1] ?? 0);
    },
  });
  return { status, body: Buffer.concat(body) };
}

type Outcome =
  | { kind: 'response'; status: number; body: Buffer }
  | { kind: 'reset'; code: number }
  | { kind: 'closed'; code: number; isApp: boolean; reason: string }
  | { kind: 'timeout' };

function describeOutcome(o: Outcome): string {
  switch (o.kind) {
    case 'response':
      return `${o.status}`;
    case 'reset':
      return `stream reset ${h3ErrorName(o.code)}`;
    case 'closed':
      return `connection closed ${o.isApp ? h3ErrorName(o.code) : `transport 0x${o.code.toString(16)}`} ${o.reason}`;
    case 'timeout':
      return 'no answer';
  }
}

/** How stream `id` of a raw client ended: a complete response, a reset, the connection closing. */
async function outcome(c: RawQuicClient, id: number, ms = 5000): Promise<Outcome> {
  const deadline = performance.now() + ms;
  for (;;) {
    if (c.finished.has(id)) {
      const r = parseResponse(Buffer.concat(c.received.get(id) ?? []));
      return { kind: 'response', status: r.status, body: r.body };
    }
    const code = c.resets.get(id);
    if (code !== undefined) return { kind: 'reset', code };
    if (c.isClosed) {
      const i = c.closeInfo;
      return { kind: 'closed', code: i?.code ?? -1, isApp: i?.isApp ?? false, reason: i?.reason ?? 'idle' };
    }
    if (performance.now() > deadline) return { kind: 'timeout' };
    await sleep(20);
  }
}

async function rawClient(port: number): Promise<RawQuicClient> {
  const c = await RawQuicClient.connect(port);
  assert.equal(c.closeInfo, null, 'handshake completed');
  c.write(CLIENT_CONTROL, controlStream);
  return c;
}

const connect = (port: number, handshakeTimeoutMs = 5000) =>
  H3ClientSession.connect('127.0.0.1', port, { insecure: true, serverName: 'localhost', handshakeTimeoutMs });

/** One well-behaved request on a fresh connection: its status and body. */
async function politeFetch(port: number, authority = 'only.example', path = '/polite') {
  const c = await connect(port);
  try {
    const res = await c.fetch({ path, authority });
    return { status: res.status, body: res.body.toString().trim() };
  } finally {
    await c.close();
  }
}

const politeGet = async (port: number, authority?: string, path?: string) =>
  (await politeFetch(port, authority, path)).status;

// ---------------------------------------------------------------------------------------------
// The bystander: another client doing GETs during a case; it must see only 200s.

interface BystanderReport {
  statuses: number[];
  errors: string[];
}

class Bystander {
  private readonly statuses: number[] = [];
  private readonly errors: string[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  private constructor(
    private readonly session: H3ClientSession,
    private readonly authority: string,
  ) {
    this.loop = this.run();
  }

  /** Connects (before any abuse starts) and begins a GET every ~25 ms. */
  static async start(port: number, authority = 'only.example'): Promise<Bystander> {
    const b = new Bystander(await connect(port), authority);
    // At least one answer before the abuse starts.
    const deadline = performance.now() + 5000;
    while (b.statuses.length + b.errors.length === 0 && performance.now() < deadline) await sleep(10);
    return b;
  }

  private async run(): Promise<void> {
    for (let i = 0; this.running && i < 100_000; i++) {
      let timer: NodeJS.Timeout | undefined;
      try {
        const res = await Promise.race([
          this.session.fetch({ path: `/bystander/${i}`, authority: this.authority }),
          new Promise<never>((_, rej) => {
            timer = setTimeout(() => rej(new Error('no answer within 5 s')), 5000);
          }),
        ]);
        this.statuses.push(res.status);
      } catch (e) {
        this.errors.push((e as Error).message);
        if (this.session.closed) return;
      } finally {
        clearTimeout(timer);
      }
      await sleep(25);
    }
  }

  /** Lets it reach `min` answers (≤ 5 s more), stops it and closes its connection. */
  async stop(min: number): Promise<BystanderReport> {
    const deadline = performance.now() + 5000;
    while (this.running && this.statuses.length + this.errors.length < min && performance.now() < deadline) {
      await sleep(20);
    }
    this.running = false;
    await this.loop;
    await this.session.close();
    return { statuses: this.statuses, errors: this.errors };
  }
}

/** Checks a bystander's report: at least `min` answers, every one a 200. */
function assertServed(report: BystanderReport, min: number): void {
  assert.deepEqual(report.errors, [], 'the bystander saw no failures');
  const other = report.statuses.filter((s) => s !== 200);
  assert.deepEqual(other, [], `the bystander saw only 200s (of ${report.statuses.length} answers)`);
  assert.ok(report.statuses.length >= min, `the bystander was served ${report.statuses.length} times (≥ ${min})`);
}

/**
 * Runs `abuse` while a bystander client keeps doing GETs on its own connection (connected before
 * the abuse), stops the bystander whatever happens, then asserts it saw only 200s.
 */
async function withBystander<T>(port: number, abuse: () => Promise<T>, min = 5): Promise<T> {
  const by = await Bystander.start(port);
  let result: T;
  let done = false;
  try {
    result = await abuse();
    done = true;
  } finally {
    const report = await by.stop(min);
    // A failing abuse keeps its own error; the report matters only when it went through.
    if (done) assertServed(report, min);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// An HTTP/1.1 backend behind a byte tap: what a desynchronised proxy would smuggle shows up both
// in the raw bytes and as an extra request parsed by node:http.

interface H1Backend {
  origin: string;
  /** `METHOD path` of every request node:http parsed. */
  seen: string[];
  /** Every byte that reached the backend, as latin1. */
  raw(): string;
  close(): Promise<void>;
}

async function startH1Backend(): Promise<H1Backend> {
  const seen: string[] = [];
  const chunks: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    req.on('error', () => {});
    res.on('error', () => {});
    req.resume();
    // Answer only once the whole body is in, so a body error is found before any response.
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('h1 ok\n');
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (_err, s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const httpPort = (server.address() as net.AddressInfo).port;
  const tap = net.createServer((client) => {
    sockets.add(client);
    const up = net.connect(httpPort, '127.0.0.1');
    sockets.add(up);
    client.on('data', (d: Buffer) => chunks.push(Buffer.from(d)));
    client.pipe(up);
    up.pipe(client);
    const end = () => {
      client.destroy();
      up.destroy();
    };
    client.on('error', end);
    up.on('error', end);
    client.on('close', () => {
      sockets.delete(client);
      end();
    });
    up.on('close', () => {
      sockets.delete(up);
      end();
    });
  });
  await new Promise<void>((r) => tap.listen(0, '127.0.0.1', () => r()));
  const port = (tap.address() as net.AddressInfo).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    seen,
    raw: () => Buffer.concat(chunks).toString('latin1'),
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([
        new Promise<void>((r) => server.close(() => r())),
        new Promise<void>((r) => tap.close(() => r())),
      ]);
    },
  };
}

// ---------------------------------------------------------------------------------------------

describe('hostile and broken clients against the running data plane', () => {
  let a: DemoBackend;
  let b: DemoBackend;
  let h1: H1Backend;
  let obs: Observed;
  let flood: Observed | null = null;
  const children = new Set<ChildProcess>();

  before(async () => {
    a = await startDemoBackend('a');
    b = await startDemoBackend('b');
    h1 = await startH1Backend();
    // only: the bystander's pool (and most cases); patient: no backend idle timeout to speak of,
    // for the stuck slow reader; h1: an HTTP/1.1 backend for the smuggling attempts.
    const pools = `  only:
    route: { host: only.example }
    backends: [{ id: a, address: "${a.origin}" }]
  patient:
    route: { host: patient.example }
    backends: [{ id: b, address: "${b.origin}" }]
    timeouts: { backend_idle_timeout_ms: 600000 }
  h1:
    route: { host: h1.example }
    backends: [{ id: h1, address: "${h1.origin}", protocol: http1 }]
`;
    obs = await Observed.start(pools, {
      extra: `performance:
  quic_initial_max_streams_bidi: ${STREAM_LIMIT}
  backend_idle_timeout_ms: ${BACKEND_IDLE_MS}
  quic_max_idle_timeout_ms: ${QUIC_IDLE_MS}
resilience:
  circuit_breaker: { open_ms: ${BREAKER_OPEN_MS} }
`,
    });
    // Upstream sessions exist before the baseline: one request per pool.
    const c = await connect(obs.port);
    try {
      for (const authority of ['only.example', 'patient.example', 'h1.example']) {
        assert.equal((await c.fetch({ path: '/warm-up', authority })).status, 200, authority);
      }
    } finally {
      await c.close();
    }
    await obs.settle();
    obs.baseline();
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await flood?.stop();
    await obs?.stop();
    await a?.close();
    await b?.close();
    await h1?.close();
  });

  it('Initial flood beyond the token bucket (5/s, burst 5, quic_retry never): most of 50 attempts dropped and counted as connection_rate, established clients served, a client after the refill connects', async (t) => {
    // Its own pair: a 5/s bucket would throttle every other case. Without Retry an empty bucket
    // can only drop (with Retry, see the next case).
    flood = await Observed.start(onlyPool(a.origin), {
      extra: 'performance: { new_connections_per_sec: 5, new_connections_burst: 5, quic_retry: never }\n',
    });
    const f = flood;
    await withBystander(f.port, async () => {
      await sleep(300);
      f.baseline();
      const shedBefore = (await f.metric('spooky_overload_shed_by_reason_total', { reason: 'connection_rate' })) ?? 0;
      const admissionBefore = (await f.metric('spooky_quic_packets_dropped_total', { reason: 'admission' })) ?? 0;
      let connected = 0;
      let failed = 0;
      // 50 attempts, 25 at a time. The handshake timeout (700 ms) is below quiche's first Initial
      // retransmission (~1 s), so each attempt is one Initial.
      for (let wave = 0; wave < 2; wave++) {
        await Promise.all(
          Array.from({ length: 25 }, async () => {
            try {
              const c = await connect(f.port, 700);
              connected++;
              await c.close();
            } catch {
              failed++;
            }
          }),
        );
      }
      t.diagnostic(`flood: ${connected} of 50 connected, ${failed} dropped`);
      assert.equal(connected + failed, 50);
      assert.ok(failed >= 35, `most attempts dropped (${failed} of 50)`);
      assert.ok(connected >= 1, 'the bucket still admits its burst');
      const shed = await f.waitFor(
        'spooky_overload_shed_by_reason_total',
        (v) => (v ?? 0) - shedBefore >= failed,
        5000,
        { reason: 'connection_rate' },
      );
      const admission = await f.metric('spooky_quic_packets_dropped_total', { reason: 'admission' });
      t.diagnostic(
        `spooky_overload_shed_by_reason_total{reason="connection_rate"} +${(shed ?? 0) - shedBefore}, spooky_quic_packets_dropped_total{reason="admission"} +${(admission ?? 0) - admissionBefore}`,
      );
      assert.ok(
        (admission ?? 0) - admissionBefore >= failed,
        'the refused Initials are counted as dropped (admission)',
      );
      await sleep(1200); // the bucket refills (5 tokens at 5/s)
      assert.equal(await politeGet(f.port), 200, 'a client after the refill connects and is served');
    });
    const rec = await f.assertRecovered();
    t.diagnostic(`recovered in ${rec.ms} ms: ${JSON.stringify(rec)}`);
    await f.stop();
    flood = null;
  });

  it('the same flood with quic_retry auto: past the bucket each client gets a Retry, and clients that answer it (their address is proven) are all served', async (t) => {
    flood = await Observed.start(onlyPool(a.origin), {
      extra: 'performance: { new_connections_per_sec: 5, new_connections_burst: 5, quic_retry: auto }\n',
    });
    const f = flood;
    let connected = 0;
    const errors: string[] = [];
    for (let wave = 0; wave < 2; wave++) {
      await Promise.all(
        Array.from({ length: 25 }, async () => {
          try {
            const c = await connect(f.port, 3000);
            connected++;
            await c.close();
          } catch (e) {
            errors.push((e as Error).message);
          }
        }),
      );
    }
    t.diagnostic(`with Retry: ${connected} of 50 connected; ${JSON.stringify(errors.slice(0, 3))}`);
    assert.equal(connected, 50, 'every client that answers a Retry is admitted');
    const sent = await f.waitFor('spooky_quic_retry_total', (v) => (v ?? 0) >= 1, 5000, { outcome: 'sent' });
    t.diagnostic(`spooky_quic_retry_total{outcome="sent"} ${sent}`);
    await f.stop();
    flood = null;
  });

  it(`a peer that opens all ${STREAM_LIMIT} bidi streams and never sends a request: others are served; when it vanishes (SIGKILL) its streams are released after the QUIC idle timeout`, async (t) => {
    const rawClientUrl = pathToFileURL(join(DIST, 'e2e', 'support', 'raw-client.js')).href;
    // A separate process, so the peer can vanish without a CONNECTION_CLOSE.
    const script = `
import { RawQuicClient } from ${JSON.stringify(rawClientUrl)};
const c = await RawQuicClient.connect(${obs.port});
c.write(2, Uint8Array.from(${JSON.stringify([...controlStream])}));
// One byte on each stream: the type of a HEADERS frame whose length never comes.
for (let i = 0; i < ${STREAM_LIMIT}; i++) c.write(i * 4, [0x01]);
let beyond;
try { c.quic.conn.streamSend(${STREAM_LIMIT * 4}, Uint8Array.from([1]), false); beyond = 'accepted'; }
catch (e) { beyond = String(e?.message ?? e); }
console.log(JSON.stringify({ closed: c.closeInfo, left: c.quic.conn.peerStreamsLeftBidi(), beyond }));
setInterval(() => {}, 60000);
`;
    let killedAt = 0;
    await withBystander(obs.port, async () => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(child);
      const exited = new Promise((r) => child.once('exit', r));
      void exited.then(() => children.delete(child));
      let out = '';
      let err = '';
      child.stdout?.on('data', (d) => (out += d));
      child.stderr?.on('data', (d) => (err += d));
      try {
        const deadline = performance.now() + 10_000;
        while (!out.includes('\n') && child.exitCode === null && performance.now() < deadline) await sleep(20);
        assert.ok(out.includes('\n'), `the hoarding peer reported: ${out} ${err}`);
        const info = JSON.parse(out.split('\n')[0]) as { closed: unknown; left: number; beyond: string };
        t.diagnostic(`hoarding peer: ${JSON.stringify(info)}`);
        assert.equal(info.closed, null);
        assert.equal(info.left, 0, 'the server granted exactly the configured stream limit');
        assert.match(info.beyond, /StreamLimit/, 'a stream beyond the limit is refused by QUIC');
        const held = await obs.waitFor('spooky_active_streams', (v) => (v ?? 0) >= STREAM_LIMIT, 5000);
        t.diagnostic(`spooky_active_streams while hoarded: ${held}`);
        // Other connections are served meanwhile.
        assert.equal(await politeGet(obs.port), 200);
        await sleep(500);
        assert.ok(((await obs.metric('spooky_active_streams')) ?? 0) >= STREAM_LIMIT, 'still held');
      } finally {
        killedAt = performance.now();
        child.kill('SIGKILL');
        await exited;
      }
    });
    const rec = await obs.assertRecovered({ timeoutMs: QUIC_IDLE_MS + 6000 });
    t.diagnostic(
      `released ${Math.round(performance.now() - killedAt)} ms after the peer vanished: ${JSON.stringify(rec)}`,
    );
  });

  /** The 100 KiB field-name bomb on a fresh raw connection; returns how stream 0 ended. */
  async function nameBomb(c: RawQuicClient): Promise<Outcome> {
    const block = section([...GET_LINES('only.example', '/bomb-name'), literalLine('x'.repeat(100 * 1024), 'v')]);
    c.write(0, encodeFrame(Frame.HEADERS, block), true);
    return outcome(c, 0);
  }

  it(`header bomb, a 100 KiB field name (HEADERS frame over max_request_headers_bytes ${MAX_HEADER_BYTES}): the stream is reset with H3_EXCESSIVE_LOAD, the connection lives on`, async (t) => {
    await withBystander(obs.port, async () => {
      const c = await rawClient(obs.port);
      try {
        const o = await nameBomb(c);
        t.diagnostic(`100 KiB name: ${describeOutcome(o)}`);
        assert.ok(o.kind === 'reset', describeOutcome(o));
        assert.equal(o.code, H3.EXCESSIVE_LOAD, describeOutcome(o));
        c.write(4, headers(GET_FIELDS), true);
        assert.equal(describeOutcome(await outcome(c, 4)), '200', 'the same connection serves the next request');
      } finally {
        await c.close();
      }
    });
    assert.ok(!a.seen.some((s) => s.path.startsWith('/bomb')), 'the bomb never reached the backend');
    await obs.assertRecovered();
  });

  it('header bomb, a 100 KiB field name: the reset carries H3_EXCESSIVE_LOAD', async () => {
    const c = await rawClient(obs.port);
    try {
      const o = await nameBomb(c);
      assert.equal(describeOutcome(o), describeOutcome({ kind: 'reset', code: H3.EXCESSIVE_LOAD }));
    } finally {
      await c.close();
    }
    await obs.assertRecovered();
  });

  it(`header bomb, 5,000 fields (and ${MAX_HEADER_COUNT * 2}, under the byte limit but over max_request_headers_count): 431 each, the connection lives on`, async (t) => {
    await withBystander(obs.port, async () => {
      const c = await rawClient(obs.port);
      try {
        // 5,000 one-letter fields: ~15 KB encoded, so the frame fits, but 5,000 × (1 + 32) bytes
        // of RFC 9114 §4.2.2 field-section size do not.
        const many = Array.from({ length: 5000 }, (_, i) => literalLine(String.fromCharCode(97 + (i % 26)), ''));
        const block = section([...GET_LINES('only.example', '/bomb-5000'), ...many]);
        assert.ok(block.length < MAX_HEADER_BYTES, `the frame itself fits (${block.length} bytes)`);
        c.write(0, encodeFrame(Frame.HEADERS, block), true);
        const o = await outcome(c, 0);
        t.diagnostic(`5,000 fields: ${describeOutcome(o)}`);
        assert.equal(describeOutcome(o), '431');
        const count = Array.from({ length: MAX_HEADER_COUNT * 2 }, (_, i) => literalLine(`x-${i}`, '1'));
        c.write(4, encodeFrame(Frame.HEADERS, section([...GET_LINES('only.example', '/bomb-count'), ...count])), true);
        const o2 = await outcome(c, 4);
        t.diagnostic(`${MAX_HEADER_COUNT * 2} fields: ${describeOutcome(o2)}`);
        assert.equal(describeOutcome(o2), '431');
        c.write(8, headers(GET_FIELDS), true);
        assert.equal(describeOutcome(await outcome(c, 8)), '200', 'the same connection serves the next request');
      } finally {
        await c.close();
      }
    });
    assert.ok(!a.seen.some((s) => s.path.startsWith('/bomb')), 'the bombs never reached the backend');
    await obs.assertRecovered();
  });

  it('header bomb, a QPACK string length beyond the HEADERS frame: connection closed with QPACK_DECOMPRESSION_FAILED', async (t) => {
    await withBystander(obs.port, async () => {
      const c = await rawClient(obs.port);
      try {
        // A literal name claiming 1,000,000 bytes, followed by three.
        const lie = Buffer.alloc(integerLength(1_000_000, 3) + 3, 0x61);
        encodeInteger(lie, 0, 1_000_000, 3, 0x20);
        c.write(0, encodeFrame(Frame.HEADERS, section([...GET_LINES('only.example', '/bomb-qpack'), lie])), true);
        const o = await outcome(c, 0);
        t.diagnostic(`QPACK length lie: ${describeOutcome(o)}`);
        assert.ok(o.kind === 'closed', describeOutcome(o));
        assert.equal(o.isApp, true);
        assert.equal(o.code, H3.QPACK_DECOMPRESSION_FAILED);
      } finally {
        await c.close();
      }
    });
    assert.ok(!a.seen.some((s) => s.path.startsWith('/bomb')), 'the bomb never reached the backend');
    await obs.assertRecovered();
  });

  it('slow upload (POST /echo, 1 byte per 100 ms for 3 s): streamed through while others are served; a client reset releases it', async (t) => {
    // The issue says one byte per second; a 100 ms tick keeps the case short with the same shape
    // (a trickle far below any sane rate, each byte inside the backend idle timeout).
    await withBystander(obs.port, async () => {
      const c = await rawClient(obs.port);
      try {
        c.write(0, headers(POST_ECHO));
        let sent = '';
        for (let i = 0; i < 30; i++) {
          const byte = String.fromCharCode(97 + (i % 26));
          c.write(0, data(byte));
          sent += byte;
          await sleep(100);
        }
        const got = parseResponse(Buffer.concat(c.received.get(0) ?? []));
        t.diagnostic(`after 3 s: status ${got.status}, ${got.body.length} of ${sent.length} bytes echoed`);
        assert.equal(got.status, 200, 'the backend answered while the upload trickles');
        assert.ok(got.body.length >= sent.length - 5, 'the trickle is streamed, not held back');
        assert.equal(got.body.toString('latin1'), sent.slice(0, got.body.length));
        assert.ok(((await obs.metric('spooky_upstream_inflight')) ?? 0) >= 1, 'in flight while trickling');
        c.quic.streamShutdown(0, 'write', H3.REQUEST_CANCELLED);
        c.quic.streamShutdown(0, 'read', H3.REQUEST_CANCELLED);
        c.quic.flush();
        // Released with the connection still open.
        await obs.settle();
        await obs.waitFor('spooky_active_streams', (v) => v === 0, 5000);
        await obs.waitFor('spooky_upstream_inflight', (v) => v === 0, 5000);
        assert.equal(c.closeInfo, null, 'the connection lives on');
      } finally {
        await c.close();
      }
    });
    await obs.assertRecovered();
  });

  it(`an upload idle longer than backend_idle_timeout_ms (${BACKEND_IDLE_MS}): after the 200 and the echo, the stream is reset with H3_INTERNAL_ERROR`, async (t) => {
    await withBystander(obs.port, async () => {
      const c = await rawClient(obs.port);
      try {
        c.write(0, Buffer.concat([headers(POST_ECHO), data('x')]));
        const started = performance.now();
        const o = await outcome(c, 0, BACKEND_IDLE_MS + 4000);
        const ms = Math.round(performance.now() - started);
        const got = parseResponse(Buffer.concat(c.received.get(0) ?? []));
        t.diagnostic(`idle upload: ${describeOutcome(o)} after ${ms} ms (status ${got.status}, body ${got.body})`);
        assert.equal(describeOutcome(o), describeOutcome({ kind: 'reset', code: H3.INTERNAL_ERROR }));
        assert.equal(got.status, 200, 'the echo had started');
        assert.equal(got.body.toString(), 'x');
        assert.ok(
          ms >= BACKEND_IDLE_MS - 200 && ms < BACKEND_IDLE_MS + 2000,
          `reset after the idle timeout (${ms} ms)`,
        );
        assert.equal(c.closeInfo, null, 'only the stream ends');
        c.write(4, headers(GET_FIELDS), true);
        assert.equal(describeOutcome(await outcome(c, 4)), '200');
      } finally {
        await c.close();
      }
    });
    await obs.assertRecovered();
  });

  it('slow reader (4 × GET /bytes/64 MiB never read): the data plane does not buffer the bodies (RSS growth < 64 MiB); STOP_SENDING releases the exchanges', async (t) => {
    await withBystander(obs.port, async () => {
      const c = await rawClient(obs.port);
      const ids = [0, 4, 8, 12];
      // Never read these streams: the client's 1 MB stream window is never extended.
      const read = c.onStreamReadable.bind(c);
      c.onStreamReadable = (id: number) => {
        if (!ids.includes(id)) read(id);
      };
      try {
        const rssBefore = obs.rssBytes();
        for (const id of ids) c.write(id, headers(getFields('patient.example', '/bytes/67108864')), true);
        await obs.waitFor('spooky_upstream_inflight', (v) => (v ?? 0) >= ids.length, 5000);
        let peak = rssBefore;
        for (let i = 0; i < 12; i++) {
          peak = Math.max(peak, obs.rssBytes());
          await sleep(250);
        }
        const streams = await obs.metric('spooky_active_streams');
        const inflight = await obs.metric('spooky_upstream_inflight');
        t.diagnostic(
          `stuck 3 s: RSS ${mib(rssBefore)} → peak ${mib(peak)} MiB for ${ids.length} × 64 MiB; streams ${streams}, inflight ${inflight}`,
        );
        assert.ok(peak - rssBefore < 64 * 2 ** 20, `RSS grew by ${mib(peak - rssBefore)} MiB`);
        assert.ok((inflight ?? 0) >= ids.length, 'still stuck, not ended');
        for (const id of ids) c.quic.streamShutdown(id, 'read', H3.REQUEST_CANCELLED);
        c.quic.flush();
        await obs.settle();
        await obs.waitFor('spooky_upstream_inflight', (v) => v === 0, 5000);
        await obs.waitFor('spooky_active_streams', (v) => v === 0, 5000);
        assert.equal(c.closeInfo, null, 'the connection lives on');
      } finally {
        await c.close();
      }
    });
    await obs.assertRecovered();
  });

  it('request smuggling over HTTP/3 to an HTTP/1.1 backend: 400 for each attempt (or H3_MESSAGE_ERROR), nothing smuggled reaches the backend, the connection serves the next request', async (t) => {
    const base = (method: string, path: string): Field[] => [
      [':method', method],
      [':scheme', 'https'],
      [':authority', 'h1.example'],
      [':path', path],
    ];
    // `early`: refused on the header section alone; its body is sent after the answer (a body in
    // the same packet is the separate case below).
    const attempts: Array<{ name: string; fields: Field[]; body?: string[]; early?: boolean }> = [
      {
        name: 'content-length longer than the DATA',
        fields: [...base('POST', '/cl-long'), ['content-length', '100']],
        body: ['abc'],
      },
      {
        name: 'DATA longer than content-length (one frame)',
        fields: [...base('POST', '/cl-short-1'), ['content-length', '3']],
        body: [`abc${SMUGGLE}`],
      },
      {
        name: 'DATA longer than content-length (two frames)',
        fields: [...base('POST', '/cl-short-2'), ['content-length', '3']],
        body: ['abc', SMUGGLE],
      },
      {
        name: 'transfer-encoding: chunked',
        fields: [...base('POST', '/smuggled-te'), ['transfer-encoding', 'chunked']],
        body: [`0\r\n\r\n${SMUGGLE}`],
        early: true,
      },
      {
        name: 'uppercase Transfer-Encoding',
        fields: [...base('POST', '/smuggled-te-upper'), ['Transfer-Encoding', 'chunked']],
        body: [`0\r\n\r\n${SMUGGLE}`],
        early: true,
      },
      {
        name: 'uppercase Content-Length',
        fields: [...base('POST', '/smuggled-cl-upper'), ['Content-Length', '3']],
        body: ['abc'],
        early: true,
      },
      {
        name: 'pseudo-header after a regular one',
        fields: [
          [':method', 'GET'],
          [':scheme', 'https'],
          ['x-a', '1'],
          [':authority', 'h1.example'],
          [':path', '/smuggled-pseudo'],
        ],
      },
      { name: 'CR LF in a value', fields: [...base('GET', '/smuggled-crlf'), ['x-a', `b\r\n${SMUGGLE}`]] },
      { name: 'LF in a value', fields: [...base('GET', '/smuggled-lf'), ['x-a', 'b\nx-injected: 1']] },
      { name: 'CR in a value', fields: [...base('GET', '/smuggled-cr'), ['x-a', 'b\rx-injected: 1']] },
      { name: 'NUL in a value', fields: [...base('GET', '/smuggled-nul'), ['x-a', 'b\0c']] },
      {
        name: 'two different content-lengths',
        fields: [...base('POST', '/smuggled-cl-twice'), ['content-length', '3'], ['content-length', '40']],
        body: ['abc'],
        early: true,
      },
      {
        name: 'a content-length list',
        fields: [...base('POST', '/smuggled-cl-list'), ['content-length', '3, 40']],
        body: ['abc'],
        early: true,
      },
      { name: 'host differing from :authority', fields: [...base('GET', '/smuggled-host'), ['host', 'only.example']] },
      { name: 'connection-specific upgrade', fields: [...base('GET', '/smuggled-upgrade'), ['upgrade', 'h2c']] },
      { name: 'te other than trailers', fields: [...base('GET', '/smuggled-te-gzip'), ['te', 'chunked']] },
    ];
    const results: string[] = [];
    await withBystander(obs.port, async () => {
      const c = await rawClient(obs.port);
      try {
        let id = 0;
        for (const at of attempts) {
          const body = (at.body ?? []).map((x) => data(x));
          let o: Outcome;
          if (at.early && body.length > 0) {
            c.write(id, headers(at.fields));
            o = await outcome(c, id);
            c.write(id, Buffer.concat(body), true); // refused already: the body is not read
          } else {
            c.write(id, Buffer.concat([headers(at.fields), ...body]), true);
            o = await outcome(c, id);
          }
          results.push(`${at.name}: ${describeOutcome(o)}`);
          assert.ok(
            (o.kind === 'response' && o.status === 400) || (o.kind === 'reset' && o.code === H3.MESSAGE_ERROR),
            `${at.name}: 400 or H3_MESSAGE_ERROR, got ${describeOutcome(o)}`,
          );
          id += 4;
        }
        t.diagnostic(results.join('; '));
        // The same connection serves a proper request with a body, and a GET.
        c.write(
          id,
          Buffer.concat([headers([...base('POST', '/legit'), ['content-length', '5']]), data('hello')]),
          true,
        );
        assert.equal(describeOutcome(await outcome(c, id)), '200');
        c.write(id + 4, headers(base('GET', '/legit-get')), true);
        assert.equal(describeOutcome(await outcome(c, id + 4)), '200');
        assert.equal(c.closeInfo, null);
      } finally {
        await c.close();
      }
    });
    t.diagnostic(`the HTTP/1.1 backend parsed: ${h1.seen.join(', ')}`);
    assert.deepEqual(
      h1.seen.filter((x) => x.includes('smuggled')),
      [],
      'no smuggled request was parsed by the backend',
    );
    assert.ok(!h1.raw().includes('smuggled'), 'no smuggled byte reached the backend');
    assert.ok(!h1.raw().includes('x-injected'), 'no injected header reached the backend');
    assert.ok(h1.seen.includes('POST /legit') && h1.seen.includes('GET /legit-get'), 'the legitimate requests did');
    assert.ok(!a.seen.some((x) => x.path.includes('smuggled')), 'nor did anything reach the other backend');
    await obs.assertRecovered();
  });

  it('a request answered before dispatch whose body rides in the same packet (transfer-encoding → 400, no route → 404, content-length over max_request_body_bytes → 413): the answer, and the connection lives on', async (t) => {
    const cases: Array<{ name: string; fields: Field[]; body: string; expect: string }> = [
      {
        name: 'transfer-encoding',
        fields: [...postFields('h1.example', '/smuggled-te-same-packet'), ['transfer-encoding', 'chunked']],
        body: `0\r\n\r\n${SMUGGLE}`,
        expect: '400',
      },
      { name: 'no route', fields: postFields('nowhere.example', '/x'), body: 'body', expect: '404' },
      {
        name: 'content-length over max_request_body_bytes',
        fields: [...postFields('only.example', '/echo'), ['content-length', '200000000']],
        body: 'body',
        expect: '413',
      },
    ];
    const seen: string[] = [];
    for (const k of cases) {
      const c = await rawClient(obs.port);
      try {
        c.write(0, Buffer.concat([headers(k.fields), data(k.body)]), true);
        const o = await outcome(c, 0);
        let next: Outcome = { kind: 'timeout' };
        if (!c.isClosed) {
          c.write(4, headers(GET_FIELDS), true);
          next = await outcome(c, 4);
        }
        seen.push(`${k.name}: ${describeOutcome(o)}, then ${describeOutcome(next)}`);
      } finally {
        await c.close();
      }
    }
    t.diagnostic(seen.join('; '));
    assert.deepEqual(
      seen,
      cases.map((k) => `${k.name}: ${k.expect}, then 200`),
    );
    assert.ok(!h1.raw().includes('smuggled'), 'no smuggled byte reached the backend');
    await obs.assertRecovered();
  });

  it('a burst of 2,000 random, truncated, 0-RTT and Handshake datagrams while the bystander is served: all dropped and counted', async (t) => {
    const N = 2000;
    await withBystander(obs.port, async () => {
      const droppedBefore = (await obs.metric('spooky_quic_packets_dropped_total')) ?? 0;
      const sock = dgram.createSocket('udp4');
      let replies = 0;
      sock.on('message', () => replies++);
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      const send = (buf: Buffer) => new Promise<void>((r) => sock.send(buf, obs.port, '127.0.0.1', () => r()));
      const longHeader = (firstByte: number, size: number) => {
        const buf = randomBytes(size);
        buf[0] = firstByte;
        buf.writeUInt32BE(1, 1); // QUIC v1
        buf[5] = 8; // dcid length
        buf[14] = 8; // scid length
        return buf;
      };
      try {
        for (let i = 0; i < N; i += 50) {
          const batch: Promise<void>[] = [];
          for (let j = i; j < i + 50; j++) {
            const kind = j % 10;
            // Random datagrams stay under 1,200 bytes: a full-size one with an unknown version is
            // (rightly) answered with Version Negotiation rather than dropped.
            const bytes =
              kind === 0
                ? longHeader(0xd0, 1200) // 0-RTT for an unknown connection
                : kind === 1
                  ? longHeader(0xe0, 1200) // Handshake for an unknown connection
                  : kind === 2
                    ? longHeader(0xc0, 20 + (j % 100)) // truncated Initial
                    : randomBytes(1 + Math.floor(Math.random() * 1199));
            batch.push(send(bytes));
          }
          await Promise.all(batch);
          await sleep(2);
        }
      } finally {
        sock.close();
      }
      const dropped = await obs.waitFor(
        'spooky_quic_packets_dropped_total',
        (v) => (v ?? 0) - droppedBefore >= N,
        5000,
      );
      t.diagnostic(
        `spooky_quic_packets_dropped_total +${(dropped ?? 0) - droppedBefore} for ${N} datagrams, ${replies} replies`,
      );
      assert.equal(replies, 0, 'nothing is answered');
    });
    await obs.assertRecovered();
  });

  it(`clients that stop reading (6 × GET /bytes/64 MiB, ended by backend_idle_timeout_ms) do not open the backend's circuit breaker for everyone`, async (t) => {
    const by = await Bystander.start(obs.port);
    const c = await rawClient(obs.port);
    const ids = [0, 4, 8, 12, 16, 20];
    const read = c.onStreamReadable.bind(c);
    c.onStreamReadable = (id: number) => {
      if (!ids.includes(id)) read(id);
    };
    let report: BystanderReport | null = null;
    try {
      for (const id of ids) c.write(id, headers(getFields('only.example', '/bytes/67108864')), true);
      await sleep(BACKEND_IDLE_MS + 1000);
      // Reading now surfaces the resets (and empties the windows).
      const ends: string[] = [];
      for (const id of ids) {
        read(id);
        ends.push(describeOutcome(await outcome(c, id, 100)));
      }
      const polite = await politeFetch(obs.port);
      report = await by.stop(5);
      const open = await obs.metric('spooky_circuit_breaker_open', { backend: 'a' });
      const shed = await obs.metric('spooky_overload_shed_by_reason_total', { reason: 'circuit_open' });
      const byStatus = new Map<number, number>();
      for (const st of report.statuses) byStatus.set(st, (byStatus.get(st) ?? 0) + 1);
      t.diagnostic(
        `stuck readers: ${ends.join(', ')}; a polite GET right after: ${polite.status} ${polite.body}; bystander: ${JSON.stringify([...byStatus])}; spooky_circuit_breaker_open{backend="a"} ${open}; shed circuit_open ${shed}`,
      );
      assert.equal(polite.status, 200, 'other clients are still served');
      assertServed(report, 5);
    } finally {
      await c.close();
      if (!report) await by.stop(0);
    }
    await sleep(BREAKER_OPEN_MS); // should it have opened, let it close before anything else runs
    await obs.assertRecovered();
  });
});
