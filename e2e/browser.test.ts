/** Headless Chromium loads a page through Spooky over HTTP/3 and POSTs with fetch(). */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { launchChromium, nextHopProtocol, skipWithoutChromium } from './support/chromium.js';
import { dataplaneConfig, type RunningDataplane, startDataplane } from './support/harness.js';

describe('Chromium over HTTP/3', {
  skip: skipWithoutChromium,
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
    browser = await launchChromium(`localhost:${dp.port}`);
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
    const proto = await nextHopProtocol(page);
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
