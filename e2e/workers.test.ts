/**
 * Data-plane workers (issue #15): spooky-dataplane with `performance.workers` above 1 runs a
 * supervisor and that many worker processes on one port (SO_REUSEPORT). Real processes, real
 * QUIC: every worker is a data plane of the control plane, an apply is ACKed by each, a worker
 * killed with SIGKILL is restarted while the others' clients keep being served (their datagrams,
 * spread anew by the kernel, are handed over to the worker whose connection id they carry), the
 * configured totals of the limits hold across workers, and SIGTERM drains every worker.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import {
  DIST,
  gtlsclient,
  type RunningControl,
  type RunningDataplane,
  sleep,
  startControl,
  startDataplane,
  until,
} from './support/harness.js';
import { Nat } from './support/nat.js';
import { metricValue } from './support/observe.js';
import { config, newSetup, type Setup, spooky } from './support/pair.js';

const connect = (port: number, handshakeTimeoutMs = 5000) =>
  H3ClientSession.connect('127.0.0.1', port, { insecure: true, serverName: 'localhost', handshakeTimeoutMs });

/** A request that must be answered within `ms` (a lost connection would otherwise wait for its idle timeout). */
function fetchWithin(c: H3ClientSession, ms: number): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    c.fetch({ path: '/', authority: 'localhost' }).then((r) => r.status),
    new Promise<number>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The worker that owns a client's connection: byte 0 of the id the server chose. */
const workerOf = (s: H3ClientSession): number => s.quic.conn.destinationId()[0] as number;

interface DataplaneRow {
  node_id: string;
  pid: number;
  served_version: number;
}

async function dataplanes(
  s: Setup,
  cp: RunningControl,
): Promise<{ current_version: number; dataplanes: DataplaneRow[] }> {
  const r = await spooky(s, cp, 'dataplanes', '--json');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** Running (an exited process its parent has not reaped yet, a zombie, is not). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

describe('performance.workers: 3', () => {
  const backends: DemoBackend[] = [];
  let s: Setup;
  let cp: RunningControl;
  let dp: RunningDataplane;
  let metricsUrl = '';
  const sessions: H3ClientSession[] = [];
  const scrape = async () => (await fetch(metricsUrl)).text();
  const pool = (i: number) => `  web:\n    backends: [{ id: b${i}, address: "${backends[i]?.origin}" }]\n`;
  const yaml = (i: number, workers = 3) =>
    config(s, pool(i), { extra: `performance: { workers: ${workers} }\n` }).replace(
      'metrics: { enabled: false }',
      'metrics: { enabled: true, port: 0 }',
    );
  const workerPids = () => {
    const pids = new Map<number, number>();
    for (const o of dp.logs) if (o.msg === 'worker listening') pids.set(Number(o.worker), Number(o.pid));
    return pids;
  };

  before(async () => {
    for (const name of ['a', 'b']) backends.push(await startDemoBackend(name));
    s = newSetup();
    writeFileSync(s.file, yaml(0));
    cp = await startControl(s.file);
    const line = cp.logs.find((o) => o.msg === 'metrics listening');
    metricsUrl = `http://${String(line?.address)}:${Number(line?.port)}${String(line?.path)}`;
    dp = await startDataplane(readFileSync(s.file, 'utf8'), { file: s.file });
    await until(
      10_000,
      async () => dp.logs.some((o) => o.msg === 'workers listening'),
      (ok) => ok,
    );
  });

  after(async () => {
    for (const c of sessions) await c.close().catch(() => {});
    await dp?.stop('SIGKILL');
    for (const pid of workerPids().values()) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await cp?.stop();
    await Promise.all(backends.map((b) => b.close()));
  });

  it('every worker is a data plane of the control plane, named host:port/wN', async () => {
    const view = await until(
      10_000,
      () => dataplanes(s, cp),
      (v) => v.dataplanes.length === 3,
    );
    const ids = view.dataplanes.map((d) => d.node_id).sort();
    assert.deepEqual(
      ids.map((id) => id.replace(/^.*\//, '')),
      ['w0', 'w1', 'w2'],
    );
    for (const id of ids) assert.ok(id.includes(`:${dp.port}/`), id);
    assert.equal(new Set(view.dataplanes.map((d) => d.pid)).size, 3, 'three processes');
  });

  it('the kernel spreads connections over the workers, each answering on the one port', async () => {
    for (let i = 0; i < 24; i++) sessions.push(await connect(dp.port));
    for (const c of sessions) assert.equal((await c.fetch({ path: '/', authority: 'localhost' })).status, 200);
    const used = new Set(sessions.map(workerOf));
    assert.ok(used.size >= 2, `24 connections all landed on worker ${[...used]}`);
    const text = await until(5000, scrape, (t) => (metricValue(t, 'spooky_requests_total') ?? 0) >= 24);
    for (const w of used) {
      assert.ok((metricValue(text, 'spooky_connections_total', { worker: String(w) }) ?? 0) > 0, `worker ${w}`);
    }
  });

  it('an apply is ACKed by every worker and served by each', async () => {
    const next = join(s.dir, 'b.yaml');
    writeFileSync(next, yaml(1));
    const r = await spooky(s, cp, 'apply', next, '--json');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const version = JSON.parse(r.stdout).version as number;
    const view = await dataplanes(s, cp);
    assert.deepEqual(
      view.dataplanes.map((d) => d.served_version),
      [version, version, version],
    );
    for (const c of sessions) {
      const res = await c.fetch({ path: '/', authority: 'localhost' });
      assert.equal(JSON.parse(res.body.toString()).backend, 'b');
    }
  });

  it('SIGKILL on one worker: it is restarted, the other workers’ clients see no failure, their datagrams are steered', async () => {
    const before = workerPids();
    // The first worker to listen bound first: killing it moves the kernel's other sockets,
    // so surviving connections arrive at another worker and must be handed over.
    const victim = Number(dp.logs.find((o) => o.msg === 'worker listening')?.worker);
    const victimPid = before.get(victim) as number;
    const survivors = sessions.filter((c) => workerOf(c) !== victim);
    assert.ok(survivors.length > 0);
    const steeredBefore = metricValue(await scrape(), 'spooky_quic_steered_datagrams_total', { direction: 'in' }) ?? 0;
    const killedAt = performance.now();
    process.kill(victimPid, 'SIGKILL');
    let failures = 0;
    let served = 0;
    let restartedAt = 0;
    let listedAt = 0;
    // Keep every surviving client busy through the restart, and one second past it.
    while (performance.now() - killedAt < 20_000) {
      const results = await Promise.allSettled(survivors.map((c) => fetchWithin(c, 3000)));
      for (const r of results) {
        if (r.status === 'fulfilled' && r.value === 200) served++;
        else failures++;
      }
      const pid = workerPids().get(victim);
      if (!restartedAt && pid !== undefined && pid !== victimPid) restartedAt = performance.now();
      if (restartedAt && !listedAt) {
        const view = await dataplanes(s, cp);
        const row = view.dataplanes.find((d) => d.node_id.endsWith(`/w${victim}`));
        if (row && row.pid === pid && view.dataplanes.length === 3) listedAt = performance.now();
      }
      if (listedAt && performance.now() - listedAt > 1000) break;
    }
    console.log(
      `worker ${victim} killed: restarted after ${Math.round(restartedAt - killedAt)} ms, listed by the control plane ${Math.round(listedAt - restartedAt)} ms later; ${served} requests served to ${survivors.length} surviving clients, ${failures} failed`,
    );
    assert.ok(restartedAt > 0, 'the supervisor restarted the worker');
    assert.ok(listedAt > 0, 'the control plane lists the new worker');
    assert.equal(failures, 0);
    assert.ok(!alive(victimPid));
    const text = await scrape();
    const steered =
      (metricValue(text, 'spooky_quic_steered_datagrams_total', { direction: 'in' }) ?? 0) - steeredBefore;
    assert.ok(steered > 0, 'no datagram was handed over between workers');
  });

  it('a change of performance.workers is refused until a restart (NACK, restart required)', async () => {
    const next = join(s.dir, 'two.yaml');
    writeFileSync(next, yaml(1, 2));
    const r = await spooky(s, cp, 'apply', next, '--json');
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /performance\.workers changed \(3 → 2 workers\); restart spooky-dataplane/);
  });

  it('SIGTERM drains every worker and the supervisor exits 0', async () => {
    const pids = [...workerPids().values()].filter(alive);
    assert.equal(pids.length, 3);
    assert.equal(await dp.stop('SIGTERM'), 0, dp.stderr());
    for (const pid of pids) assert.ok(!alive(pid), `worker ${pid} still running`);
    assert.equal(dp.logs.filter((o) => o.msg === 'stopped').length, 3, 'each worker logs stopped');
  });
});

/** spooky-dataplane as a supervisor of its own (not through the harness): its stdout and children. */
async function startSupervisor(performance: string) {
  const backend = await startDemoBackend('a');
  const s = newSetup();
  writeFileSync(
    s.file,
    config(s, `  web:\n    backends: [{ id: a, address: "${backend.origin}" }]\n`, {
      extra: `performance: { ${performance} }\n`,
    }),
  );
  const proc = spawn(process.execPath, [join(DIST, 'dataplane/main.js'), '--config', s.file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  let out = '';
  proc.stdout.on('data', (d) => {
    out += d;
  });
  return {
    proc,
    exited,
    backend,
    out: () => out,
    /** Waits (at most 10 s) for a log message of the supervisor. */
    logged: (msg: string) =>
      until(
        10_000,
        async () => out.includes(`"msg":"${msg}"`),
        (ok) => ok,
      ),
    children: () => readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim().split(/\s+/).map(Number),
  };
}

describe('stopping while the workers start', () => {
  it('SIGTERM right after the supervisor forked: every worker drains once it is up, exit 0', async () => {
    const sup = await startSupervisor('workers: 3');
    try {
      await sup.logged('starting workers');
      const children = sup.children();
      assert.equal(children.length, 3);
      sup.proc.kill('SIGTERM');
      const code = await Promise.race([sup.exited, sleep(30_000).then(() => 'hung')]);
      assert.equal(code, 0, sup.out());
      for (const pid of children) assert.ok(!alive(pid), `worker ${pid} still running`);
    } finally {
      sup.proc.kill('SIGKILL');
      await sup.backend.close();
    }
  });
});

describe('a supervisor that dies', () => {
  it('SIGKILL on the supervisor: its workers drain and exit on their own', async () => {
    const sup = await startSupervisor('workers: 2, shutdown_drain_timeout_ms: 2000');
    let children: number[] = [];
    try {
      await sup.logged('workers listening');
      children = sup.children();
      assert.equal(children.length, 2);
      sup.proc.kill('SIGKILL');
      const left = await until(
        20_000,
        async () => children.filter(alive),
        (l) => l.length === 0,
      );
      assert.deepEqual(left, [], 'workers outlived their supervisor');
    } finally {
      sup.proc.kill('SIGKILL');
      for (const pid of children) if (alive(pid)) process.kill(pid, 'SIGKILL');
      await sup.backend.close();
    }
  });
});

describe('limits across workers', () => {
  let dp: RunningDataplane;
  let backend: DemoBackend;
  const sessions: H3ClientSession[] = [];

  before(async () => {
    backend = await startDemoBackend('a');
    const s = newSetup();
    const text = config(s, `  web:\n    backends: [{ id: a, address: "${backend.origin}" }]\n`, {
      extra: 'performance: { workers: 2, max_active_connections: 6, quic_retry: never }\n',
    });
    writeFileSync(s.file, text);
    dp = await startDataplane(text, { file: s.file });
  });

  after(async () => {
    for (const c of sessions) await c.close().catch(() => {});
    await dp?.stop('SIGKILL');
    await backend?.close();
  });

  it('max_active_connections: 6 over 2 workers: at most 6 connections open on the host, on both workers', async () => {
    await until(
      10_000,
      async () => dp.logs.some((o) => o.msg === 'workers listening'),
      (ok) => ok,
    );
    const results = await Promise.allSettled(Array.from({ length: 16 }, () => connect(dp.port, 2000)));
    for (const r of results) if (r.status === 'fulfilled') sessions.push(r.value);
    assert.ok(sessions.length <= 6, `${sessions.length} connections open, the total is 6`);
    const perWorker = [0, 1].map((w) => sessions.filter((c) => workerOf(c) === w).length);
    assert.ok(
      perWorker.every((n) => n <= 3),
      `each worker's share is 3: ${perWorker}`,
    );
    assert.ok(sessions.length > 3, `only ${sessions.length} connections: one worker's share`);
    for (const c of sessions) assert.equal((await c.fetch({ path: '/', authority: 'localhost' })).status, 200);
  });
});

/** The body /drip/N sends: byte i is i mod 251. */
function dripIntact(body: Buffer, n: number): boolean {
  if (body.length !== n) return false;
  for (let i = 0; i < n; i++) if (body[i] !== i % 251) return false;
  return true;
}

const DRIP_BYTES = 2_000_000;
const DRIP_MS = 3000;

for (const workers of [1, 2, 4]) {
  describe(`a client that changes address mid-download, performance.workers: ${workers}`, () => {
    let backend: DemoBackend;
    let s: Setup;
    let cp: RunningControl;
    let dp: RunningDataplane;
    let metricsUrl = '';
    const steeredIn = async () =>
      metricValue(await (await fetch(metricsUrl)).text(), 'spooky_quic_steered_datagrams_total', { direction: 'in' }) ??
      0;

    before(async () => {
      backend = await startDemoBackend('a');
      s = newSetup();
      const text = config(s, `  web:\n    backends: [{ id: a, address: "${backend.origin}" }]\n`, {
        extra: `performance: { workers: ${workers} }\n`,
      }).replace('metrics: { enabled: false }', 'metrics: { enabled: true, port: 0 }');
      writeFileSync(s.file, text);
      cp = await startControl(s.file);
      const line = cp.logs.find((o) => o.msg === 'metrics listening');
      metricsUrl = `http://${String(line?.address)}:${Number(line?.port)}${String(line?.path)}`;
      dp = await startDataplane(text, { file: s.file });
      await until(
        10_000,
        async () => (await dataplanes(s, cp)).dataplanes.length,
        (n) => n === workers,
      );
    });

    after(async () => {
      await dp?.stop();
      await cp?.stop();
      await backend?.close();
    });

    /**
     * Downloads /drip through `port` (`during` runs meanwhile) until a datagram was handed over
     * between workers (at most 8 times: the kernel may hash the new address to the same worker);
     * every download must arrive whole.
     */
    async function downloads(port: number, extra: string[], during: () => Promise<void> = async () => {}) {
      const before = await steeredIn();
      let tries = 0;
      for (; tries < 8; tries++) {
        const dir = join(s.dir, `dl-${tries}`);
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir);
        const url = `https://localhost:${port}/drip/${DRIP_BYTES}?ms=${DRIP_MS}`;
        const [r] = await Promise.all([
          gtlsclient(port, [url], ['--no-http-dump', `--download=${dir}`, '--timeout=10s', ...extra]),
          during(),
        ]);
        const files = readdirSync(dir);
        assert.equal(files.length, 1, `no body saved: ${r.stderr.slice(-300)}`);
        const body = readFileSync(join(dir, files[0] as string));
        assert.ok(dripIntact(body, DRIP_BYTES), `try ${tries}: ${body.length} of ${DRIP_BYTES} bytes, or not intact`);
        if (workers === 1 || (await steeredIn()) > before) break;
      }
      const steered = (await steeredIn()) - before;
      console.log(`workers ${workers} ${extra.join(' ')}: ${tries + 1} download(s), ${steered} datagrams steered`);
      if (workers > 1) assert.ok(steered > 0, 'the new address never reached another worker in 8 downloads');
    }

    it('gtlsclient --change-local-addr=1s (migration with path validation): the body arrives whole', async () => {
      await downloads(dp.port, ['--change-local-addr=1s']);
    });

    it('NAT rebinding (the NAT before gtlsclient moves to a new port after 1 s): the body arrives whole', async () => {
      const nat = await Nat.start(dp.port);
      try {
        await downloads(nat.port, [], async () => {
          await sleep(1000);
          nat.rebind();
        });
        assert.ok(nat.outsidePorts.length > 1, 'the NAT moved to a new port');
      } finally {
        nat.close();
      }
    });
  });
}
