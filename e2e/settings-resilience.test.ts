/**
 * Issue 13 item 4: the resilience settings no other test exercised (the retry budget, the
 * breaker's half-open probes), each set to a value whose effect shows in the answers clients get
 * from the real spooky-dataplane (model/config/settings-coverage.ts names these cases).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { H3ClientSession } from '../dataplane/h3/client.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { dataplaneConfig, type RunningDataplane, startDataplane } from './support/harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts a data plane, connects one client, runs `body`, stops both whatever happens. */
async function withClient<T>(upstream: string, extra: string, body: (c: H3ClientSession) => Promise<T>) {
  const dp: RunningDataplane = await startDataplane(dataplaneConfig(upstream, extra));
  let client: H3ClientSession | undefined;
  try {
    client = await H3ClientSession.connect('127.0.0.1', dp.port, { insecure: true, serverName: 'localhost' });
    return await body(client);
  } finally {
    await client?.close();
    await dp.stop();
  }
}

const count = (statuses: number[], status: number) => statuses.filter((s) => s === status).length;

describe('resilience settings (issue 13 item 4)', { timeout: 120_000 }, () => {
  let good: DemoBackend;
  let goneOrigin: string;
  before(async () => {
    good = await startDemoBackend('good');
    const gone = await startDemoBackend('gone');
    await gone.close(); // its port now refuses connections
    goneOrigin = gone.origin;
  });
  after(async () => {
    await good?.close();
  });

  it('retries.budget_percent: 0 leaves only the floor of 3 retries in flight; 100 retries every refused request', async () => {
    // 20 slow requests at once, round-robin: about half try the refused backend first and need a
    // retry on the good one, all at the same time. The breaker is off so it keeps being tried.
    const pool = `  web:\n    backends: [{ id: gone, address: "${goneOrigin}" }, { id: good, address: "${good.origin}" }]\n`;
    const burst = (percent: number) =>
      withClient(
        pool,
        `resilience: { retries: { budget_percent: ${percent} }, circuit_breaker: { enabled: false } }\n`,
        async (c) => {
          const all = Array.from({ length: 20 }, (_, i) =>
            c.fetch({ path: `/late-end?ms=1000&i=${i}`, authority: 'localhost' }).then((r) => r.status),
          );
          return Promise.all(all);
        },
      );
    const none = await burst(0);
    assert.ok(count(none, 502) >= 5, `budget 0%: ${none.join()}`);
    assert.ok(count(none, 200) >= 10, `budget 0%: ${none.join()}`);
    const full = await burst(100);
    assert.equal(count(full, 200), 20, `budget 100%: ${full.join()}`);
  });

  it('circuit_breaker.half_open_probes: once open_ms is over, that many requests reach the backend, the others are refused', async () => {
    // Accepts TCP and never says a word: each attempt takes the whole connect timeout (300 ms),
    // so the requests sent together all meet the breaker half-open.
    const sockets = new Set<net.Socket>();
    const mute = net.createServer((s) => sockets.add(s));
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    const origin = `https://127.0.0.1:${(mute.address() as net.AddressInfo).port}`;
    const extra = `performance: { backend_connect_timeout_ms: 300 }
resilience:
  retries: { attempts: 0 }
  circuit_breaker: { consecutive_failures: 1, open_ms: 500, half_open_probes: 3 }
`;
    try {
      const statuses = await withClient(
        `  web:\n    backends: [{ id: mute, address: "${origin}" }]\n`,
        extra,
        async (c) => {
          const get = () => c.fetch({ path: '/x', authority: 'localhost' }).then((r) => r.status);
          assert.equal(await get(), 502, 'the first failure opens the breaker');
          assert.equal(await get(), 503, 'open: refused without trying');
          await sleep(700);
          return Promise.all(Array.from({ length: 6 }, get));
        },
      );
      // The probes reached the backend and failed (502); the rest met the breaker (503).
      assert.equal(count(statuses, 502), 3, statuses.join());
      assert.equal(count(statuses, 503), 3, statuses.join());
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => mute.close(r));
    }
  });
});
