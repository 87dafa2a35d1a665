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
import { replay, UdpRecorder } from './support/udp-recorder.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The sum of a family's samples whose labels match `labels` (a regex over the label text). */
function metric(text: string, family: string, labels: RegExp): number {
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${family}\\{([^}]*)\\} (\\d+)$`, 'gm'))) {
    if (labels.test(m[1])) sum += Number(m[2]);
  }
  return sum;
}

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
  function resumed(path: string, extra: string[] = [], files = session(), port = dp.port) {
    return gtlsclient(port, [`${base}${path}`], ['--session-file', files.ticket, '--tp-file', files.tp, ...extra]);
  }

  /** Scrapes the metrics endpoint until `done` holds (data plane series come with its stats). */
  async function scrapeUntil(done: (text: string) => boolean, what: string): Promise<string> {
    const deadline = performance.now() + 30_000;
    for (;;) {
      const text = await (await fetch(metricsUrl)).text();
      if (done(text)) return text;
      assert.ok(performance.now() < deadline, `${what} not seen within 30 s:\n${text.slice(0, 4000)}`);
      await sleep(500);
    }
  }

  const earlyCount = (text: string, outcome: string) =>
    metric(text, 'spooky_quic_early_data_total', new RegExp(`outcome="${outcome}"`));

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
    const text = await scrapeUntil(
      (t) => earlyCount(t, 'accepted') >= 3 && earlyCount(t, 'rejected_425') >= 1,
      'early data counts',
    );
    assert.equal(earlyCount(text, 'accepted'), 3, 'GET, HEAD, GET after the apply');
    assert.equal(earlyCount(text, 'rejected_425'), 1, 'the POST');
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

  it('a replayed first flight: the GET is served again (marked Early-Data), the POST never; no handshake', async () => {
    // Retry off again (a replayed Initial would only draw a Retry); replays time out after 1 s.
    await apply('{ quic_0rtt: true, quic_max_idle_timeout_ms: 1000 }');
    const relay = await UdpRecorder.start(dp.port);
    const failures = (t: string) => metric(t, 'spooky_quic_handshake_failures_total', /reason="(timeout|deadline)"/);
    const failuresBefore = failures(await (await fetch(metricsUrl)).text());
    try {
      const get = earlyData(await resumed('/replayed-get', [], session(), relay.port));
      assert.ok(get.requestSentIn0Rtt && !get.rejected);
      assert.deepEqual(get.statuses, [200]);
      const getFlight = relay.firstFlight;
      relay.reset();
      const body = join(s.dir, 'body.txt');
      const post = earlyData(await resumed('/replayed-post', ['-m', 'POST', '--data', body], session(), relay.port));
      assert.ok(post.requestSentIn0Rtt);
      assert.deepEqual(post.statuses, [425]);
      const postFlight = relay.firstFlight;
      // The client's connections are gone (closed, idle timeout 1 s): the replays start new ones.
      await sleep(1500);
      await replay(dp.port, getFlight);
      await replay(dp.port, postFlight);
      for (let i = 0; i < 50 && seen('/replayed-get').length < 2; i++) await sleep(100);
    } finally {
      relay.close();
    }
    // Nothing in TLS stops the replay: this is why only safe methods are accepted as early data.
    const gets = seen('/replayed-get');
    assert.equal(gets.length, 2, 'the replayed GET reached the backend');
    assert.equal(gets[1].headers['early-data'], '1', 'marked as early data, so the backend can tell');
    assert.equal(seen('/replayed-post').length, 0, 'the replayed POST was answered 425 by Spooky');
    // The replays never complete the handshake: counted as handshake failures once they time out.
    const text = await scrapeUntil(
      (t) => failures(t) >= failuresBefore + 2 && earlyCount(t, 'rejected_425') >= 3,
      'two handshake failures',
    );
    assert.equal(earlyCount(text, 'accepted'), 6, 'four before, the relayed GET and its replay');
    assert.equal(earlyCount(text, 'rejected_425'), 3, 'the first POST, the relayed one and its replay');
  });

  it('early_data_methods narrowed to GET by an apply: a HEAD in 0-RTT now gets 425, a GET is still served', async () => {
    await apply('{ quic_0rtt: true, early_data_methods: [GET] }');
    const head = earlyData(await resumed('/narrowed-head', ['-m', 'HEAD']));
    assert.ok(head.requestSentIn0Rtt && !head.rejected, 'the HEAD left in 0-RTT and the early data was accepted');
    assert.deepEqual(head.statuses, [425]);
    assert.equal(seen('/narrowed-head').length, 0);
    const get = earlyData(await resumed('/narrowed-get'));
    assert.ok(get.requestSentIn0Rtt && !get.rejected);
    assert.deepEqual(get.statuses, [200]);
    assert.equal(seen('/narrowed-get')[0]?.headers['early-data'], '1');
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
