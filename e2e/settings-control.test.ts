/**
 * Issue 13 item 4, the control plane's side: settings of spooky-control no other test exercised
 * (where the metrics and the control API listen, the API switched off, how a health check probes),
 * each set to a value whose effect shows from outside (model/config/settings-coverage.ts
 * names these cases).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import {
  type RunningControl,
  type RunningDataplane,
  startControl,
  startDataplane,
  tcpListens,
} from './support/harness.js';
import { config, newSetup, type Setup, spooky } from './support/pair.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A port nothing listens on right now (TCP, 127.0.0.1). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

describe('spooky-control settings that no other test exercised (issue 13 item 4)', { timeout: 120_000 }, () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => {});
  });

  /** spooky-control (alone) on the pair config of `s`, with `edit` applied to its text. */
  async function control(s: Setup, backend: DemoBackend, edit: (text: string) => string): Promise<RunningControl> {
    const text = edit(config(s, `  web:\n    backends: [{ id: a, address: "${backend.origin}" }]\n`));
    writeFileSync(s.file, text);
    const cp = await startControl(s.file);
    cleanup.push(() => cp.stop());
    return cp;
  }

  it('metrics on the address, port and path configured; the control API on its address', async () => {
    const backend = await startDemoBackend('a');
    cleanup.push(() => backend.close());
    const s = newSetup();
    // 127.0.0.2 is loopback too (all of 127/8 on Linux), and not where the defaults listen.
    const cp = await control(s, backend, (text) =>
      text
        .replace('control_api: { port: 0 }', 'control_api: { address: 127.0.0.2, port: 0 }')
        .replace('metrics: { enabled: false }', 'metrics: { enabled: true, address: 127.0.0.2, port: 0, path: /m }'),
    );
    const line = cp.logs.find((o) => o.msg === 'metrics listening');
    const metricsPort = Number(line?.port);
    const scrape = await fetch(`http://127.0.0.2:${metricsPort}/m`);
    assert.equal(scrape.status, 200);
    assert.match(await scrape.text(), /^spooky_/m);
    assert.equal((await fetch(`http://127.0.0.2:${metricsPort}/metrics`)).status, 404);
    assert.equal(await tcpListens('127.0.0.1', metricsPort), false, 'metrics also on 127.0.0.1');

    const api = new URL(cp.apiUrl);
    assert.equal(api.hostname, '127.0.0.2');
    assert.equal((await fetch(`${cp.apiUrl}/health`)).status, 200);
    assert.equal(await tcpListens('127.0.0.1', Number(api.port)), false, 'the control API also on 127.0.0.1');
  });

  it('control_api.enabled false: nothing listens on its port, data planes are still served', async () => {
    const backend = await startDemoBackend('a');
    cleanup.push(() => backend.close());
    const s = newSetup();
    const port = await freePort();
    const cp = await control(s, backend, (text) =>
      text.replace('control_api: { port: 0 }', `control_api: { enabled: false, port: ${port} }`),
    );
    assert.equal(cp.logs.find((o) => o.msg === 'listening')?.api, 'disabled');
    assert.equal(await tcpListens('127.0.0.1', port), false, 'the control API listens though disabled');
    const dp: RunningDataplane = await startDataplane(
      config(s, `  web:\n    backends: [{ id: a, address: "${backend.origin}" }]\n`).replace(
        'control_api: { port: 0 }',
        `control_api: { enabled: false, port: ${port} }`,
      ),
      { file: s.file },
    );
    cleanup.push(() => dp.stop());
    const client = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
    cleanup.push(() => client.close());
    assert.equal((await client.fetch({ path: '/x', authority: 'localhost' })).status, 200);
  });

  it('health_check method, expected_status and timeout_ms decide what a probe counts as healthy', async () => {
    // One h2c server per backend, each answering /health its own way.
    const servers: http2.Http2Server[] = [];
    const serve = async (health: (method: string, res: http2.Http2ServerResponse) => void) => {
      const server = http2.createServer((req, res) => {
        if (req.url === '/health') health(req.method, res);
        else res.end('ok');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      servers.push(server);
      cleanup.push(() => new Promise((r) => server.close(r)));
      return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    };
    const reply = (res: http2.Http2ServerResponse, status: number) => {
      res.writeHead(status);
      res.end();
    };
    const headOnly = await serve((method, res) => reply(res, method === 'HEAD' ? 200 : 405));
    const teapot = await serve((_, res) => reply(res, 418));
    // Two backends that answer after 600 ms: only their timeout_ms differs.
    const slow = await serve((_, res) => setTimeout(() => reply(res, 200), 600).unref());
    const patient = await serve((_, res) => setTimeout(() => reply(res, 200), 600).unref());
    const hc = (extra: string, timeoutMs = 200) =>
      `{ path: /health, interval: 1500, timeout_ms: ${timeoutMs}, failure_threshold: 1, success_threshold: 1${extra} }`;
    const pools = `  web:
    backends:
      - { id: head-only, address: "${headOnly}", health_check: ${hc(', method: HEAD')} }
      - { id: teapot, address: "${teapot}", health_check: ${hc(', expected_status: "418"')} }
      - { id: slow, address: "${slow}", health_check: ${hc('')} }
      - { id: patient, address: "${patient}", health_check: ${hc('', 1000)} }
`;
    const s = newSetup();
    writeFileSync(s.file, config(s, pools));
    const cp = await startControl(s.file);
    cleanup.push(() => cp.stop());

    type Info = { id: string; state: string; last_probe: { ok: boolean; error?: string } | null };
    const states = async (): Promise<Record<string, Info>> => {
      const r = await spooky(s, cp, 'backends', '--json');
      const list = JSON.parse(r.stdout).backends as Info[];
      return Object.fromEntries(list.map((b) => [b.id, b]));
    };
    // Every backend probed at least once (the first probe comes within one interval), the slow
    // one failed: it answers after 600 ms, past its timeout_ms of 200.
    let seen = await states();
    const ids = ['head-only', 'teapot', 'slow', 'patient'];
    for (let i = 0; i < 60 && !ids.every((id) => seen[id]?.last_probe); i++) {
      await sleep(100);
      seen = await states();
    }
    assert.equal(seen.slow?.state, 'unhealthy', JSON.stringify(seen.slow));
    assert.match(seen.slow?.last_probe?.error ?? '', /time/i);
    for (const id of ['head-only', 'teapot', 'patient']) {
      assert.equal(seen[id]?.state, 'healthy', JSON.stringify(seen[id]));
      assert.equal(seen[id]?.last_probe?.ok, true, JSON.stringify(seen[id]));
    }
  });
});
