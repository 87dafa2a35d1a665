import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { generateSelfSigned } from '../cli/certs.js';
import type { BackendStates, Snapshot } from '../proto/gen/spooky/v1/control.js';
import type { DataPlaneOutcome } from './api/types.js';
import { ControlPlane } from './control-plane.js';
import { AppliedStore } from './store/applied-store.js';
import type { SnapshotServer } from './xds/server.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The SnapshotServer surface the control plane uses, with one data plane whose answers we script. */
class FakeServer {
  current: Snapshot | null = null;
  states: BackendStates | null = null;
  pushed: Snapshot[] = [];
  hello: (served: number) => void = () => {};
  /** What push resolves with; 'never' models a control plane killed during the push. */
  answer: 'ack' | 'never' = 'ack';
  onHello(hook: (served: number) => void): void {
    this.hello = hook;
  }
  admit: (hello: { nodeId: string; listenAddress: string; listenPort: number }) => string | null = () => null;
  admitWith(check: FakeServer['admit']): void {
    this.admit = check;
  }
  setCurrent(s: Snapshot): void {
    this.current = s;
  }
  setBackendStates(s: BackendStates): void {
    this.states = s;
  }
  dataplanes() {
    return [];
  }
  departedDataplanes() {
    return [];
  }
  offerCurrentToStragglers(): void {}
  push(s: Snapshot): Promise<DataPlaneOutcome[]> {
    this.pushed.push(s);
    if (this.answer === 'never') return new Promise(() => {});
    return Promise.resolve([{ node_id: 'dp', result: 'ack' }]);
  }
}

function setup(stateDir: string) {
  const server = new FakeServer();
  const store = new AppliedStore(stateDir);
  store.init();
  const cp = new ControlPlane({ store, server: server as unknown as SnapshotServer, log: pino({ level: 'silent' }) });
  return { cp, server, store };
}

function yaml(dir: string, backendPort: number): string {
  const cert = generateSelfSigned(join(dir, 'certs'));
  return `listen: { address: 127.0.0.1, port: 0, tls: { cert: ${cert.certFile}, key: ${cert.keyFile} } }
upstream:
  web:
    backends: [{ id: a, address: "127.0.0.1:${backendPort}" }]
`;
}

describe('ControlPlane versions only grow', () => {
  it('a version offered before a crash (never committed) is not reused after the restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spooky-cp-'));
    dirs.push(dir);
    const first = setup(dir);
    assert.equal((await first.cp.applyYaml(yaml(dir, 1001), 'test', dir)).kind, 'applied');
    first.server.answer = 'never';
    void first.cp.applyYaml(yaml(dir, 1002), 'test', dir);
    await new Promise((r) => setImmediate(r));
    const offered = first.server.pushed.at(-1)?.version;
    assert.equal(offered, 2, 'the second apply was pushed');
    first.cp.stop();
    // kill -9 here: a data plane may serve version 2; the disk has version 1 as current.

    const second = setup(dir);
    // Version 1 as it was, or (the certificate yaml() rewrote since) re-read as a new version:
    // never 2, which a data plane may serve with other content.
    const restored = second.cp.restore()?.version ?? 0;
    assert.ok(restored === 1 || restored > 2, `restored as version ${restored}`);
    const r = await second.cp.applyYaml(yaml(dir, 1003), 'test', dir);
    assert.equal(r.kind, 'applied');
    assert.ok(r.kind === 'applied' && r.body.version > 2, `new content gets a new version, got ${JSON.stringify(r)}`);
    second.cp.stop();
  });

  it('a data plane ahead of a restarted control plane gets the applied config as a newer version', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spooky-cp-'));
    dirs.push(dir);
    const { cp, server } = setup(dir);
    assert.equal((await cp.applyYaml(yaml(dir, 1001), 'test', dir)).kind, 'applied');
    server.hello(7); // e.g. a restored state_dir: the data plane serves 7
    assert.ok((server.current?.version ?? 0) > 7, 'the data plane is offered a version above its own');
    assert.equal(cp.dataplanes().current_version, server.current?.version);
    const r = await cp.applyYaml(yaml(dir, 1002), 'test', dir);
    assert.ok(r.kind === 'applied' && r.body.version > 8, JSON.stringify(r));
    server.hello(3); // one behind is simply caught up: nothing re-numbered
    assert.equal(server.current?.version, r.kind === 'applied' ? r.body.version : -1);
    // Past 2^52 versions could repeat (doubles): such a hello is ignored, nothing is re-numbered.
    const before = server.current?.version;
    server.hello(2 ** 53 - 1);
    assert.equal(server.current?.version, before);
    const next = await cp.applyYaml(yaml(dir, 1003), 'test', dir);
    assert.ok(next.kind === 'applied' && next.body.version === (before ?? 0) + 1, JSON.stringify(next));
    cp.stop();
  });

  it('every apply sends the full backend-state table', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spooky-cp-'));
    dirs.push(dir);
    const { cp, server } = setup(dir);
    await cp.applyYaml(yaml(dir, 1001), 'test', dir);
    assert.equal(server.states?.full, true);
    assert.deepEqual(server.states?.states, [{ backendId: 'a', healthy: true, drained: false }]);
    cp.stop();
  });
});

describe('ControlPlane: what counts as unchanged', () => {
  it('the same YAML is not pushed again, unless a file it names changed (a certificate renewed in place)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spooky-cp-'));
    dirs.push(dir);
    const { cp, server } = setup(dir);
    const text = yaml(dir, 1001);
    assert.equal((await cp.applyYaml(text, 'test', dir)).kind, 'applied');
    const again = await cp.applyYaml(text, 'test', dir);
    assert.ok(again.kind === 'applied' && again.body.unchanged, JSON.stringify(again));
    assert.equal(server.pushed.length, 1);
    assert.equal(cp.validate(text).files_changed, undefined);
    // certbot-style renewal: new contents under the same paths, then `spooky apply` or SIGHUP.
    const renewed = generateSelfSigned(join(dir, 'certs'));
    // apply --dry-run says so rather than "no changes".
    assert.deepEqual([cp.validate(text).diff, cp.validate(text).files_changed], ['', true]);
    const r = await cp.applyYaml(text, 'test', dir);
    assert.ok(r.kind === 'applied' && !r.body.unchanged && r.body.version === 2, JSON.stringify(r));
    assert.equal(server.pushed.at(-1)?.listener?.certPem, readFileSync(renewed.certFile, 'utf8'));
    cp.stop();
  });

  it('reload re-reads the files of the applied config; rollback after a renewal still goes to the config before', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spooky-cp-'));
    dirs.push(dir);
    const { cp, server } = setup(dir);
    assert.equal((await cp.reload('test')).kind, 'nothing_applied');
    const older = yaml(dir, 1001);
    const text = yaml(dir, 1002);
    assert.equal((await cp.applyYaml(older, 'test', dir)).kind, 'applied');
    assert.equal((await cp.applyYaml(text, 'test', dir)).kind, 'applied');
    const same = await cp.reload('test');
    assert.ok(same.kind === 'applied' && same.body.unchanged, JSON.stringify(same));
    const renewed = generateSelfSigned(join(dir, 'certs'));
    const r = await cp.reload('test');
    assert.ok(r.kind === 'applied' && !r.body.unchanged, JSON.stringify(r));
    assert.equal(server.pushed.at(-1)?.listener?.certPem, readFileSync(renewed.certFile, 'utf8'));
    // The renewal did not push the config before out of `previous`.
    const back = await cp.rollback('test');
    assert.ok(back.kind === 'applied' && !back.body.unchanged, JSON.stringify(back));
    assert.match(String(server.pushed.at(-1)?.pools?.[0]?.backends?.[0]?.origin), /:1001$/);
    cp.stop();
  });

  it('a restart that finds the files renewed serves them under a new version', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spooky-cp-'));
    dirs.push(dir);
    const first = setup(dir);
    const text = yaml(dir, 1001);
    assert.equal((await first.cp.applyYaml(text, 'test', dir)).kind, 'applied');
    first.cp.stop();
    // Unchanged files: the same version (a data plane serving it from its cache is up to date).
    const again = setup(dir);
    assert.equal(again.cp.restore()?.version, 1);
    assert.equal(again.server.current?.version, 1);
    again.cp.stop();
    // Renewed while spooky-control was down: data planes serving version 1 must be offered more.
    const renewed = generateSelfSigned(join(dir, 'certs'));
    const second = setup(dir);
    assert.equal(second.cp.restore()?.version, 2, 'recorded as applied under the new version');
    assert.equal(second.server.current?.version, 2);
    assert.equal(second.server.current?.listener?.certPem, readFileSync(renewed.certFile, 'utf8'));
    second.cp.stop();
    // Not again at the next start: nothing changed since.
    const third = setup(dir);
    assert.equal(third.cp.restore()?.version, 2);
    assert.equal(third.server.current?.version, 2);
    third.cp.stop();
  });
});

describe('ControlPlane: who belongs (issue #17 item 2)', () => {
  it('admits data planes serving the config’s listener (or saying none), refuses others with the reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spooky-cp-'));
    dirs.push(dir);
    const { cp, server } = setup(dir);
    const hello = (listenAddress: string, listenPort: number) => ({ nodeId: 'edge-7:443', listenAddress, listenPort });
    assert.equal(server.admit(hello('10.0.0.1', 9)), null, 'no active config yet: everyone');
    assert.equal((await cp.applyYaml(yaml(dir, 1001), 'test', dir)).kind, 'applied');
    assert.equal(server.admit(hello('127.0.0.1', 0)), null);
    assert.equal(server.admit(hello('', 0)), null, 'a data plane from before the check says no listener');
    assert.match(
      String(server.admit(hello('127.0.0.1', 8443))),
      /^data plane edge-7:443 serves 127\.0\.0\.1 port 8443, this control plane's config listens on 127\.0\.0\.1 port 0/,
    );
    assert.match(String(server.admit(hello('0.0.0.0', 0))), /serves 0\.0\.0\.0 port 0/);
  });
});
