// The role-independent HTTP/3 rules (RFC 9114 §6.2, §7.2; RFC 9204 §4.2) on an in-memory QUIC
// connection: our control and QPACK streams, and what the peer may send on its own.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestHandler } from '../proxy/client-stream.js';
import { H3 } from './errors.js';
import { encodeFrame, encodeSettings, Frame, Setting } from './frames.js';
import { dataFrame, headersFrame, MemoryTransport } from './memory-transport.js';
import { H3ServerSession } from './server.js';
import { encodeVarint } from './varint.js';

/** Client-initiated unidirectional stream ids (RFC 9000 §2.1). */
const CONTROL = 2;
const ENCODER = 6;
const DECODER = 10;
const OTHER = 14;

const noRequests: RequestHandler = {
  onRequest: () => assert.fail('no request expected'),
  onRejected: () => assert.fail('no rejection expected'),
};

function setup() {
  const t = new MemoryTransport();
  const session = new H3ServerSession(t, noRequests, {
    maxFieldSectionSize: 8192,
    maxHeaderCount: 100,
    requestHeaderTimeoutMs: 60_000,
  });
  session.onEstablished();
  return { t, session };
}

const closeCode = (t: MemoryTransport): number | undefined => t.closed?.code;
const SETTINGS = encodeSettings([[Setting.MAX_FIELD_SECTION_SIZE, 4096]]);
const controlStream = (...frames: Uint8Array[]): Uint8Array => Buffer.concat([Uint8Array.of(0x00), ...frames]);
const goaway = (id: number): Uint8Array => encodeFrame(Frame.GOAWAY, encodeVarint(id));

test('on establishment the server opens its control stream with SETTINGS, and both QPACK streams', () => {
  const { t } = setup();
  const control = t.bytes(3);
  assert.equal(control[0], 0x00, 'control stream type');
  const frames = t.frames(3, 1);
  assert.equal(frames[0].type, Frame.SETTINGS);
  assert.deepEqual(
    [
      ...encodeSettings([
        [Setting.QPACK_MAX_TABLE_CAPACITY, 0],
        [Setting.QPACK_BLOCKED_STREAMS, 0],
        [Setting.MAX_FIELD_SECTION_SIZE, 8192],
      ]),
    ],
    [...control.subarray(1)],
  );
  assert.deepEqual([...t.bytes(7)], [0x02]);
  assert.deepEqual([...t.bytes(11)], [0x03]);
  assert.equal(t.finished(3) || t.finished(7) || t.finished(11), false, 'critical streams stay open');
});

test("the peer's SETTINGS are read; unknown frames on the control stream are ignored", () => {
  const { t, session } = setup();
  t.deliver(
    CONTROL,
    controlStream(SETTINGS, encodeFrame(0x21, Uint8Array.of(1, 2)), encodeFrame(0x3f, new Uint8Array(0))),
  );
  assert.equal(session.peerSettings?.get(Setting.MAX_FIELD_SECTION_SIZE), 4096);
  assert.equal(t.closed, null);
});

test('the control stream must start with SETTINGS (H3_MISSING_SETTINGS)', () => {
  const { t } = setup();
  t.deliver(CONTROL, controlStream(goaway(0)));
  assert.equal(closeCode(t), H3.MISSING_SETTINGS);
});

test('a second SETTINGS frame is H3_FRAME_UNEXPECTED; a bad one is H3_SETTINGS_ERROR', () => {
  const twice = setup();
  twice.t.deliver(CONTROL, controlStream(SETTINGS, SETTINGS));
  assert.equal(closeCode(twice.t), H3.FRAME_UNEXPECTED);
  for (const bad of [
    encodeSettings([
      [Setting.MAX_FIELD_SECTION_SIZE, 1],
      [Setting.MAX_FIELD_SECTION_SIZE, 2],
    ]),
    encodeSettings([[0x02, 0]]), // HTTP/2's SETTINGS_ENABLE_PUSH
  ]) {
    const { t } = setup();
    t.deliver(CONTROL, controlStream(bad));
    assert.equal(closeCode(t), H3.SETTINGS_ERROR);
  }
});

test('DATA, HEADERS, PUSH_PROMISE and reserved HTTP/2 frames on the control stream are H3_FRAME_UNEXPECTED', () => {
  const frames = [
    dataFrame('x'),
    headersFrame([['a', 'b']]),
    encodeFrame(Frame.PUSH_PROMISE, Uint8Array.of(0)),
    ...[0x02, 0x06, 0x08, 0x09].map((type) => encodeFrame(type, Uint8Array.of(0))),
  ];
  for (const frame of frames) {
    const { t } = setup();
    t.deliver(CONTROL, controlStream(SETTINGS, frame));
    assert.equal(closeCode(t), H3.FRAME_UNEXPECTED, `frame type 0x${frame[0].toString(16)}`);
  }
});

test('GOAWAY from the client: recorded; an increasing id is H3_ID_ERROR; a malformed one H3_FRAME_ERROR', () => {
  const { t, session } = setup();
  t.deliver(CONTROL, controlStream(SETTINGS, goaway(8)));
  assert.equal(session.peerGoawayId, 8);
  t.deliver(CONTROL, goaway(4));
  assert.equal(session.peerGoawayId, 4);
  assert.equal(t.closed, null);
  t.deliver(CONTROL, goaway(12));
  assert.equal(closeCode(t), H3.ID_ERROR);

  const bad = setup();
  bad.t.deliver(CONTROL, controlStream(SETTINGS, encodeFrame(Frame.GOAWAY, Uint8Array.of(4, 0))));
  assert.equal(closeCode(bad.t), H3.FRAME_ERROR);
});

test('MAX_PUSH_ID and CANCEL_PUSH from a client are accepted (we never push)', () => {
  const { t } = setup();
  t.deliver(
    CONTROL,
    controlStream(
      SETTINGS,
      encodeFrame(Frame.MAX_PUSH_ID, encodeVarint(10)),
      encodeFrame(Frame.CANCEL_PUSH, encodeVarint(1)),
    ),
  );
  assert.equal(t.closed, null);
});

test('closing or resetting a critical stream is H3_CLOSED_CRITICAL_STREAM', () => {
  for (const [id, type] of [
    [CONTROL, 0x00],
    [ENCODER, 0x02],
    [DECODER, 0x03],
  ]) {
    const fin = setup();
    fin.t.deliver(id, type === 0x00 ? controlStream(SETTINGS) : Uint8Array.of(type), true);
    assert.equal(closeCode(fin.t), H3.CLOSED_CRITICAL_STREAM, `FIN on stream type ${type}`);

    const reset = setup();
    reset.t.deliver(id, type === 0x00 ? controlStream(SETTINGS) : Uint8Array.of(type));
    reset.t.peerReset(id, H3.NO_ERROR);
    assert.equal(closeCode(reset.t), H3.CLOSED_CRITICAL_STREAM, `reset of stream type ${type}`);
  }
});

test('a second control or QPACK stream is H3_STREAM_CREATION_ERROR', () => {
  for (const type of [0x00, 0x02, 0x03]) {
    const { t } = setup();
    t.deliver(CONTROL, Uint8Array.of(type));
    t.deliver(OTHER, Uint8Array.of(type));
    assert.equal(closeCode(t), H3.STREAM_CREATION_ERROR, `type ${type}`);
  }
});

test('a push stream from a client is H3_STREAM_CREATION_ERROR', () => {
  const { t } = setup();
  t.deliver(OTHER, Uint8Array.of(0x01, 0x00));
  assert.equal(closeCode(t), H3.STREAM_CREATION_ERROR);
});

test('unknown stream types are stopped (H3_STREAM_CREATION_ERROR) and their FIN or reset is harmless', () => {
  const { t } = setup();
  t.deliver(OTHER, Buffer.concat([encodeVarint(0x21), Buffer.from('grease')]));
  assert.deepEqual(t.shutdownsOf(OTHER), ['read:0x103']);
  t.deliver(18, encodeVarint(0x54));
  t.peerReset(18, H3.NO_ERROR);
  t.deliver(22, new Uint8Array(0), true); // closed before its type: nothing to judge
  assert.equal(t.closed, null);
});

test('a stream type split across reads is reassembled', () => {
  const { t, session } = setup();
  // 0x00 (control) in its 8-byte varint form, one byte at a time.
  const type = Uint8Array.of(0xc0, 0, 0, 0, 0, 0, 0, 0);
  for (const b of type) t.deliver(CONTROL, Uint8Array.of(b));
  t.deliver(CONTROL, SETTINGS);
  assert.equal(session.peerSettings?.get(Setting.MAX_FIELD_SECTION_SIZE), 4096);
  assert.equal(t.closed, null);
});

test('the encoder stream may only set a zero table capacity (H3_QPACK_ENCODER_STREAM_ERROR otherwise)', () => {
  const ok = setup();
  ok.t.deliver(ENCODER, Uint8Array.of(0x02, 0x20, 0x20));
  ok.t.deliver(DECODER, Uint8Array.of(0x03, 0x40, 0x01)); // cancellations: nothing to do
  assert.equal(ok.t.closed, null);
  const bad = setup();
  bad.t.deliver(ENCODER, Uint8Array.of(0x02, 0x3f, 0xe1, 0x1f)); // capacity 4096
  assert.equal(closeCode(bad.t), H3.QPACK_ENCODER_STREAM_ERROR);
});

test('an oversized frame on the control stream closes the connection instead of stopping the stream', () => {
  const { t } = setup();
  const big = encodeFrame(Frame.SETTINGS, new Uint8Array(20_000));
  t.deliver(CONTROL, controlStream(big));
  // RFC 9114 §6.2.1: the receiver must not ask the peer to close its control stream.
  assert.deepEqual(t.shutdownsOf(CONTROL), []);
  assert.equal(closeCode(t), H3.EXCESSIVE_LOAD);
});

test('after the connection failed nothing more is read or judged', () => {
  const { t, session } = setup();
  t.deliver(CONTROL, controlStream(goaway(0)));
  assert.equal(closeCode(t), H3.MISSING_SETTINGS);
  t.deliver(OTHER, Uint8Array.of(0x00));
  assert.equal(closeCode(t), H3.MISSING_SETTINGS, 'the first error stays the reason');
  assert.equal(session.closed, true);
});
