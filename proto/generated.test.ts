/**
 * proto/gen must be what `npm run proto` makes from proto/spooky/v1/*.proto today: regenerate
 * into a temporary directory with the same buf and ts-proto versions and compare byte for byte.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files(p, out);
    else out.push(p);
  }
  return out;
}

describe('generated protocol code', () => {
  it('is up to date with the .proto files (run npm run proto)', () => {
    const out = mkdtempSync(join(tmpdir(), 'spooky-proto-'));
    try {
      const template = readFileSync(join(REPO, 'buf.gen.yaml'), 'utf8').replace('out: proto/gen', `out: ${out}`);
      writeFileSync(join(out, 'buf.gen.yaml'), template);
      execFileSync(join(REPO, 'node_modules', '.bin', 'buf'), ['generate', '--template', join(out, 'buf.gen.yaml')], {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const committed = join(REPO, 'proto', 'gen');
      const fresh = files(out).filter((f) => f.endsWith('.ts'));
      assert.ok(fresh.length > 0);
      for (const f of fresh) {
        const rel = relative(out, f);
        assert.equal(readFileSync(join(committed, rel), 'utf8'), readFileSync(f, 'utf8'), `proto/gen/${rel} is stale`);
      }
      assert.equal(files(committed).length, fresh.length, 'proto/gen holds files the .proto files no longer make');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
