/**
 * Alt-Svc discovery with a real browser: headless Chromium, without --origin-to-force-quic-on,
 * reaches Spooky first over TCP (HTTP/2), learns `alt-svc: h3=":PORT"` from the response, and
 * later navigations go over HTTP/3 on the same port.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { launchChromium, nextHopProtocol, skipWithoutChromium } from './support/chromium.js';
import { dataplaneConfig, type RunningDataplane, startDataplane } from './support/harness.js';

describe('Chromium discovers HTTP/3 through alt-svc', {
  skip: skipWithoutChromium,
  timeout: 180_000,
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
    // Chromium refuses QUIC with a certificate that does not chain to a public root
    // (ERR_QUIC_CERT_ROOT_NOT_KNOWN, sent as TLS alert 46 "certificate unknown", and then
    // marks the alt-svc entry broken) unless the host is in the list built from
    // --origin-to-force-quic-on, by host name only. Forcing QUIC on port 1, where nothing
    // listens, puts "localhost" in that list without forcing anything on the origin under
    // test: it is still reached over TCP first and must discover HTTP/3 from alt-svc.
    // --ignore-certificate-errors-spki-list alone does not lift that check.
    browser = await launchChromium('localhost:1');
  });

  after(async () => {
    await browser?.close();
    await dp?.stop();
    await backend?.close();
  });

  it('logs the TCP port, the same as the QUIC one', () => {
    const listening = dp.logs.find((o) => o.msg === 'listening');
    assert.equal(listening?.tcp_port, dp.port);
  });

  it('first navigation goes over h2 and carries alt-svc; a later one goes over h3', async () => {
    const page = await browser.newPage();
    try {
      const first = await page.goto(`https://localhost:${dp.port}/`, { timeout: 15_000 });
      assert.equal(first?.status(), 200);
      assert.equal(await nextHopProtocol(page), 'h2');
      assert.equal(first?.headers()['alt-svc'], `h3=":${dp.port}"; ma=86400`);

      const seen: string[] = [];
      for (let i = 1; i <= 20 && seen.at(-1) !== 'h3'; i++) {
        if (i > 1) await new Promise((r) => setTimeout(r, 250));
        const res = await page.goto(`https://localhost:${dp.port}/page?try=${i}`, { timeout: 15_000 });
        assert.equal(res?.status(), 200);
        seen.push(await nextHopProtocol(page));
      }
      assert.equal(seen.at(-1), 'h3', `protocols of the later navigations: ${seen.join(', ')}`);
      // The page's fetch() POST went over the same HTTP/3 connection and got the backend's answer.
      const posted = await page.evaluate(() =>
        Promise.race([
          (window as unknown as { postResult: Promise<string> }).postResult,
          new Promise<string>((resolve) => setTimeout(() => resolve('no answer to the POST within 15 s'), 15_000)),
        ]),
      );
      assert.equal(posted, '200 boo from the browser');
    } finally {
      await page.close();
    }
  });
});
