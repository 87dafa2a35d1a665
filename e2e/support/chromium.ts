/** Headless Debian Chromium for e2e tests (playwright-core), trusting the tests' certificate. */
import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { devCert } from './harness.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** node:test `skip` value: skip locally without Chromium, never in CI. */
export const skipWithoutChromium = !existsSync(CHROMIUM) && !process.env.CI ? 'chromium not installed' : false;

/**
 * Launches Chromium with QUIC on and the dev certificate's key trusted; `forceQuicOn` is the
 * `--origin-to-force-quic-on` value (see alt-svc.test.ts for why a decoy port is useful).
 */
export async function launchChromium(forceQuicOn: string): Promise<Browser> {
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
        `--origin-to-force-quic-on=${forceQuicOn}`,
        '--host-resolver-rules=MAP localhost 127.0.0.1',
        `--ignore-certificate-errors-spki-list=${devCert().spkiSha256}`,
      ],
    });
  try {
    return await launch();
  } catch {
    return launch();
  }
}

/** The protocol of the page's last navigation: 'h2', 'h3', 'http/1.1'. */
export function nextHopProtocol(page: Page): Promise<string> {
  return page.evaluate(
    () => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).nextHopProtocol,
  );
}
