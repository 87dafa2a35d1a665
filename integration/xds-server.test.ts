// Both planes in one process: the control plane's SnapshotServer against the data plane's real ControlClient.
// It lives outside controlplane/ and dataplane/ because neither plane may import the other.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { SnapshotServer } from '../controlplane/xds/server.js';
import { ControlClient } from '../dataplane/control/client.js';

const dir = mkdtempSync(join(tmpdir(), 'spooky-xds-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A real ControlClient (the data plane's end) whose metrics text and answers the test controls. */
function dataplane(
  socketPath: string,
  nodeId: string,
  render: () => Promise<string>,
  opts: { listenPort?: number; log?: pino.Logger } = {},
) {
  let inFlight = 0;
  const client = new ControlClient({
    socketPath,
    nodeId,
    build: 'test',
    listen: { address: '0.0.0.0', port: opts.listenPort ?? 443 },
    log: opts.log ?? log,
    servedVersion: () => 0,
    onSnapshot: () => ({ ok: true }),
    onBackendStates: () => {},
    stats: () => ({
      activeConnections: 0,
      activeStreams: 0,
      requestsTotal: 0,
      requestsPerSecond: 0,
      backendInFlight: inFlight > 0 ? [{ backendId: 'a', inFlight }] : [],
      overload: undefined,
    }),
    metricsText: render,
    statsIntervalMs: 60_000,
  });
  client.start();
  return {
    client,
    setInFlight: (n: number) => {
      inFlight = n;
    },
  };
}

async function connected(server: SnapshotServer, n: number): Promise<void> {
  for (let i = 0; i < 100 && server.dataplanes().filter((d) => d.stats).length < n; i++) await sleep(20);
  assert.equal(server.dataplanes().filter((d) => d.stats).length, n);
}

describe('SnapshotServer.refreshStats', () => {
  it('gets each data plane’s figures rendered now, and keeps the last of one that does not answer', async () => {
    const socket = join(dir, 'a.sock');
    const server = new SnapshotServer(socket, log);
    await server.start();
    let count = 0;
    let stuck = false;
    const fresh = dataplane(socket, 'fresh', async () => `spooky_requests_total ${++count}\n`);
    // Answers its first Stats (sent on connect), then never again.
    const slow = dataplane(socket, 'slow', () => (stuck ? new Promise<string>(() => {}) : Promise.resolve('slow 1\n')));
    try {
      await connected(server, 2);
      stuck = true;
      const text = (node: string) => server.dataplanes().find((d) => d.nodeId === node)?.stats?.metricsText;
      const before = count;
      fresh.setInFlight(2);
      const started = performance.now();
      await server.refreshStats(300);
      assert.ok(performance.now() - started >= 250, 'waited for the data plane that did not answer');
      assert.equal(text('fresh'), `spooky_requests_total ${before + 1}\n`);
      assert.deepEqual(server.dataplanes().find((d) => d.nodeId === 'fresh')?.stats?.backendInFlight, [
        { backendId: 'a', inFlight: 2 },
      ]);
      assert.equal(text('slow'), 'slow 1\n', 'the last text of the silent data plane');

      // Only the answering data plane: done as soon as it answered, every time anew.
      slow.client.stop();
      for (let i = 0; i < 100 && server.dataplanes().length > 1; i++) await sleep(20);
      await server.refreshStats(10_000);
      assert.equal(text('fresh'), `spooky_requests_total ${before + 2}\n`);
    } finally {
      fresh.client.stop();
      slow.client.stop();
      await server.stop();
    }
  });

  it('resolves at once without data planes', async () => {
    const server = new SnapshotServer(join(dir, 'b.sock'), log);
    await server.start();
    try {
      await server.refreshStats(10_000);
    } finally {
      await server.stop();
    }
  });
});

/** A logger whose lines (parsed) the test reads. */
function capturedLog(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (l: string) => lines.push(JSON.parse(l)) });
  return { log, lines };
}

describe('who belongs (issue #17 item 2)', () => {
  it('a data plane serving another listener is refused at hello, with the reason on both sides', async () => {
    const socket = join(dir, 'c.sock');
    const cpLog = capturedLog();
    const server = new SnapshotServer(socket, cpLog.log);
    server.admitWith((hello) =>
      hello.listenPort === 443 ? null : `serves port ${hello.listenPort}, the config listens on 443`,
    );
    // The stranger dials before the control plane is up: its first failure is "unreachable"
    // (warn), and the refusal that follows must still reach the error level.
    const dpLog = capturedLog();
    const stranger = dataplane(socket, 'stranger', async () => '', { listenPort: 8443, log: dpLog.log });
    for (let i = 0; i < 100 && !dpLog.lines.some((l) => /unreachable/.test(String(l.msg))); i++) await sleep(20);
    await server.start();
    const member = dataplane(socket, 'member', async () => '');
    try {
      await connected(server, 1);
      const refusal = (lines: Array<Record<string, unknown>>) => lines.find((l) => /refused/.test(String(l.msg)));
      for (let i = 0; i < 100 && !refusal(dpLog.lines); i++) await sleep(20);
      assert.deepEqual(
        server.dataplanes().map((d) => d.nodeId),
        ['member'],
        'only the data plane serving the configured listener joined',
      );
      const theirs = refusal(dpLog.lines);
      assert.equal(theirs?.level, 50, 'the data plane logs the refusal at error level');
      assert.match(String(theirs?.reason), /serves port 8443, the config listens on 443/);
      const ours = refusal(cpLog.lines);
      assert.equal(ours?.node, 'stranger');
      assert.match(String(ours?.reason), /serves port 8443/);
      // It asks again every few hundred ms here: later refusals go to debug on both sides.
      for (let i = 0; i < 100 && dpLog.lines.filter((l) => /refused/.test(String(l.msg))).length < 3; i++)
        await sleep(20);
      assert.equal(dpLog.lines.filter((l) => /refused/.test(String(l.msg)) && l.level === 50).length, 1);
      assert.equal(cpLog.lines.filter((l) => /refused/.test(String(l.msg)) && l.level === 40).length, 1);
    } finally {
      stranger.client.stop();
      member.client.stop();
      await server.stop();
    }
  });

  it('a second control plane does not take over a socket another one serves; a stale file is replaced', async () => {
    const socket = join(dir, 'd.sock');
    const first = new SnapshotServer(socket, log);
    await first.start();
    const second = new SnapshotServer(socket, log);
    try {
      await assert.rejects(second.start(), /d\.sock is in use: another spooky-control listens on it/);
      const dp = dataplane(socket, 'still-first', async () => '');
      try {
        await connected(first, 1);
      } finally {
        dp.client.stop();
      }
    } finally {
      await first.stop();
      await second.stop();
    }
    const stale = join(dir, 'e.sock');
    writeFileSync(stale, '');
    const third = new SnapshotServer(stale, log);
    try {
      await third.start();
    } finally {
      await third.stop();
    }
  });
});
