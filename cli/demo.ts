/**
 * `spooky demo`: everything a newcomer needs to see Spooky work: a self-signed certificate, two
 * HTTP/2 demo backends in this process, and `spooky run` (control plane + data plane) on
 * 127.0.0.1:9889 with its control API on 127.0.0.1:9902.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDemoBackend } from '../lib/demo-backend.js';
import { generateSelfSigned } from './certs.js';
import { superviseDaemons } from './run.js';

export async function runDemo(port: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'spooky-demo-'));
  const cert = generateSelfSigned(dir);
  const a = await startDemoBackend('a');
  const b = await startDemoBackend('b');
  const configFile = join(dir, 'spooky.yaml');
  writeFileSync(
    configFile,
    `# Written by \`spooky demo\`: two pools over two local HTTP/2 backends.
listen:
  address: 127.0.0.1
  port: ${port}
  tls:
    cert: ${cert.certFile}
    key: ${cert.keyFile}
upstream:
  api:
    route:
      path_prefix: /api
    backends:
      - id: api-a
        address: ${a.origin}
  web:
    route:
      path_prefix: /
    backends:
      - id: web-a
        address: ${a.origin}
      - id: web-b
        address: ${b.origin}
log:
  level: info
  format: plain
security:
  privileges:
    enabled: false
control:
  socket: ${join(dir, 'control.sock')}
  state_dir: ${join(dir, 'state')}
`,
  );
  const url = `https://localhost:${port}`;
  process.stdout.write(`
Spooky demo: HTTP/3 on udp://127.0.0.1:${port}, backends a=${a.origin} b=${b.origin}
config: ${configFile}

Change it live (no connection dropped): edit the config, then
  npx spooky apply ${configFile} --config ${configFile}
  npx spooky status --config ${configFile}

Try it (Ctrl-C stops the demo):
  npx spooky get --insecure ${url}/            # backend a or b (round robin per worker)
  npx spooky get --insecure ${url}/api/hello   # the api pool
  gtlsclient --exit-on-all-streams-close 127.0.0.1 ${port} ${url}/
  chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \\
    --disable-component-update --disable-sync --user-data-dir=$(mktemp -d) --enable-quic \\
    --origin-to-force-quic-on=localhost:${port} --host-resolver-rules="MAP localhost 127.0.0.1" \\
    --ignore-certificate-errors-spki-list=${cert.spkiSha256} --virtual-time-budget=3000 \\
    --dump-dom ${url}/page

`);
  const { done } = superviseDaemons(configFile);
  const code = await done;
  await Promise.all([a.close(), b.close()]);
  process.exit(code);
}
