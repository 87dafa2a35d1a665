/**
 * `spooky run --config FILE` (and `spooky --config FILE`, as the seed page writes it): starts
 * spooky-control and spooky-dataplane as children on the same file, forwards signals (SIGHUP
 * to the control plane only: it re-reads the file), and ends both when either dies, with a
 * non-zero exit when one died on its own.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DAEMON_NODE_FLAGS } from '../lib/daemon-flags.js';

const DIST = fileURLToPath(new URL('../', import.meta.url));

export interface Supervised {
  control: ChildProcess;
  dataplane: ChildProcess;
  /** Resolves with the exit code `spooky run` should end with. */
  done: Promise<number>;
}

export function superviseDaemons(file: string): Supervised {
  const start = (main: string) =>
    spawn(process.execPath, [...DAEMON_NODE_FLAGS, `${DIST}${main}`, '--config', file], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  const control = start('controlplane/main.js');
  const dataplane = start('dataplane/main.js');
  let stopping = false;
  const done = new Promise<number>((resolve) => {
    let exited = 0;
    let code = 0;
    const onExit = (name: string, other: ChildProcess) => (c: number | null, signal: NodeJS.Signals | null) => {
      exited++;
      if (!stopping) {
        // One daemon died on its own: take the other down and report it.
        process.stderr.write(`spooky run: ${name} exited (${signal ?? `code ${c}`}); stopping\n`);
        stopping = true;
        code = c && c !== 0 ? c : 1;
        other.kill('SIGTERM');
      } else if (c !== 0 && c !== null && code === 0) {
        code = c;
      }
      if (exited === 2) resolve(code);
    };
    control.on('exit', onExit('spooky-control', dataplane));
    dataplane.on('exit', onExit('spooky-dataplane', control));
  });
  const forward = (signal: NodeJS.Signals) => {
    if (signal === 'SIGHUP') {
      control.kill('SIGHUP');
      return;
    }
    stopping = true;
    control.kill(signal);
    dataplane.kill(signal);
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => forward(s));
  return { control, dataplane, done };
}

export async function runDaemons(file: string): Promise<void> {
  process.exit(await superviseDaemons(file).done);
}
