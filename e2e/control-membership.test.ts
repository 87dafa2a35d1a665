/**
 * Who belongs to a control plane (issue #17 item 2), with real spooky-control and
 * spooky-dataplane processes: two deployments on one host that share the default-like
 * control.socket path do not capture each other's data planes.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import {
  E2E_WORKERS,
  type RunningControl,
  type RunningDataplane,
  startControl,
  startDataplane,
  until,
} from './support/harness.js';
import { config, newSetup, spooky } from './support/pair.js';

/** A UDP port the OS just gave out and took back (for a listener whose port must differ from 0). */
async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('two deployments on one host with the same control.socket', () => {
  const running: Array<RunningControl | RunningDataplane> = [];
  let backend: DemoBackend;

  after(async () => {
    for (const p of running.reverse()) await p.stop();
    await backend?.close();
  });

  it('the second control plane refuses to start; the other deployment’s data plane is refused at hello, and says why', async () => {
    backend = await startDemoBackend('a');
    const pools = `  web:\n    backends: [{ id: a, address: "${backend.origin}" }]\n`;
    // Deployment A: listen port 0 (the OS picks); B: another port, the same socket path.
    const a = newSetup();
    writeFileSync(a.file, config(a, pools));
    const b = newSetup();
    const bPort = await freeUdpPort();
    const shared = join(a.dir, 'control.sock');
    const bConfig = config(b, pools, { port: bPort }).replace(join(b.dir, 'control.sock'), shared);
    writeFileSync(b.file, bConfig);

    const cpA = await startControl(a.file);
    running.push(cpA);
    const dpA = await startDataplane(config(a, pools), { file: a.file });
    running.push(dpA);

    await assert.rejects(startControl(b.file), (e: Error) => {
      assert.match(e.message, /exited with 1/);
      assert.match(
        e.message,
        /control\.sock is in use: another spooky-control \(pid \d+\) holds .*control\.sock\.lock/,
      );
      return true;
    });

    const dpB = await startDataplane(bConfig, { file: b.file });
    running.push(dpB);
    const refusal = await until(
      10_000,
      async () =>
        dpB.logs.find((o) => o.msg === 'the control plane refused this data plane; serving the last snapshot'),
      (o) => o !== undefined,
    );
    assert.equal(refusal?.level, 50, 'logged at error level');
    assert.match(
      String(refusal?.reason),
      new RegExp(`serves 127\\.0\\.0\\.1 port ${bPort}, this control plane's config listens on 127\\.0\\.0\\.1 port 0`),
    );
    assert.ok(
      cpA.logs.some((o) => o.msg === 'refused a data plane that does not belong to this control plane'),
      'the control plane logs it too',
    );

    // A's control plane lists only its own data plane(s), and an apply there is ACKed by them.
    const listed = JSON.parse((await spooky(a, cpA, 'dataplanes', '--json')).stdout) as {
      dataplanes: Array<{ node_id: string }>;
    };
    assert.equal(listed.dataplanes.length, Number(E2E_WORKERS));
    assert.ok(
      listed.dataplanes.every((d) => d.node_id.includes(`:${dpA.port}`)),
      JSON.stringify(listed),
    );
    const next = join(a.dir, 'next.yaml');
    writeFileSync(next, config(a, pools.replace('id: a', 'id: a2')));
    const applied = await spooky(a, cpA, 'apply', next);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stderr, new RegExp(`${E2E_WORKERS} of ${E2E_WORKERS} data planes? ACKed`));
  });
});
