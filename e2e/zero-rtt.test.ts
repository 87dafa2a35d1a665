/**
 * 0-RTT end to end: real spooky-control and spooky-dataplane, a demo backend, and ngtcp2's
 * gtlsclient resuming with a saved session ticket (--session-file/--tp-file). gtlsclient's log
 * shows the request's STREAM frame leaving in a 0-RTT packet, and prints "Early data was
 * rejected by server" when the server refuses it; the backend shows `early-data: 1`.
 */
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import {
  type CommandResult,
  gtlsclient,
  gtlsStatuses,
  type RunningControl,
  type RunningDataplane,
  startControl,
  startDataplane,
} from './support/harness.js';
import { config, newSetup, type Setup, spooky } from './support/pair.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What one gtlsclient run says about early data. */
function earlyData(r: CommandResult) {
  const out = r.stderr + r.stdout;
  return {
    statuses: gtlsStatuses(out),
    // The request stream (id 0) left in a 0-RTT packet: HEADERS were sent as early data.
    requestSentIn0Rtt: /frm tx \d+ 0RTT STREAM\(0x0[8-9a-f]\) id=0x0 /.test(out),
    rejected: out.includes('Early data was rejected by server'),
  };
}

describe('0-RTT early data through session tickets', () => {
  let s: Setup;
  let backend: DemoBackend;
  let cp: RunningControl;
  let dp: RunningDataplane;
  let metricsUrl = '';
  let base = '';
  const session = () => ({ ticket: join(s.dir, 'session.pem'), tp: join(s.dir, 'tp.pem') });
  const pool = (origin: string) => `  web:\n    backends: [{ id: a, address: "${origin}" }]\n`;
  const configText = (perf: string, extraPools = '') =>
    config(s, pool(backend.origin) + extraPools, { extra: `performance: ${perf}\n` }).replace(
      'metrics: { enabled: false }',
      'metrics: { enabled: true, port: 0 }',
    );

  /** gtlsclient with the saved ticket and transport parameters (it writes fresh ones back). */
  function resumed(path: string, extra: string[] = [], files = session()) {
    return gtlsclient(dp.port, [`${base}${path}`], ['--session-file', files.ticket, '--tp-file', files.tp, ...extra]);
  }

  const seen = (path: string) => backend.seen.filter((r) => r.path === path);

  async function apply(perf: string, extraPools = ''): Promise<void> {
    const file = join(s.dir, `apply-${Date.now()}.yaml`);
    writeFileSync(file, configText(perf, extraPools));
    const r = await spooky(s, cp, 'apply', file);
    assert.equal(r.code, 0, `apply: ${r.stdout}${r.stderr}`);
  }

  before(async () => {
    backend = await startDemoBackend('a');
    s = newSetup();
    const text = configText('{ quic_0rtt: true }');
    writeFileSync(s.file, text);
    cp = await startControl(s.file);
    const line = cp.logs.find((o) => o.msg === 'metrics listening');
    assert.ok(line, 'metrics listening');
    metricsUrl = `http://${String(line.address)}:${Number(line.port)}${String(line.path)}`;
    dp = await startDataplane(text, { file: s.file });
    base = `https://localhost:${dp.port}`;
    // A first, full handshake leaves a ticket that allows early data.
    const warm = earlyData(await resumed('/warm'));
    assert.deepEqual(warm.statuses, [200]);
    assert.equal(warm.requestSentIn0Rtt, false, 'no ticket yet: no early data');
    assert.equal(seen('/warm')[0]?.headers['early-data'], undefined);
  });

  after(async () => {
    await dp?.stop();
    await cp?.stop();
    await backend?.close();
  });

  it('a GET sent in 0-RTT is accepted, answered 200, and reaches the backend with Early-Data: 1', async () => {
    const r = await resumed('/early-get');
    const e = earlyData(r);
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    assert.ok(e.requestSentIn0Rtt, 'the GET left in a 0-RTT packet');
    assert.equal(e.rejected, false, 'the server accepted the early data');
    assert.deepEqual(e.statuses, [200]);
    const got = seen('/early-get');
    assert.equal(got.length, 1);
    assert.equal(got[0].headers['early-data'], '1');
    const head = earlyData(await resumed('/early-head', ['-m', 'HEAD']));
    assert.ok(head.requestSentIn0Rtt && !head.rejected);
    assert.deepEqual(head.statuses, [200]);
    assert.equal(seen('/early-head')[0]?.headers['early-data'], '1');
  });

  it('a POST sent in 0-RTT gets 425 Too Early and never reaches the backend', async () => {
    const body = join(s.dir, 'body.txt');
    writeFileSync(body, 'replayable?');
    const e = earlyData(await resumed('/early-post', ['-m', 'POST', '--data', body]));
    assert.ok(e.requestSentIn0Rtt, 'the POST left in a 0-RTT packet');
    assert.equal(e.rejected, false);
    assert.deepEqual(e.statuses, [425]);
    assert.equal(seen('/early-post').length, 0);
  });

  it('a client-sent Early-Data header never reaches the backend', async () => {
    const client = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
    try {
      const r = await client.fetch({ path: '/claims-early', authority: 'localhost', headers: [['early-data', '1']] });
      assert.equal(r.status, 200);
    } finally {
      await client.close();
    }
    assert.equal(seen('/claims-early')[0]?.headers['early-data'], undefined);
  });

  it('tickets and 0-RTT survive an apply that rebuilds the QUIC config', async () => {
    // A ticket issued before the apply, kept aside (each run writes a fresh one).
    const before = { ticket: join(s.dir, 'before.pem'), tp: join(s.dir, 'before-tp.pem') };
    copyFileSync(session().ticket, before.ticket);
    copyFileSync(session().tp, before.tp);
    // quic_cc_algorithm is a QUIC setting: new connections get a new quiche Config.
    await apply(
      '{ quic_0rtt: true, quic_cc_algorithm: reno }',
      `  api:\n    route: { path_prefix: /api }\n    backends: [{ id: b, address: "${backend.origin}" }]\n`,
    );
    const e = earlyData(await resumed('/after-apply', [], before));
    assert.ok(e.requestSentIn0Rtt, 'the GET left in a 0-RTT packet');
    assert.equal(e.rejected, false, 'the ticket from before the apply still allows early data');
    assert.deepEqual(e.statuses, [200]);
    assert.equal(seen('/after-apply')[0]?.headers['early-data'], '1');
  });

  it('counts accepted and refused early data in spooky_quic_early_data_total', async () => {
    const want = (text: string, outcome: string) => {
      const m = new RegExp(`^spooky_quic_early_data_total\\{outcome="${outcome}"[^}]*\\} (\\d+)$`, 'm').exec(text);
      return m ? Number(m[1]) : 0;
    };
    // Data plane series reach the control plane's endpoint with the periodic stats.
    const deadline = performance.now() + 30_000;
    let text = '';
    for (;;) {
      text = await (await fetch(metricsUrl)).text();
      if (want(text, 'accepted') >= 3 && want(text, 'rejected_425') >= 1) break;
      assert.ok(performance.now() < deadline, `no early data counts after 30 s:\n${text.slice(0, 4000)}`);
      await sleep(500);
    }
    assert.equal(want(text, 'accepted'), 3, 'GET, HEAD, GET after the apply');
    assert.equal(want(text, 'rejected_425'), 1, 'the POST');
  });

  it('0-RTT sent again after a stateless Retry reaches the new connection', async () => {
    await apply('{ quic_0rtt: true, quic_retry: always }');
    const r = await resumed('/after-retry');
    const out = r.stderr + r.stdout;
    assert.match(out, /pkt rx .* type=Retry /, 'the server asked for a Retry');
    const e = earlyData(r);
    assert.ok(e.requestSentIn0Rtt && !e.rejected);
    assert.deepEqual(e.statuses, [200]);
    assert.equal(seen('/after-retry')[0]?.headers['early-data'], '1');
  });

  it('with quic_0rtt false no early data is accepted', async () => {
    await apply('{ quic_0rtt: false }');
    // A ticket that allowed early data: the client tries, the server refuses, and the request
    // goes again after the handshake (1-RTT), so the backend sees it without Early-Data.
    const tried = earlyData(await resumed('/off'));
    assert.ok(tried.requestSentIn0Rtt, 'the client tried 0-RTT');
    assert.ok(tried.rejected, 'the server refused the early data');
    assert.deepEqual(tried.statuses, [200]);
    assert.equal(seen('/off').length, 1);
    assert.equal(seen('/off')[0].headers['early-data'], undefined);
    // The ticket that run received was issued with 0-RTT off: it does not allow early data.
    const fresh = earlyData(await resumed('/off-fresh'));
    assert.ok(!fresh.requestSentIn0Rtt || fresh.rejected);
    assert.deepEqual(fresh.statuses, [200]);
    assert.equal(seen('/off-fresh')[0]?.headers['early-data'], undefined);
  });
});
