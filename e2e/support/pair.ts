/**
 * Support for tests that run spooky-control and spooky-dataplane together on one config file,
 * with the control socket, state directory and API (port 0) in a temporary directory.
 */
import { join } from 'node:path';
import { generateSelfSigned } from '../../cli/certs.js';
import { DIST, type RunningControl, run, tempDir } from './harness.js';

const CLI = join(DIST, 'cli', 'main.js');

export interface Setup {
  dir: string;
  file: string;
  certs: { certFile: string; keyFile: string };
}

/** A config for both daemons: pools as given, control socket, state and API in `dir`. */
export function config(
  s: Setup,
  pools: string,
  opts: { port?: number; cert?: { certFile: string; keyFile: string }; extra?: string; accessLog?: boolean } = {},
) {
  const cert = opts.cert ?? s.certs;
  return `listen:
  address: 127.0.0.1
  port: ${opts.port ?? 0}
  tls: { cert: ${cert.certFile}, key: ${cert.keyFile} }
  tcp: { enabled: false }
upstream:
${pools}
log: { level: info, format: json, access_log: ${opts.accessLog ?? false} }
security: { privileges: { enabled: false } }
observability:
  control_api: { port: 0 }
  metrics: { enabled: false }
control: { socket: ${join(s.dir, 'control.sock')}, state_dir: ${join(s.dir, 'state')} }
${opts.extra ?? ''}`;
}

/** The YAML under `upstream:` of one pool `only` (host only.example) with one backend `a`. */
export const onlyPool = (origin: string): string =>
  `  only:\n    route: { host: only.example }\n    backends: [{ id: a, address: "${origin}" }]\n`;

export function newSetup(): Setup {
  const dir = tempDir('spooky-control-e2e-');
  return { dir, file: join(dir, 'spooky.yaml'), certs: generateSelfSigned(join(dir, 'certs')) };
}

/** `spooky <args>` against the control API of `cp`, token from the state dir via --config. */
export function spooky(s: Setup, cp: RunningControl, ...args: string[]) {
  return run(process.execPath, [CLI, ...args, '--control', cp.apiUrl, '--config', s.file], 30_000);
}
