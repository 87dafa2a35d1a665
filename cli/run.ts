/**
 * `spooky run --config FILE` (and `spooky --config FILE`): for now the data plane alone in the
 * foreground; the control plane joins it here when it lands.
 */
import { runStandalone } from '../dataplane/standalone.js';

export async function runDataPlaneFromFile(file: string): Promise<void> {
  await runStandalone(file);
}
