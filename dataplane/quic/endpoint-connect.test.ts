/**
 * QuicEndpoint.connect, the client side's way in: a host name is resolved once (every send must
 * name an address), and a peer quiche cannot take leaves no bound socket behind. Each case runs
 * in its own Node process, which must exit by itself: a leaked socket keeps it alive.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';

const endpointUrl = new URL('./endpoint.js', import.meta.url).href;
const quicheUrl = new URL('./quiche.js', import.meta.url).href;

/** Runs `body` (ESM, with QuicEndpoint and a client Config `cfg` in scope) in a fresh process. */
function runAlone(body: string): Promise<{ code: number | null; out: string; exitedAlone: boolean }> {
  const script = `
import { QuicEndpoint } from ${JSON.stringify(endpointUrl)};
import { quiche } from ${JSON.stringify(quicheUrl)};
const cfg = quiche.Config.withBoringSslCtx(false, false, null, null, null, null);
cfg.setApplicationProtos(['h3']);
${body}
`;
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    let exitedAlone = true;
    const kill = setTimeout(() => {
      exitedAlone = false;
      p.kill('SIGKILL');
    }, 10_000);
    p.on('close', (code) => {
      clearTimeout(kill);
      resolve({ code, out, exitedAlone });
    });
  });
}

describe('QuicEndpoint.connect', () => {
  it('a peer address quiche refuses rejects, and the process is left with nothing open', async () => {
    // Node takes an IPv6 zone id as an address; quiche's socket address does not.
    const r = await runAlone(`
try {
  await QuicEndpoint.connect('fe80::1%lo', 443, 'localhost', cfg);
  console.log('connected');
} catch (e) {
  console.log('rejected: ' + e.message);
}
`);
    assert.match(r.out, /^rejected: /m, r.out);
    assert.ok(r.exitedAlone, 'the process exited on its own (no socket left bound)');
    assert.equal(r.code, 0);
  });

  it('a host name is resolved before the handshake: the connection names an address', async () => {
    const r = await runAlone(`
const { endpoint, connection } = await QuicEndpoint.connect('localhost', 9, 'localhost', cfg);
console.log('peer ' + connection.peer.host);
await endpoint.close();
`);
    assert.match(r.out, /^peer (127\.0\.0\.1|::1)$/m, r.out);
    assert.ok(r.exitedAlone);
    assert.equal(r.code, 0);
  });
});
