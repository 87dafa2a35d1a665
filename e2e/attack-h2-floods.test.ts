/**
 * Issue #12, item 10d: HTTP/2 floods on the TCP listener were answered with GOAWAY
 * INTERNAL_ERROR, as if Spooky had failed. A hand-written HTTP/2 client (frames built here, over
 * TLS with ALPN h2) floods the real data plane and reads the GOAWAY it gets: ENHANCE_YOUR_CALM for
 * a rapid reset (HEADERS then RST_STREAM, CVE-2023-44487), where nghttp2's own limit said
 * INTERNAL_ERROR after 1,000 streams. A bystander is served after. The other floods (a PING flood
 * from a client that does not read, a thousand malformed requests) cannot be watched this way:
 * the server resets the connection under the client's unread frames and the GOAWAY is lost with
 * it. dataplane/tcp/h2-abuse.test.ts covers the codes they get.
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { dataplaneConfig, type RunningDataplane, startDataplane } from './support/harness.js';
import { describeH2, h2Connect, h2Request } from './support/tcp-clients.js';

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_PROTOCOL_ERROR, NGHTTP2_INTERNAL_ERROR } = http2.constants;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK: indexed :method GET, :scheme https, :path /, then `:authority` literal (static name 1). */
function requestBlock(): Buffer {
  const authority = Buffer.from('www.example', 'latin1');
  return Buffer.concat([Buffer.from([0x82, 0x87, 0x84, 0x01, authority.length]), authority]);
}

const END_STREAM_HEADERS = 0x5;
const headersFrame = (stream: number) => frame(0x1, END_STREAM_HEADERS, stream, requestBlock());
const rstStream = (stream: number, code: number) => {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(0x3, 0, stream, p);
};

/** A raw HTTP/2 connection that collects the server's frames and reports its GOAWAY. */
class RawH2 {
  private buf = Buffer.alloc(0);
  goaway: { lastStream: number; code: number } | null = null;
  closed = false;
  /** Frames received by type, and the socket error if any (for failure messages). */
  readonly frames: Record<number, number> = {};
  error = '';

  private constructor(readonly socket: tls.TLSSocket) {
    socket.on('data', (d: Buffer) => this.parse(d));
    socket.on('error', (e) => {
      this.error = e.message;
    });
    socket.on('close', () => {
      this.closed = true;
    });
  }

  static connect(port: number): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        rejectUnauthorized: false,
        ALPNProtocols: ['h2'],
      });
      socket.once('error', reject);
      socket.once('secureConnect', async () => {
        socket.write(Buffer.concat([PREFACE, frame(0x4, 0, 0)]));
        const c = new RawH2(socket);
        // The server's SETTINGS received and acknowledged before anything else is sent.
        const deadline = performance.now() + 5000;
        while (!c.frames[0x4] && performance.now() < deadline) await sleep(5);
        resolve(c);
      });
    });
  }

  private parse(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) return;
      const type = this.buf[3];
      this.frames[type] = (this.frames[type] ?? 0) + 1;
      const payload = this.buf.subarray(9, 9 + len);
      if (type === 0x7 && !this.goaway) {
        this.goaway = { lastStream: payload.readUInt32BE(0) & 0x7fffffff, code: payload.readUInt32BE(4) };
      }
      // Acknowledge the server's SETTINGS so the session is fully up.
      if (type === 0x4 && (this.buf[4] & 0x1) === 0) this.socket.write(frame(0x4, 0x1, 0));
      this.buf = this.buf.subarray(9 + len);
    }
  }

  /**
   * Writes `fast` frames in batches, then one at a time until the server says GOAWAY (at most
   * `max` in all, within 15 s): what the server has not read when it closes makes its kernel reset
   * the connection, which can swallow the GOAWAY, so nothing is sent ahead of its verdict.
   */
  async flood(make: (i: number) => Buffer, fast: number, max: number): Promise<void> {
    const deadline = performance.now() + 15_000;
    for (let i = 0; i < max && !this.goaway && !this.closed && performance.now() < deadline; ) {
      const n = i < fast ? Math.min(10, fast - i) : 1;
      const chunk: Buffer[] = [];
      for (let j = i; j < i + n; j++) chunk.push(make(j));
      this.socket.write(Buffer.concat(chunk));
      i += n;
      await sleep(i < fast ? 2 : 20);
    }
  }

  /** Waits (bounded) for the GOAWAY or the end of the connection. */
  async ended(ms = 10_000): Promise<{ lastStream: number; code: number } | null> {
    const deadline = performance.now() + ms;
    while (!this.goaway && !this.closed && performance.now() < deadline) await sleep(20);
    return this.goaway;
  }

  close(): void {
    this.socket.destroy();
  }
}

const codeName = (code: number | undefined) =>
  code === NGHTTP2_ENHANCE_YOUR_CALM
    ? 'ENHANCE_YOUR_CALM'
    : code === NGHTTP2_PROTOCOL_ERROR
      ? 'PROTOCOL_ERROR'
      : code === NGHTTP2_INTERNAL_ERROR
        ? 'INTERNAL_ERROR'
        : String(code);

describe('HTTP/2 floods on the TCP listener get the RFC 9113 GOAWAY code (issue #12 item 10d)', {
  timeout: 120_000,
}, () => {
  let backend: DemoBackend;
  let dp: RunningDataplane;

  before(async () => {
    backend = await startDemoBackend('a');
    dp = await startDataplane(
      dataplaneConfig(`  web:
    route: { path_prefix: / }
    backends: [{ id: a, address: "${backend.origin}" }]
`),
    );
  });

  after(async () => {
    await dp?.stop();
    await backend?.close();
  });

  async function assertBystanderServed(): Promise<void> {
    const session = h2Connect(dp.port);
    try {
      assert.equal(describeH2(await h2Request(session, { ':path': '/after', ':authority': 'www.example' })), '200');
    } finally {
      session.destroy();
    }
  }

  it('rapid reset (HEADERS + RST_STREAM on up to 1,500 streams): GOAWAY ENHANCE_YOUR_CALM', async () => {
    const c = await RawH2.connect(dp.port);
    try {
      const id = (i: number) => 1 + 2 * i;
      // Spooky's limit is a burst of 200; nghttp2's own (1,000) answered INTERNAL_ERROR.
      await c.flood((i) => Buffer.concat([headersFrame(id(i)), rstStream(id(i), 0x8 /* CANCEL */)]), 190, 1500);
      const g = await c.ended();
      assert.equal(
        codeName(g?.code),
        'ENHANCE_YOUR_CALM',
        `GOAWAY ${JSON.stringify(g)}, frames ${JSON.stringify(c.frames)}, ${c.error}`,
      );
    } finally {
      c.close();
    }
    await assertBystanderServed();
  });
});
