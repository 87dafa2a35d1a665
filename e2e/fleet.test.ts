/**
 * The fleet (issue #17 items 1 and 3) with real processes: one spooky-control listening on TCP
 * with mutual TLS (control.listen), five spooky-dataplane processes following it (control.server),
 * each on its own port with its own certificate from the fleet CA, whose CN is its node id.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateSelfSigned } from '../cli/certs.js';
import type { DataPlanesBody } from '../controlplane/api/types.js';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { FleetConfigs } from './support/fleet.js';
import {
  DIST,
  type RunningControl,
  type RunningDataplane,
  run,
  startControl,
  startDataplane,
  tempDir,
  until,
} from './support/harness.js';
import { type Setup, spooky } from './support/pair.js';
import { type IssuedCertificate, TestPki } from './support/pki.js';

describe('a fleet: one control plane, five data planes over TCP with mutual TLS', () => {
  const dir = tempDir('spooky-fleet-');
  const pki = new TestPki(join(dir, 'fleet'), 'Spooky test fleet CA');
  const listener = generateSelfSigned(join(dir, 'listener'));
  // The control plane's certificate names a DNS name only: data planes dial 127.0.0.1 and check
  // that name (control.server.tls.server_name).
  const fleet = new FleetConfigs(dir, pki, listener, { dns: ['control.spooky.test'] });
  const controlCert = fleet.controlCert;
  const s: Setup = { dir, file: join(dir, 'control.yaml'), certs: listener };
  const backends: Record<'a' | 'b', DemoBackend> = {} as never;
  const nodes = new Map<string, { dp: RunningDataplane; file: string; args: string[] }>();
  const others: RunningDataplane[] = [];
  let cp: RunningControl;

  const pools = (b: DemoBackend) => FleetConfigs.pool(b.origin);
  /** A data plane's own file: its listener (port 0: each its own), its certificate, the control plane. */
  const nodeConfig = (name: string, id: IssuedCertificate) =>
    fleet.config(pools(backends.a), fleet.nodeSection(name, id, 'control.spooky.test'));
  const startNode = async (name: string, id: IssuedCertificate, args: string[] = []) => {
    const file = join(dir, name, 'dataplane.yaml');
    const dp = await startDataplane(nodeConfig(name, id), { file, args });
    nodes.set(name, { dp, file, args });
    return dp;
  };
  const listed = async () => JSON.parse((await spooky(s, cp, 'dataplanes', '--json')).stdout) as DataPlanesBody;
  const connectedIds = (b: DataPlanesBody) =>
    b.dataplanes
      .filter((d) => d.connected)
      .map((d) => d.node_id)
      .sort();
  const apply = (name: string, yaml: string) => {
    const file = join(dir, name);
    writeFileSync(file, yaml);
    return spooky(s, cp, 'apply', file);
  };
  /** The backend that answers `GET /` through the data plane on `port` (one request, no retry). */
  const backendVia = async (port: number) => {
    const cl = await H3ClientSession.connect('127.0.0.1', port, { insecure: true, serverName: 'localhost' });
    try {
      const r = await cl.fetch({ path: '/', authority: 'localhost' });
      return r.status === 200 ? String(JSON.parse(r.body.toString()).backend) : `status ${r.status}`;
    } finally {
      await cl.close();
    }
  };
  const ALL = ['edge-1', 'edge-2', 'edge-3', 'edge-4/w0', 'edge-4/w1', 'edge-5'];

  before(async () => {
    backends.a = await startDemoBackend('a');
    backends.b = await startDemoBackend('b');
    writeFileSync(s.file, fleet.config(pools(backends.a), fleet.controlSection));
    cp = await startControl(s.file);
    const listening = cp.logs.find((o) => o.msg === 'listening');
    fleet.controlPort = Number(String(listening?.control_listen).split(':').pop());
    assert.ok(fleet.controlPort > 0, JSON.stringify(listening));
    // edge-1..3 and edge-4 pin their worker count on the command line (as systemd units may);
    // edge-5 takes it from snapshots, so a snapshot with another count is one only it refuses.
    for (const n of [1, 2, 3])
      await startNode(`edge-${n}`, pki.issue(`edge-${n}`, `/CN=edge-${n}/O=Spooky`), ['--workers', '1']);
    await startNode('edge-4', pki.issue('edge-4', '/CN=edge-4/O=Spooky'), ['--workers', '2']);
    await startNode('edge-5', pki.issue('edge-5', '/CN=edge-5/O=Spooky'));
    const body = await until(20_000, listed, (b) => connectedIds(b).join() === ALL.join());
    assert.deepEqual(connectedIds(body), ALL, 'every node connected under its certificate’s id');
  });

  after(async () => {
    for (const p of [...others, ...[...nodes.values()].map((n) => n.dp)]) await p.stop();
    await cp?.stop();
    await backends.a?.close();
    await backends.b?.close();
  });

  it('an apply is ACKed by all five and each serves it as soon as apply returns; node ids are the certificates’', async () => {
    const body = await listed();
    for (const d of body.dataplanes) assert.match(d.peer, /^127\.0\.0\.1:\d+$/, `${d.node_id} came over TCP`);
    for (const { dp } of nodes.values()) assert.equal(await backendVia(dp.port), 'a');

    const started = performance.now();
    const r = await apply('v-b.yaml', fleet.config(pools(backends.b), fleet.controlSection));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /\n6 of 6 data planes ACKed\n/);
    for (const id of ALL) assert.match(r.stderr, new RegExp(`\\n {2}${id}: ACK\\n`));
    // ACK means applied: every node serves the new config the moment apply returns.
    for (const [name, { dp }] of nodes) assert.equal(await backendVia(dp.port), 'b', `${name} serves the new pool`);
    process.stdout.write(`# apply to visible on all five: ${Math.round(performance.now() - started)} ms\n`);
    const after = await listed();
    assert.ok(after.dataplanes.every((d) => d.served_version === after.current_version));
  });

  it('a data plane without a certificate from the fleet CA is refused; so is a copy of a node’s certificate', async () => {
    const intruders = new TestPki(join(dir, 'intruders'), 'Someone else');
    const stranger = await startDataplane(nodeConfig('edge-9', intruders.issue('edge-9', '/CN=edge-9')), {
      file: join(dir, 'edge-9', 'dataplane.yaml'),
      args: ['--workers', '1'],
    });
    others.push(stranger);
    const twin = await startDataplane(
      nodeConfig('twin', { cert: join(dir, 'fleet', 'edge-1.pem'), key: join(dir, 'fleet', 'edge-1.key') }),
      {
        file: join(dir, 'twin', 'dataplane.yaml'),
        args: ['--workers', '1'],
      },
    );
    others.push(twin);
    const logged = (d: RunningDataplane | RunningControl, msg: RegExp) => d.logs.find((o) => msg.test(String(o.msg)));
    await until(
      15_000,
      async () => [
        logged(stranger, /control plane unreachable/),
        logged(cp, /refused a TLS connection on control\.listen/),
        logged(twin, /the control plane refused this data plane/),
      ],
      (found) => found.every((f) => f !== undefined),
    );
    assert.ok(logged(stranger, /control plane unreachable/), 'the stranger cannot get in');
    assert.ok(logged(cp, /refused a TLS connection on control\.listen/), 'the control plane says who knocked');
    const refusal = logged(twin, /the control plane refused this data plane/);
    assert.equal(refusal?.level, 50);
    assert.match(String(refusal?.reason), /node edge-1 is already connected from 127\.0\.0\.1:\d+/);
    assert.deepEqual(connectedIds(await listed()), ALL, 'neither joined');
    for (const o of others.splice(0)) await o.stop();

    // What validate says about a node whose files are missing (client_ca on the control side too).
    const broken = join(dir, 'broken.yaml');
    writeFileSync(
      broken,
      nodeConfig('broken', { cert: join(dir, 'missing.pem'), key: controlCert.key }).replace(
        '  server:',
        `  listen: { enabled: true, tls: { cert: ${controlCert.cert}, key: ${controlCert.key}, client_ca: ${join(dir, 'no-ca.pem')} } }\n  server:`,
      ),
    );
    const v = await run(process.execPath, [join(DIST, 'cli', 'main.js'), 'validate', broken]);
    assert.equal(v.code, 1, v.stdout + v.stderr);
    assert.match(v.stderr, /control\.server\.tls\.cert: .*missing\.pem/);
    assert.match(v.stderr, /control\.listen\.tls\.client_ca: .*no-ca\.pem/);
  });

  it('a data plane that NACKs is reported by its node id and apply exits 1; the others keep the active config', async () => {
    const r = await apply('v-workers.yaml', fleet.config(pools(backends.a), fleet.controlSection, 2));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\nedge-5: NACK: performance\.workers changed \(1 → 2 workers\); restart spooky-dataplane/);
    assert.match(r.stderr, /the previous config stays active\n$/);
    for (const [name, { dp }] of nodes)
      assert.equal(await backendVia(dp.port), 'b', `${name} still serves the active config`);
  });

  it('a killed data plane is reported not connected, and gets the current version when it comes back', async () => {
    const edge2 = nodes.get('edge-2');
    assert.ok(edge2);
    edge2.dp.proc.kill('SIGKILL');
    await edge2.dp.exited;
    const gone = await until(15_000, listed, (b) => b.dataplanes.some((d) => d.node_id === 'edge-2' && !d.connected));
    assert.ok(
      gone.dataplanes.some((d) => d.node_id === 'edge-2' && !d.connected),
      JSON.stringify(gone),
    );
    const table = await spooky(s, cp, 'dataplanes');
    assert.match(table.stdout, /\nedge-2\s+-\s+v\d+\s.*not connected since \d+s ago/);

    const r = await apply('v-a.yaml', fleet.config(pools(backends.a), fleet.controlSection));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /\n5 of 5 data planes ACKed \(1 not connected\)\n/);
    assert.match(r.stderr, /\n {2}edge-2: not connected \(gets it when it reconnects\)\n/);

    // Back with the same file and state_dir: it starts from its cached (older) snapshot and is
    // brought to the current version on connect.
    const dp = await startDataplane(
      nodeConfig('edge-2', { cert: join(dir, 'fleet', 'edge-2.pem'), key: join(dir, 'fleet', 'edge-2.key') }),
      {
        file: edge2.file,
        args: edge2.args,
      },
    );
    nodes.set('edge-2', { ...edge2, dp });
    const back = await until(15_000, listed, (b) =>
      b.dataplanes.some((d) => d.node_id === 'edge-2' && d.connected && d.served_version === b.current_version),
    );
    const node = back.dataplanes.find((d) => d.node_id === 'edge-2');
    assert.equal(node?.connected, true);
    assert.equal(node?.served_version, back.current_version);
    assert.equal(await backendVia(dp.port), 'a');
  });
});
