/**
 * The fleet leg of `npm run bench` (issue #17): one spooky-control and five spooky-dataplane
 * processes on loopback, the data planes following it over TCP with mutual TLS (control.listen,
 * control.server), each on its own port with its own certificate. Each round applies a config that
 * moves the pool to the other backend and measures two times from the moment the apply is sent:
 * until `POST /v1/config` answers with five ACKs, and until every data plane serves the new
 * backend (one HTTP/3 request to each in turn, repeated until all five do). `--only fleet`.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ApplyBody, DataPlanesBody } from '../controlplane/api/types.js';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { FleetConfigs } from '../e2e/support/fleet.js';
import { type RunningControl, type RunningDataplane, startControl, startDataplane } from '../e2e/support/harness.js';
import { TestPki } from '../e2e/support/pki.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';

export interface FleetMeasure {
  dataplanes: number;
  applies: number;
  /** POST /v1/config until it answered with every ACK. */
  apply_ms_p50: number;
  apply_ms_max: number;
  /** POST /v1/config until every data plane served the new config. */
  visible_ms_p50: number;
  visible_ms_max: number;
  /** Applies not ACKed by all, or not visible on all within 10 s. */
  failed: number;
}

const NODES = 5;

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

export async function benchFleet(opts: {
  dir: string;
  cert: { certFile: string; keyFile: string };
  rounds: number;
  quick: boolean;
  log: (line: string) => void;
}): Promise<FleetMeasure> {
  const dir = join(opts.dir, 'fleet');
  const pki = new TestPki(join(dir, 'pki'), 'Spooky bench fleet CA');
  const fleet = new FleetConfigs(dir, pki, opts.cert);
  const backends: DemoBackend[] = [await startDemoBackend('a'), await startDemoBackend('b')];
  const running: Array<RunningControl | RunningDataplane> = [];
  let sessions: H3ClientSession[] = [];
  const config = (backend: DemoBackend, control: string) => fleet.config(FleetConfigs.pool(backend.origin), control);
  try {
    mkdirSync(dir, { recursive: true });
    const controlFile = join(dir, 'control.yaml');
    writeFileSync(controlFile, config(backends[0], fleet.controlSection));
    const cp = await startControl(controlFile);
    running.push(cp);
    const listening = cp.logs.find((o) => o.msg === 'listening');
    fleet.controlPort = Number(String(listening?.control_listen).split(':').pop());
    const dataplanes: RunningDataplane[] = [];
    for (let n = 1; n <= NODES; n++) {
      const node = fleet.nodeSection(`edge-${n}`, pki.issue(`edge-${n}`, `/CN=edge-${n}`));
      const dp = await startDataplane(config(backends[0], node), { file: join(dir, `edge-${n}`, 'dataplane.yaml') });
      running.push(dp);
      dataplanes.push(dp);
    }
    const token = readFileSync(join(dir, 'state', 'control.token'), 'utf8').trim();
    const auth = { authorization: `Bearer ${token}` };
    // Every data plane connected to the control plane before the clock starts (a data plane
    // serves its own file before that, so a served page proves nothing).
    const connected = async () => {
      const body = (await (await fetch(`${cp.apiUrl}/v1/dataplanes`, { headers: auth })).json()) as DataPlanesBody;
      return body.dataplanes.filter((d) => d.connected).length;
    };
    for (let i = 0; i < 300 && (await connected()) < NODES; i++) await new Promise((r) => setTimeout(r, 50));
    const joined = await connected();
    if (joined < NODES) throw new Error(`fleet: only ${joined} of ${NODES} data planes connected within 15 s`);
    sessions = await Promise.all(
      dataplanes.map((dp) =>
        H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' }),
      ),
    );
    const open = sessions;
    /** The backend data plane `i` answers with; a failed request is an answer too (never the one wanted). */
    const served = async (i: number) => {
      try {
        const r = await open[i].fetch({ path: '/', authority: 'localhost' });
        return r.status === 200 ? String(JSON.parse(r.body.toString()).backend) : `status ${r.status}`;
      } catch (e) {
        return `error ${(e as Error).message}`;
      }
    };
    const applies = opts.quick ? 3 : Math.max(10, opts.rounds * 5);
    const applyMs: number[] = [];
    const visibleMs: number[] = [];
    let failed = 0;
    for (let k = 1; k <= applies; k++) {
      const target = backends[k % 2];
      const start = performance.now();
      const res = await fetch(`${cp.apiUrl}/v1/config`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/yaml' },
        body: config(target, fleet.controlSection),
      });
      const body = (await res.json()) as ApplyBody;
      const acked = res.status === 200 && body.dataplanes.filter((d) => d.result === 'ack').length === NODES;
      // Then one request to each data plane per sweep until all serve it: the second figure is
      // the ACK time plus at least one sweep.
      applyMs.push(performance.now() - start);
      const want = k % 2 === 0 ? 'a' : 'b';
      let visible = false;
      while (!visible && performance.now() - start < 10_000) {
        visible = (await Promise.all(dataplanes.map((_, j) => served(j)))).every((b) => b === want);
      }
      visibleMs.push(performance.now() - start);
      if (!acked || !visible) failed++;
    }
    const m: FleetMeasure = {
      dataplanes: NODES,
      applies,
      apply_ms_p50: quantile(applyMs, 0.5),
      apply_ms_max: Math.max(...applyMs),
      visible_ms_p50: quantile(visibleMs, 0.5),
      visible_ms_max: Math.max(...visibleMs),
      failed,
    };
    opts.log(
      `  fleet: ${applies} applies to ${NODES} data planes over mTLS: ACKed by all in ${m.apply_ms_p50.toFixed(0)} ms (max ${m.apply_ms_max.toFixed(0)}), served by all in ${m.visible_ms_p50.toFixed(0)} ms (max ${m.visible_ms_max.toFixed(0)}), ${failed} failed`,
    );
    return m;
  } finally {
    await Promise.allSettled(sessions.map((c) => c.close()));
    await Promise.allSettled(running.reverse().map((p) => p.stop()));
    await Promise.allSettled(backends.map((b) => b.close()));
  }
}

export function fleetMarkdown(m: FleetMeasure): string {
  const ms = (v: number) => `${v.toFixed(0)} ms`;
  return `
## Fleet: an apply reaching ${m.dataplanes} data planes over TCP with mutual TLS

One spooky-control, ${m.dataplanes} spooky-dataplane processes on loopback; ${m.applies} applies, each moving the
pool to the other backend. Times from sending \`POST /v1/config\`.

| until | median | max |
| --- | --- | --- |
| every data plane ACKed (the apply returns) | ${ms(m.apply_ms_p50)} | ${ms(m.apply_ms_max)} |
| every data plane serves it (the ACK, then a request to each per sweep until all do) | ${ms(m.visible_ms_p50)} | ${ms(m.visible_ms_max)} |

Failed applies (not ACKed by all, or not served by all within 10 s): ${m.failed}.
`;
}
