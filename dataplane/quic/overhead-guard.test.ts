import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OVERHEAD_BASE_BYTES, OVERHEAD_WINDOW_MS, OverheadGuard } from './overhead-guard.js';

const DATAGRAM = 1200;

test('a flood of datagrams without stream data is cut once past the base allowance', () => {
  const g = new OverheadGuard(() => 1);
  let n = 0;
  while (g.onReceived(DATAGRAM) && n < 10_000) n++;
  assert.ok(n * DATAGRAM > OVERHEAD_BASE_BYTES, `cut after ${n * DATAGRAM} bytes`);
  assert.ok(n * DATAGRAM < OVERHEAD_BASE_BYTES + 128 * 1024, `cut soon after the allowance (${n * DATAGRAM})`);
});

test('uploads (stream data) and downloads (ACKs for what we send) stay within the allowance', () => {
  let t = 0;
  const clock = () => t;
  const up = new OverheadGuard(clock);
  for (let i = 0; i < 100_000; i++, t += 0.1) {
    up.onStreamData(DATAGRAM - 40);
    assert.ok(up.onReceived(DATAGRAM), `upload datagram ${i}`);
  }
  const down = new OverheadGuard(clock);
  for (let i = 0; i < 100_000; i++, t += 0.1) {
    down.onSent(2 * 1350);
    assert.ok(down.onReceived(60), `ACK ${i}`); // one small ACK per two packets sent
  }
  // Many small requests: ~100 bytes of HEADERS in ~160-byte datagrams, 1 KiB answers.
  const small = new OverheadGuard(clock);
  for (let i = 0; i < 100_000; i++, t += 0.1) {
    small.onStreamData(100);
    small.onSent(1100);
    assert.ok(small.onReceived(160), `request ${i}`);
  }
});

test('stream data quiche holds unread (a paused upload) counts as stream data up to the flow-control window', () => {
  const WINDOW = 10_000_000;
  const g = new OverheadGuard(() => 0, WINDOW);
  // The whole window arrives while the application is paused: nothing read yet.
  for (let i = 0; i < WINDOW / DATAGRAM; i++) assert.ok(g.onReceived(DATAGRAM), `datagram ${i}`);
  // Past the window plus the base, it can no longer be unread stream data.
  let n = 0;
  while (g.onReceived(DATAGRAM) && n < 10_000) n++;
  assert.ok(n * DATAGRAM <= OVERHEAD_BASE_BYTES + 128 * 1024, `cut ${n * DATAGRAM} bytes past the window`);
});

test('the allowance starts over each window', () => {
  let t = 0;
  const g = new OverheadGuard(() => t);
  // Just under the base allowance per window, for many windows: never cut.
  for (let w = 0; w < 5; w++) {
    for (let i = 0; i < (OVERHEAD_BASE_BYTES * 0.9) / DATAGRAM; i++) assert.ok(g.onReceived(DATAGRAM), `window ${w}`);
    t += OVERHEAD_WINDOW_MS;
  }
});
