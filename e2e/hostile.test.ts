/**
 * Broken and hostile peers against the running data plane: malformed datagrams and HTTP/3
 * violations get the RFC's answers, and the process keeps serving everyone else.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { H3 } from '../dataplane/h3/errors.js';
import { encodeFrame, encodeSettings, Frame, FrameReader } from '../dataplane/h3/frames.js';
import { decodeFieldSection } from '../dataplane/h3/qpack/decoder.js';
import { encodeFieldSection } from '../dataplane/h3/qpack/encoder.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { dataplaneConfig, type RunningDataplane, startDataplane } from './support/harness.js';
import { RawQuicClient } from './support/raw-client.js';

const CLIENT_CONTROL = 2;
const settings = encodeSettings([
  [0x01, 0],
  [0x07, 0],
]);
const controlStream = Buffer.concat([Buffer.from([0x00]), settings]);
const GET = encodeFieldSection([
  [':method', 'GET'],
  [':scheme', 'https'],
  [':authority', 'only.example'],
  [':path', '/'],
]);

/** The fields of the first HEADERS frame in raw response-stream bytes. */
function responseFields(raw: Buffer): Array<[string, string]> {
  let fields: Array<[string, string]> = [];
  new FrameReader(65536).push(raw, {
    onFrameData: () => {},
    onFrame: (type, payload) => {
      if (type === Frame.HEADERS && fields.length === 0) fields = decodeFieldSection(payload, 65536);
    },
  });
  return fields;
}

describe('hostile peers', () => {
  let backend: DemoBackend;
  let dp: RunningDataplane;

  before(async () => {
    backend = await startDemoBackend('a');
    dp = await startDataplane(
      dataplaneConfig(`  only:
    route: { host: only.example }
    backends:
      - { id: only-1, address: "${backend.origin}" }
`),
    );
  });

  after(async () => {
    await dp?.stop();
    await backend?.close();
  });

  /** A well-behaved client must still get answers after each abuse. */
  async function assertStillServing(): Promise<void> {
    const c = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
    try {
      const res = await c.fetch({ path: '/ok', authority: 'only.example' });
      assert.equal(res.status, 200);
    } finally {
      await c.close();
    }
    assert.equal(dp.proc.exitCode, null, 'the data plane is still running');
  }

  async function violation(write: (c: RawQuicClient) => void): Promise<number> {
    const c = await RawQuicClient.connect(dp.port);
    try {
      write(c);
      const info = await c.waitClosed();
      assert.ok(info, 'the server closed the connection');
      assert.equal(info.isApp, true);
      return info.code;
    } finally {
      await c.close();
    }
  }

  it('answers 404 when no route matches', async () => {
    const c = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
    try {
      const res = await c.fetch({ path: '/', authority: 'other.example' });
      assert.equal(res.status, 404);
      assert.match(res.body.toString(), /^404 /);
    } finally {
      await c.close();
    }
  });

  it('DATA before HEADERS is H3_FRAME_UNEXPECTED', async () => {
    const code = await violation((c) => {
      c.write(CLIENT_CONTROL, controlStream);
      c.write(0, encodeFrame(Frame.DATA, Buffer.from('boo')), true);
    });
    assert.equal(code, H3.FRAME_UNEXPECTED);
    await assertStillServing();
  });

  it('a second SETTINGS is H3_FRAME_UNEXPECTED', async () => {
    const code = await violation((c) => c.write(CLIENT_CONTROL, Buffer.concat([controlStream, settings])));
    assert.equal(code, H3.FRAME_UNEXPECTED);
    await assertStillServing();
  });

  it('a control stream without SETTINGS first is H3_MISSING_SETTINGS', async () => {
    const code = await violation((c) =>
      c.write(CLIENT_CONTROL, Buffer.concat([Buffer.from([0x00]), encodeFrame(Frame.GOAWAY, Buffer.from([0]))])),
    );
    assert.equal(code, H3.MISSING_SETTINGS);
    await assertStillServing();
  });

  it('closing the control stream is H3_CLOSED_CRITICAL_STREAM', async () => {
    const code = await violation((c) => c.write(CLIENT_CONTROL, controlStream, true));
    assert.equal(code, H3.CLOSED_CRITICAL_STREAM);
  });

  it('a dynamic-table reference is QPACK_DECOMPRESSION_FAILED', async () => {
    // Required Insert Count 1 (encoded 2), base 0, then an indexed dynamic entry.
    const block = Buffer.from([0x02, 0x00, 0x80]);
    const code = await violation((c) => {
      c.write(CLIENT_CONTROL, controlStream);
      c.write(0, encodeFrame(Frame.HEADERS, block), true);
    });
    assert.equal(code, H3.QPACK_DECOMPRESSION_FAILED);
    await assertStillServing();
  });

  it('accepts stream-type varints split across packets (a two-byte control type, a GREASE type)', async () => {
    const c = await RawQuicClient.connect(dp.port);
    try {
      // 0x4000 is a valid two-byte encoding of stream type 0 (control); send it one byte at a time.
      c.write(CLIENT_CONTROL, [0x40]);
      await new Promise((r) => setTimeout(r, 50));
      c.write(CLIENT_CONTROL, Buffer.concat([Buffer.from([0x00]), settings]));
      // A reserved stream type 0x1f * 1000 + 0x21 (four-byte varint), also split: ignored.
      const grease = Buffer.from([0x80, 0x00, 0x79, 0x39]);
      c.write(6, grease.subarray(0, 2));
      await new Promise((r) => setTimeout(r, 50));
      c.write(6, Buffer.concat([grease.subarray(2), Buffer.from('ignored payload')]));
      c.write(0, encodeFrame(Frame.HEADERS, GET), true);
      assert.equal(await c.waitStream(0), 'fin');
      assert.deepEqual(responseFields(Buffer.concat(c.received.get(0) ?? []))[0], [':status', '200']);
      assert.equal(c.closeInfo, null, 'the connection stays open');
    } finally {
      await c.close();
    }
  });

  it('a request with an uppercase header name gets 400 and the connection lives on', async () => {
    const c = await RawQuicClient.connect(dp.port);
    try {
      c.write(CLIENT_CONTROL, controlStream);
      const bad = encodeFieldSection([
        [':method', 'GET'],
        [':scheme', 'https'],
        [':authority', 'only.example'],
        [':path', '/'],
        ['X-Upper', '1'],
      ]);
      c.write(0, encodeFrame(Frame.HEADERS, bad), true);
      assert.equal(await c.waitStream(0), 'fin');
      assert.deepEqual(responseFields(Buffer.concat(c.received.get(0) ?? []))[0], [':status', '400']);
      c.write(4, encodeFrame(Frame.HEADERS, GET), true);
      assert.equal(await c.waitStream(4), 'fin');
      assert.equal(c.closeInfo, null);
    } finally {
      await c.close();
    }
  });

  it('a body shorter than its content-length gets 400, a longer one too', async () => {
    for (const [declared, sent] of [
      [10, 3],
      [2, 5],
    ]) {
      const c = await RawQuicClient.connect(dp.port);
      try {
        c.write(CLIENT_CONTROL, controlStream);
        const post = encodeFieldSection([
          [':method', 'POST'],
          [':scheme', 'https'],
          [':authority', 'only.example'],
          [':path', '/echo'],
          ['content-length', String(declared)],
        ]);
        c.write(
          0,
          Buffer.concat([encodeFrame(Frame.HEADERS, post), encodeFrame(Frame.DATA, Buffer.alloc(sent, 0x61))]),
          true,
        );
        assert.equal(await c.waitStream(0), 'fin', `declared ${declared}, sent ${sent}`);
        assert.deepEqual(responseFields(Buffer.concat(c.received.get(0) ?? []))[0], [':status', '400']);
      } finally {
        await c.close();
      }
    }
    await assertStillServing();
  });

  it('survives garbage, truncated, unknown-version, 0-RTT and Handshake datagrams', async () => {
    const sock = dgram.createSocket('udp4');
    const replies: Buffer[] = [];
    sock.on('message', (m) => replies.push(m));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const send = (b: Buffer) => new Promise<void>((r) => sock.send(b, dp.port, '127.0.0.1', () => r()));
    const longHeader = (firstByte: number, version: number, size: number) => {
      const b = Buffer.alloc(size, 0x5a);
      b[0] = firstByte;
      b.writeUInt32BE(version, 1);
      b[5] = 8; // dcid length
      b[14] = 8; // scid length
      return b;
    };
    try {
      await send(Buffer.alloc(0));
      await send(Buffer.from([0xff]));
      await send(Buffer.alloc(1500, 0xff));
      await send(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
      await send(longHeader(0xc0, 1, 40)); // truncated Initial
      await send(longHeader(0xd0, 1, 1200)); // 0-RTT for an unknown connection
      await send(longHeader(0xe0, 1, 1200)); // Handshake for an unknown connection
      await send(longHeader(0x40, 1, 60)); // short header, unknown id
      await send(longHeader(0xc0, 0x1a2a3a4a, 1200)); // unknown version: expect Version Negotiation
      const deadline = Date.now() + 3000;
      while (replies.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(replies.length, 1, 'only the unknown version is answered');
      const vn = replies[0];
      assert.equal(vn[0] & 0x80, 0x80, 'long header');
      assert.equal(vn.readUInt32BE(1), 0, 'version 0 marks Version Negotiation');
      const versions: number[] = [];
      for (let off = 7 + vn[5] + vn[6 + vn[5]]; off + 4 <= vn.length; off += 4) versions.push(vn.readUInt32BE(off));
      assert.ok(versions.includes(1), `QUIC v1 offered (${versions})`);
    } finally {
      sock.close();
    }
    await assertStillServing();
  });
});
