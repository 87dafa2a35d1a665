/** Headless Chromium loads a page through Spooky over HTTP/3 and POSTs with fetch(). */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { dataplaneConfig, devCert, type RunningDataplane, startDataplane } from './support/harness.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('Chromium over HTTP/3', {
  skip: !existsSync(CHROMIUM) && !process.env.CI ? 'chromium not installed' : false,
}, () => {
  let backend: DemoBackend;
  let dp: RunningDataplane;
  let browser: Browser;

  before(async () => {
    backend = await startDemoBackend('a');
    dp = await startDataplane(
      dataplaneConfig(`  web:
    route: { path_prefix: / }
    backends:
      - { id: web-a, address: "${backend.origin}" }
`),
    );
    const launch = () =>
      chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        // A launch that hangs (seen once on a fresh CI machine) fails after 60 s and is retried.
        timeout: 60_000,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-dev-shm-usage',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--enable-quic',
          `--origin-to-force-quic-on=localhost:${dp.port}`,
          '--host-resolver-rules=MAP localhost 127.0.0.1',
          `--ignore-certificate-errors-spki-list=${devCert().spkiSha256}`,
        ],
      });
    try {
      browser = await launch();
    } catch {
      browser = await launch();
    }
  });

  after(async () => {
    await browser?.close();
    await dp?.stop();
    await backend?.close();
  });

  it('navigates over h3 and a fetch() POST returns the backend’s answer', async () => {
    const page = await browser.newPage();
    const res = await page.goto(`https://localhost:${dp.port}/page`);
    assert.equal(res?.status(), 200);
    const proto = await page.evaluate(
      () => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).nextHopProtocol,
    );
    assert.equal(proto, 'h3');
    const posted = await page.evaluate(() =>
      Promise.race([
        (window as unknown as { postResult: Promise<string> }).postResult,
        new Promise<string>((resolve) => setTimeout(() => resolve('no answer to the POST within 15 s'), 15_000)),
      ]),
    );
    assert.equal(posted, '200 boo from the browser');
    const seen = backend.seen.find((s) => s.method === 'POST' && s.path === '/echo');
    assert.ok(seen, 'the POST reached the backend');
    await page.close();
  });
});
