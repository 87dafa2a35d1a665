/**
 * Stream-level attacks on the HTTP/3 listener and its TCP companion, against real processes:
 * rapid reset (HEADERS then RESET_STREAM, over and over: each pair starts a backend request) and
 * slow headers (request header sections that never complete, one byte at a time). Each must be
 * cut by the limits of dataplane/h3/stream-guard.ts and performance.request_header_timeout_ms
 * while a bystander keeps being served.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { H3, h3ErrorName } from '../dataplane/h3/errors.js';
import { encodeFrame, encodeSettings, Frame } from '../dataplane/h3/frames.js';
import { encodeFieldSection } from '../dataplane/h3/qpack/encoder.js';
import { MAX_STREAMS_AWAITING_HEADERS } from '../dataplane/h3/stream-guard.js';
import { CANCELLED_STREAMS_BURST } from '../dataplane/resilience/cancelled-streams.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { Observed } from './support/observe.js';
import { onlyPool } from './support/pair.js';
import { RawQuicClient } from './support/raw-client.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const HEADER_TIMEOUT_MS = 1000;
const STREAM_LIMIT = 100;

const controlStream = Buffer.concat([Buffer.from([0x00]), encodeSettings([[0x01, 0]])]);
const getHeaders = (path: string) =>
  encodeFrame(
    Frame.HEADERS,
    encodeFieldSection([
      [':method', 'GET'],
      [':scheme', 'https'],
      [':authority', 'only.example'],
      [':path', path],
    ]),
  );

async function rawClient(port: number): Promise<RawQuicClient> {
  const c = await RawQuicClient.connect(port);
  c.write(2, controlStream);
  return c;
}

/** GETs on their own connection every 25 ms until stopped; every answer must be a 200. */
async function bystander(port: number): Promise<{ stop(): Promise<number[]> }> {
  const session = await H3ClientSession.connect('127.0.0.1', port, { insecure: true, serverName: 'localhost' });
  const statuses: number[] = [];
  let running = true;
  const loop = (async () => {
    for (let i = 0; running && i < 10_000; i++) {
      try {
        statuses.push((await session.fetch({ path: `/bystander/${i}`, authority: 'only.example' })).status);
      } catch (e) {
        statuses.push(-1);
        if (session.closed) return;
        void e;
      }
      await sleep(25);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await session.close();
      return statuses;
    },
  };
}

describe('stream attacks', { timeout: 120_000 }, () => {
  let a: DemoBackend;
  let obs: Observed;

  before(async () => {
    a = await startDemoBackend('a');
    obs = await Observed.start(onlyPool(a.origin), {
      tcp: true,
      extra: `performance:\n  quic_initial_max_streams_bidi: ${STREAM_LIMIT}\n  request_header_timeout_ms: ${HEADER_TIMEOUT_MS}\n`,
    });
  });

  after(async () => {
    await obs?.stop();
    await a?.close();
  });

  it('HTTP/3 rapid reset: the connection is closed with H3_EXCESSIVE_LOAD after the reset budget, the backend sees at most about that many requests', async (t) => {
    const by = await bystander(obs.port);
    const c = await rawClient(obs.port);
    const seenBefore = a.seen.length;
    let opened = 0;
    try {
      // Batches of HEADERS, each reset 2 ms later, as fast as stream credit allows: 3,000
      // streams at most (today's attack ran 6,300 in 4 s on one connection).
      for (let batch = 0; batch < 150 && !c.isClosed; batch++) {
        const ids: number[] = [];
        for (let i = 0; i < 20 && !c.isClosed; i++) {
          const id = opened * 4;
          try {
            // /hang: the backend never answers, so every reset beats its response, as in the
            // attack (a fast backend's answer can arrive before the reset and end the stream).
            c.write(id, getHeaders('/hang'));
          } catch {
            break; // no stream credit right now
          }
          ids.push(id);
          opened++;
        }
        await sleep(2);
        for (const id of ids) c.quic.streamShutdown(id, 'write', H3.REQUEST_CANCELLED);
        c.quic.flush(true);
        await sleep(10);
      }
      const info = await c.waitClosed(3000);
      t.diagnostic(
        `${opened} streams opened; backend saw ${a.seen.length - seenBefore} of them; closed: ${JSON.stringify(info)}`,
      );
      assert.ok(info, `the connection was closed (it stayed open through ${opened} reset streams)`);
      assert.equal(info.isApp, true);
      assert.equal(h3ErrorName(info.code), 'H3_EXCESSIVE_LOAD');
      assert.ok(opened < 3000, 'cut before the attack ran its course');
      // The budget plus what was in flight when it ran out (a batch, and a little refill).
      assert.ok(
        a.seen.length - seenBefore <= CANCELLED_STREAMS_BURST + 200,
        `backend requests ${a.seen.length - seenBefore}`,
      );
    } finally {
      await c.close();
      const statuses = await by.stop();
      assert.ok(statuses.length >= 3, `the bystander was served (${statuses.length} answers)`);
      assert.deepEqual(
        statuses.filter((s) => s !== 200),
        [],
        'the bystander saw only 200s',
      );
    }
  });

  it(`HTTP/3 slow headers: HEADERS dripped a byte at a time get 408 after request_header_timeout_ms, more than ${MAX_STREAMS_AWAITING_HEADERS} such streams are refused at once`, async (t) => {
    const by = await bystander(obs.port);
    const c = await rawClient(obs.port);
    const total = MAX_STREAMS_AWAITING_HEADERS + 8;
    const frames = new Map<number, Uint8Array>();
    const sent = new Map<number, number>();
    try {
      const started = performance.now();
      for (let i = 0; i < total; i++) {
        const id = i * 4;
        frames.set(id, getHeaders(`/slow/${i}`));
        c.write(id, (frames.get(id) as Uint8Array).subarray(0, 3));
        sent.set(id, 3);
      }
      // Keep dripping one byte per stream every 200 ms, never completing the frame.
      const deadline = performance.now() + HEADER_TIMEOUT_MS * 4;
      while (
        performance.now() < deadline &&
        [...frames.keys()].some((id) => !c.finished.has(id) && !c.resets.has(id))
      ) {
        for (const [id, frame] of frames) {
          const n = sent.get(id) as number;
          if (c.finished.has(id) || c.resets.has(id) || n >= frame.length - 1 || c.isClosed) continue;
          try {
            c.write(id, frame.subarray(n, n + 1));
            sent.set(id, n + 1);
          } catch {
            // The server stopped this stream: nothing more to drip.
          }
        }
        await sleep(200);
      }
      const elapsed = performance.now() - started;
      const ids = [...frames.keys()];
      const refused = ids.filter((id) => c.resets.get(id) === H3.REQUEST_REJECTED);
      const answered = ids.filter((id) => c.finished.has(id));
      t.diagnostic(`${answered.length} answered, ${refused.length} refused after ${Math.round(elapsed)} ms`);
      assert.equal(refused.length, total - MAX_STREAMS_AWAITING_HEADERS, 'the streams over the cap were refused');
      assert.equal(answered.length, MAX_STREAMS_AWAITING_HEADERS, 'every other stream was answered');
      for (const id of answered) {
        const raw = Buffer.concat(c.received.get(id) ?? []).toString('latin1');
        assert.match(raw, /408/, `stream ${id} got a 408`);
      }
      assert.equal(c.isClosed, false, 'the connection itself stays usable');
    } finally {
      await c.close();
      const statuses = await by.stop();
      assert.deepEqual(
        statuses.filter((s) => s !== 200),
        [],
        'the bystander saw only 200s',
      );
    }
  });

  it('HTTP/1.1 slow headers on the TCP listener: 408 and close after request_header_timeout_ms, not minutes', async () => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: obs.port,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    let received = '';
    socket.on('data', (d) => (received += d.toString('latin1')));
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.on('error', () => {});
    try {
      await new Promise<void>((r, j) => {
        socket.once('secureConnect', () => r());
        socket.once('error', j);
      });
      const started = performance.now();
      socket.write('GET /slow-h1 HTTP/1.1\r\nHost: only.example\r\n');
      let gone = false;
      void closed.then(() => (gone = true));
      for (let i = 0; i < 40 && !gone; i++) {
        socket.write(`x-drip-${i}: y\r\n`);
        await sleep(200);
      }
      assert.ok(gone, `the connection was still open after ${Math.round(performance.now() - started)} ms`);
      const elapsed = performance.now() - started;
      assert.match(received, /^HTTP\/1\.1 408 /, 'a 408 before the close');
      assert.ok(elapsed < HEADER_TIMEOUT_MS + 2500, `closed after ${Math.round(elapsed)} ms`);
    } finally {
      socket.destroy();
    }
  });
});
