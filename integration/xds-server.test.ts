// Both planes in one process: the control plane's SnapshotServer against the data plane's real ControlClient.
// It lives outside controlplane/ and dataplane/ because neither plane may import the other.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
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
function dataplane(socketPath: string, nodeId: string, render: () => Promise<string>) {
  let inFlight = 0;
  const client = new ControlClient({
    socketPath,
    nodeId,
    build: 'test',
    log,
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
