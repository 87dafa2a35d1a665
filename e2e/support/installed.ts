/**
 * A Debian binary the tests drive (promtool, prometheus) that scripts/install-test-deps.sh may
 * still be installing in another process.
 */
import { existsSync } from 'node:fs';

/**
 * Waits for `bin` (≤ 150 s: inside the runner's 180 s test timeout, so a missing binary is named
 * rather than reported as a timeout).
 */
export async function installedBinary(bin: string): Promise<string> {
  const deadline = Date.now() + 150_000;
  while (!existsSync(bin)) {
    if (Date.now() > deadline) {
      throw new Error(`${bin} did not appear within 150 s (scripts/install-test-deps.sh installs it)`);
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
  return bin;
}
