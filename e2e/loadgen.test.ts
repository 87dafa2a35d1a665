/** The load generator against the real data plane: every mode completes and counts what it did. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { DIST, dataplaneConfig, type RunningDataplane, run, startDataplane } from './support/harness.js';

describe('spooky bench (HTTP/3 load generator)', () => {
  let backend: DemoBackend;
  let dp: RunningDataplane;
  const cli = join(DIST, 'cli/main.js');

  before(async () => {
    backend = await startDemoBackend('a');
    dp = await startDataplane(
      dataplaneConfig(`  web:\n    backends:\n      - { id: w, address: "${backend.origin}" }\n`, ''),
    );
  });
  after(async () => {
    await dp?.stop();
    await backend?.close();
  });

  const bench = async (...args: string[]) => {
    const r = await run(
      process.execPath,
      [cli, 'bench', `https://localhost:${dp.port}/health`, '--json', ...args],
      60000,
    );
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };

  it('closed loop over several connections and processes', async () => {
    const r = await bench('-c', '2', '-s', '4', '-d', '1', '-w', '0.2', '-p', '2');
    assert.ok(r.requests > 0);
    assert.deepEqual(r.errors, {});
    assert.ok(r.latencyUs.p50 > 0 && r.latencyUs.p50 <= r.latencyUs.p99 && r.latencyUs.p99 <= r.latencyUs.max);
    assert.ok(r.clientCpuS > 0);
  });

  it('open loop never sends more than the rate asks', async () => {
    const r = await bench('-r', '50', '-d', '1', '-w', '0');
    assert.ok(r.requests > 0 && r.requests <= 60, `${r.requests} requests`);
    assert.deepEqual(r.errors, {});
  });

  it('one request per connection counts handshakes', async () => {
    const r = await bench('--new-connections', '-c', '2', '-d', '1', '-w', '0');
    assert.ok(r.handshakes > 0);
    assert.equal(r.handshakes, r.requests);
  });

  it('exits 1 with the reason when the target does not answer', async () => {
    const r = await run(process.execPath, [cli, 'bench', 'https://localhost:1/x', '--json', '-d', '0.5', '-w', '0']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /load generator: handshake with 127\.0\.0\.1:1 timed out/);
  });
});
