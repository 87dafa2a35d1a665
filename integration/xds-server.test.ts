// Both planes in one process: the control plane's SnapshotServer against the data plane's real ControlClient.
// It lives outside controlplane/ and dataplane/ because neither plane may import the other.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { DEPARTED_TTL_MS, SnapshotServer } from '../controlplane/xds/server.js';
import { ControlClient, type ControlTarget } from '../dataplane/control/client.js';
import { type IssuedCertificate, TestPki } from '../e2e/support/pki.js';
import { ControlPlaneClient, Snapshot } from '../proto/gen/spooky/v1/control.js';

const dir = mkdtempSync(join(tmpdir(), 'spooky-xds-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A real ControlClient (the data plane's end) whose metrics text and answers the test controls. */
function dataplane(
  target: string | ControlTarget,
  nodeId: string,
  render: () => Promise<string>,
  opts: { listenPort?: number; log?: pino.Logger; servedVersion?: () => number } = {},
) {
  let inFlight = 0;
  const client = new ControlClient({
    target: typeof target === 'string' ? { socketPath: target } : target,
    nodeId,
    build: 'test',
    listen: { address: '0.0.0.0', port: opts.listenPort ?? 443 },
    log: opts.log ?? log,
    servedVersion: opts.servedVersion ?? (() => 0),
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
      await assert.rejects(second.start(), /d\.sock is in use: another spooky-control \(pid \d+\) holds/);
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
    // The lock of a process that is gone (a killed predecessor) is replaced too, and so is one
    // whose pid is in use again by another process: PID 1 of a restarted container finds the
    // lock of the PID 1 before it (same pid, another start time). Ours stands in for that pid.
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    for (const owner of ['2147483646', `${process.pid} 1 ${boot}`, `1 0 ${boot}`]) {
      writeFileSync(`${stale}.lock`, `${owner}\n`);
      const third = new SnapshotServer(stale, log);
      try {
        await third.start();
        assert.match(readFileSync(`${stale}.lock`, 'utf8'), new RegExp(`^${process.pid} \\d+ ${boot}\n$`));
      } finally {
        await third.stop();
      }
      assert.equal(existsSync(`${stale}.lock`), false, 'released at stop');
    }
  });

  it('two control planes starting in the same instant on one socket: exactly one gets it', async () => {
    const socket = join(dir, 'f.sock');
    const a = new SnapshotServer(socket, log);
    const b = new SnapshotServer(socket, log);
    try {
      // Without the lock both pass "nobody listens" before either binds, and both bind.
      const results = await Promise.allSettled([a.start(), b.start()]);
      assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
      const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      assert.match(String(refused.reason), /f\.sock is in use: another spooky-control/);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

describe('remote data planes over TCP with mutual TLS (issue #17 item 1)', () => {
  const pki = new TestPki(join(dir, 'fleet'), 'Spooky test fleet CA');
  const read = (f: string) => readFileSync(f, 'utf8');
  const controlCert = pki.issue('control', '/CN=spooky-control', { dns: ['control.spooky.test'], ip: ['127.0.0.1'] });
  const listenOn = () => ({
    address: '127.0.0.1',
    port: 0,
    certPem: read(controlCert.cert),
    keyPem: read(controlCert.key),
    clientCaPem: read(pki.ca),
  });
  const remote = (port: number, id: IssuedCertificate, serverName?: string, ca = pki.ca): ControlTarget => ({
    address: '127.0.0.1',
    port,
    caPem: read(ca),
    certPem: read(id.cert),
    keyPem: read(id.key),
    serverName,
  });

  it('the node id is the certificate’s CN plus the worker suffix; a self-declared id is not', async () => {
    const cpLog = capturedLog();
    const server = new SnapshotServer(join(dir, 'r1.sock'), cpLog.log);
    await server.start();
    const port = await server.listenTcp(listenOn());
    const edge = pki.issue('edge-1', '/CN=edge-1/O=Spooky');
    const byIp = pki.issue('edge-ip', '/CN=edge-ip');
    const sanOnly = pki.issue('san-only', '/O=Spooky', { dns: ['edge-san.example'] });
    const local = dataplane(join(dir, 'r1.sock'), 'local-host:443', async () => '');
    // By server_name (the control plane's DNS name), and by the IP its certificate also carries.
    const a = dataplane(remote(port, edge, 'control.spooky.test'), 'someone-else:443/w1', async () => '');
    const b = dataplane(remote(port, byIp), 'whatever', async () => '');
    const noCnLog = capturedLog();
    const c = dataplane(remote(port, sanOnly), 'edge-san.example', async () => '', { log: noCnLog.log });
    try {
      await connected(server, 3);
      for (let i = 0; i < 100 && !noCnLog.lines.some((l) => /refused/.test(String(l.msg))); i++) await sleep(20);
      const byId = new Map(server.dataplanes().map((d) => [d.nodeId, d]));
      assert.deepEqual([...byId.keys()].sort(), ['edge-1/w1', 'edge-ip', 'local-host:443']);
      const noCn = noCnLog.lines.find((l) => /refused/.test(String(l.msg)));
      assert.match(String(noCn?.reason), /no usable node id: give it a subject CN/, 'a certificate without a CN');
      assert.equal(byId.get('edge-1/w1')?.certId, 'edge-1');
      assert.match(String(byId.get('edge-1/w1')?.peer), /^127\.0\.0\.1:\d+$/);
      assert.equal(byId.get('local-host:443')?.certId, null, 'the unix socket keeps self-declared ids');
      assert.equal(byId.get('local-host:443')?.peer, 'unix');
    } finally {
      for (const d of [local, a, b, c]) d.client.stop();
      await server.stop();
    }
  });

  it('refuses a certificate from another CA, no certificate, and a second connection with a certificate in use', async () => {
    const cpLog = capturedLog();
    const server = new SnapshotServer(join(dir, 'r2.sock'), cpLog.log);
    await server.start();
    const port = await server.listenTcp(listenOn());
    const edge = pki.issue('edge-2', '/CN=edge-2');
    const intruderCa = new TestPki(join(dir, 'intruders'), 'Someone else');
    const intruder = intruderCa.issue('edge-9', '/CN=edge-9');
    const member = dataplane(remote(port, edge), 'edge-2', async () => '');
    const strangerLog = capturedLog();
    const stranger = dataplane(remote(port, intruder), 'edge-9', async () => '', { log: strangerLog.log });
    // A data plane that does not trust the control plane's certificate (another CA).
    const distrustLog = capturedLog();
    const distrust = dataplane(remote(port, edge, undefined, intruderCa.ca), 'edge-2', async () => '', {
      log: distrustLog.log,
    });
    const twinLog = capturedLog();
    const twin = dataplane(remote(port, edge), 'edge-2', async () => '', { log: twinLog.log });
    // No client certificate at all: a bare gRPC client that trusts the control plane.
    const bare = new ControlPlaneClient(`127.0.0.1:${port}`, grpc.credentials.createSsl(readFileSync(pki.ca)), {
      'grpc.ssl_target_name_override': 'control.spooky.test',
    });
    const bareCall = bare.stream();
    const bareError = new Promise<grpc.ServiceError>((resolve) => bareCall.on('error', resolve));
    bareCall.write({
      message: {
        $case: 'hello',
        value: { nodeId: 'bare', pid: 1, build: 't', servedVersion: 0, listenAddress: '', listenPort: 0 },
      },
    });
    try {
      await connected(server, 1);
      const has = (lines: Array<Record<string, unknown>>, re: RegExp) => lines.some((l) => re.test(String(l.msg)));
      const settled = () =>
        has(twinLog.lines, /refused/) && has(strangerLog.lines, /why/) && has(distrustLog.lines, /why/);
      for (let i = 0; i < 200 && !settled(); i++) await sleep(20);
      const e = await bareError;
      assert.equal(e.code, grpc.status.UNAVAILABLE, e.message);
      assert.deepEqual(
        server.dataplanes().map((d) => d.nodeId),
        ['edge-2'],
      );
      const twinRefusal = twinLog.lines.find((l) => /refused/.test(String(l.msg)));
      assert.equal(twinRefusal?.level, 50);
      assert.match(
        String(twinRefusal?.reason),
        /node edge-2 is already connected from 127\.0\.0\.1:\d+: each data plane needs its own certificate/,
      );
      assert.ok(has(strangerLog.lines, /control plane unreachable/), 'the stranger cannot get in');
      // What grpc-js reports ("Failed to connect") is not why: the data plane finds out and says so.
      const why = (lines: Array<Record<string, unknown>>) =>
        String(lines.find((l) => l.msg === 'why the control plane cannot be reached')?.diagnosis);
      assert.match(why(strangerLog.lines), /it does not accept this data plane's certificate/);
      assert.match(why(distrustLog.lines), /the control plane's certificate or the connection failed: .*certificate/);
      const knocks = cpLog.lines.filter((l) => /refused a TLS connection on control\.listen/.test(String(l.msg)));
      assert.ok(knocks.length >= 2, `the control plane says who knocked: ${JSON.stringify(cpLog.lines)}`);
      assert.match(String(knocks[0].peer), /^127\.0\.0\.1:\d+$/);
    } finally {
      for (const d of [member, stranger, twin, distrust]) d.client.stop();
      bareCall.cancel();
      bare.close();
      await server.stop();
    }
  });

  it('a certified node that left is reported not connected, and gets the current version when it returns', async () => {
    const server = new SnapshotServer(join(dir, 'r3.sock'), log);
    await server.start();
    const port = await server.listenTcp(listenOn());
    const edge = pki.issue('edge-3', '/CN=edge-3');
    let first = dataplane(remote(port, edge), 'edge-3', async () => '');
    try {
      await connected(server, 1);
      first.client.stop();
      for (let i = 0; i < 100 && server.dataplanes().length > 0; i++) await sleep(20);
      assert.deepEqual(
        server.departedDataplanes().map((d) => d.info.nodeId),
        ['edge-3'],
      );
      const snapshot = Snapshot.fromPartial({ version: 7, nonce: 'n7' });
      server.setCurrent(snapshot);
      assert.deepEqual(await server.push(snapshot, 1000), [{ node_id: 'edge-3', result: 'not_connected' }]);
      first = dataplane(remote(port, edge), 'edge-3', async () => '');
      for (let i = 0; i < 100 && server.dataplanes()[0]?.lastAck?.version !== 7; i++) await sleep(20);
      assert.equal(server.dataplanes()[0]?.lastAck?.version, 7, 'caught up on reconnect');
      assert.deepEqual(server.departedDataplanes(), []);
      // One that stays away is forgotten after DEPARTED_TTL_MS (ids that never return).
      first.client.stop();
      for (let i = 0; i < 100 && server.dataplanes().length > 0; i++) await sleep(20);
      assert.equal(server.departedDataplanes().length, 1);
      assert.deepEqual(server.departedDataplanes(Date.now() + DEPARTED_TTL_MS), []);
      assert.deepEqual(await server.push(Snapshot.fromPartial({ version: 8, nonce: 'n8' }), 1000), []);
    } finally {
      first.client.stop();
      await server.stop();
    }
  });

  it('after an apply, a data plane that connected during the push is offered the new version', async () => {
    const server = new SnapshotServer(join(dir, 'r4.sock'), log);
    await server.start();
    const port = await server.listenTcp(listenOn());
    server.setCurrent(Snapshot.fromPartial({ version: 1, nonce: 'n1' }));
    // It connects while version 2 is being pushed to the others: it is caught up to 1.
    const late = dataplane(remote(port, pki.issue('edge-4', '/CN=edge-4')), 'edge-4', async () => '');
    try {
      for (let i = 0; i < 100 && server.dataplanes()[0]?.lastAck?.version !== 1; i++) await sleep(20);
      assert.equal(server.dataplanes()[0]?.lastAck?.version, 1);
      server.setCurrent(Snapshot.fromPartial({ version: 2, nonce: 'n2' }));
      server.offerCurrentToStragglers();
      for (let i = 0; i < 100 && server.dataplanes()[0]?.lastAck?.version !== 2; i++) await sleep(20);
      assert.equal(server.dataplanes()[0]?.servedVersion, 2);
    } finally {
      late.client.stop();
      await server.stop();
    }
  });
});
