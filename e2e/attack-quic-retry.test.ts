/**
 * Stateless Retry (performance.quic_retry: always) against the running data plane: real clients
 * follow it, and Initials carrying forged, foreign, replayed-from-elsewhere or expired tokens get
 * no answer at all (RFC 9000 §8.1.2–8.1.4; Spooky drops them rather than closing).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  mintRetryToken,
  newRetryTokenKey,
  RETRY_TOKEN_LEN,
  RETRY_TOKEN_LIFETIME_MS,
  RETRY_TOKEN_MARKER,
} from '../dataplane/quic/retry-token.js';
import { type DemoBackend, startDemoBackend } from '../lib/demo-backend.js';
import { dataplaneConfig, gtlsclient, gtlsStatuses, type RunningDataplane, startDataplane } from './support/harness.js';
import { longHeaderType, openInitial, parseRetry, sealInitial } from './support/initial-packet.js';
import { InitialProbe } from './support/initial-probe.js';

/** How long a refused Initial is watched for an answer (an accepted one is answered in milliseconds). */
const SILENCE_MS = 1500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('QUIC Retry (quic_retry: always)', () => {
  let backend: DemoBackend;
  let dp: RunningDataplane;
  const probes: InitialProbe[] = [];

  before(async () => {
    backend = await startDemoBackend('a');
    dp = await startDataplane(
      dataplaneConfig(
        `  only:
    route: { path_prefix: / }
    backends:
      - { id: only-1, address: "${backend.origin}" }
`,
        'performance:\n  quic_retry: always\n',
      ),
    );
  });

  after(async () => {
    for (const p of probes) p.close();
    await dp?.stop();
    await backend?.close();
  });

  async function probe(host = '127.0.0.1'): Promise<InitialProbe> {
    const p = await InitialProbe.open(dp.port, host);
    probes.push(p);
    return p;
  }

  /** A first Initial from `p`, the Retry it draws, and the client's next Initial carrying the token. */
  async function tokenInitial(p: InitialProbe): Promise<Buffer> {
    await p.send(p.firstInitial());
    const [retry] = await p.waitReplies(1, 3000);
    assert.ok(retry, 'the server answered the first Initial');
    assert.equal(longHeaderType(retry), 3, 'with a Retry');
    return p.followRetry(retry);
  }

  it('gtlsclient follows the Retry and gets 200', async () => {
    const r = await gtlsclient(dp.port, [`https://localhost:${dp.port}/`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(gtlsStatuses(r.stderr + r.stdout), [200]);
  });

  it('answers an Initial without a token with one Retry only', async () => {
    const p = await probe();
    const initial = p.firstInitial();
    await p.send(initial);
    await p.waitReplies(1, 3000);
    await sleep(SILENCE_MS);
    assert.equal(p.replies.length, 1);
    assert.equal(longHeaderType(p.replies[0]), 3);
    assert.ok(p.bytesReceived <= 3 * initial.length, `${p.bytesReceived} bytes for ${initial.length}`);
    const { token } = parseRetry(p.replies[0]);
    assert.ok(token.length > 0, 'the Retry carries a token');
  });

  it('refuses a token replayed from another address or port, and accepts it from its own', async () => {
    const a = await probe();
    const withToken = await tokenInitial(a);
    const otherAddress = await probe('127.0.0.2');
    const otherPort = await probe();
    await otherAddress.send(withToken);
    await otherPort.send(withToken);
    await sleep(SILENCE_MS);
    assert.equal(otherAddress.replies.length, 0, 'nothing to another address');
    assert.equal(otherPort.replies.length, 0, 'nothing to another port');
    // The same packet, opened and sealed again by the test's own code, from the address the token
    // was issued to: the handshake goes on (this also proves the resealing below is sound).
    await a.send(sealInitial(openInitial(withToken)));
    const replies = await a.waitReplies(2, 3000);
    assert.equal(replies.length, 2, 'the server answered the Initial with the token');
    assert.equal(longHeaderType(replies[1]), 0, 'with its Initial (ServerHello)');
  });

  it('refuses a forged token and a token sealed with another key', async () => {
    for (const forge of ['random', 'foreign'] as const) {
      const p = await probe();
      const packet = openInitial(p.firstInitial());
      const token =
        forge === 'random'
          ? Buffer.concat([Buffer.from([RETRY_TOKEN_MARKER]), randomBytes(RETRY_TOKEN_LEN - 1)])
          : mintRetryToken(newRetryTokenKey(), p.local, packet.dcid, packet.dcid, performance.now());
      await p.send(sealInitial({ ...packet, token }));
      await sleep(SILENCE_MS);
      assert.equal(p.replies.length, 0, `no answer to a ${forge} token`);
    }
  });

  it(`refuses a token older than ${RETRY_TOKEN_LIFETIME_MS} ms`, async () => {
    const p = await probe();
    const withToken = await tokenInitial(p);
    await sleep(RETRY_TOKEN_LIFETIME_MS + 500);
    await p.send(withToken);
    await sleep(SILENCE_MS);
    assert.equal(p.replies.length, 1, 'only the Retry, nothing after the expired token');
  });

  it('counts Retries sent, tokens validated and tokens refused', async () => {
    await dp.stop();
    const stopped = dp.logs.find((l) => l.msg === 'stopped') as { retries?: Record<string, number> } | undefined;
    const r = stopped?.retries ?? {};
    assert.ok((r.sent ?? 0) >= 4, JSON.stringify(r));
    assert.ok((r.validated ?? 0) >= 2, JSON.stringify(r));
    assert.ok((r.token_wrong_address ?? 0) >= 2, JSON.stringify(r));
    assert.ok((r.token_invalid ?? 0) >= 2, JSON.stringify(r));
    assert.ok((r.token_expired ?? 0) >= 1, JSON.stringify(r));
  });
});
