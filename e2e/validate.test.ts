/**
 * `spooky validate` and `spooky schema` as an operator runs them: the real CLI process, the
 * shipped examples, real certificate files.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { generateSelfSigned } from '../cli/certs.js';
import { configJsonSchema } from '../model/config/json-schema.js';
import { yamlLeaves } from '../model/config/key-paths.js';
import { DIST, REPO, run, tempDir } from './support/harness.js';

const CLI = join(DIST, 'cli', 'main.js');
const spooky = (...args: string[]) => run(process.execPath, [CLI, ...args]);
const example = (name: string) => readFileSync(join(REPO, 'deploy', 'examples', name), 'utf8');

/** Every leaf key path of the JSON Schema (`upstream.NAME.backends[].weight` style). */
function schemaLeaves(node: Record<string, unknown>, prefix: string, out: string[]): string[] {
  const props = node.properties as Record<string, Record<string, unknown>> | undefined;
  const extra = node.additionalProperties;
  const items = node.items as Record<string, unknown> | undefined;
  if (props) for (const [k, v] of Object.entries(props)) schemaLeaves(v, prefix ? `${prefix}.${k}` : k, out);
  else if (extra && typeof extra === 'object') schemaLeaves(extra as Record<string, unknown>, `${prefix}.NAME`, out);
  else if (items?.properties) schemaLeaves(items, `${prefix}[]`, out);
  else out.push(prefix);
  return out;
}

describe('spooky validate and spooky schema', () => {
  let dir: string;
  let cert: { certFile: string; keyFile: string };

  before(() => {
    dir = tempDir('spooky-validate-');
    cert = generateSelfSigned(join(dir, 'certs'));
  });
  after(() => {});

  /** An example with its /etc/spooky/certs paths pointed at real files. */
  function withRealCerts(name: string): string {
    const text = example(name)
      .replaceAll('/etc/spooky/certs/fullchain.pem', cert.certFile)
      .replaceAll('/etc/spooky/certs/privkey.pem', cert.keyFile);
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  }

  it('accepts the seed production config unchanged, with real certificate paths', async () => {
    const r = await spooky('validate', withRealCerts('production.yaml'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /production\.yaml: ok: 2 listeners \(h3 udp 0\.0\.0\.0:443, h1\/h2 tcp 0\.0\.0\.0:443\), 2 pools, 3 backends, policies: round-robin ×2\n$/,
    );
    assert.equal(r.stderr, '');
  });

  it('reports missing certificate files with line, column and what to do, exit 1', async () => {
    const r = await spooky('validate', join(REPO, 'deploy', 'examples', 'production.yaml'));
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.match(
      lines[0],
      /production\.yaml:9:5: listen\.tls\.cert: certificate file .*: no such file .*; fix the path/,
    );
    assert.match(lines[1], /production\.yaml:10:5: listen\.tls\.key: private key file .*: no such file/);
    assert.match(lines[2], /2 errors; nothing was applied$/);
  });

  it('--no-file-checks validates the shape alone', async () => {
    const r = await spooky('validate', '--no-file-checks', join(REPO, 'deploy', 'examples', 'production.yaml'));
    assert.equal(r.code, 0, r.stderr);
  });

  it('the reference example sets every key of the schema and validates', async () => {
    const leaves = schemaLeaves(configJsonSchema(), '', []);
    const set = yamlLeaves(parse(example('reference.yaml')));
    // auth_token and auth_token_file exclude each other; a hash key needs consistent-hash, which
    // the top-level fallback does not use (the api pool shows it).
    const alternatives = ['observability.control_api.auth_token', 'load_balancing.key'];
    const missing = leaves.filter((k) => !set.has(k) && !alternatives.includes(k));
    assert.deepEqual(missing, [], 'keys the reference example does not show');
    const r = await spooky('validate', '--no-file-checks', join(REPO, 'deploy', 'examples', 'reference.yaml'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /3 pools, 4 backends, policies: consistent-hash ×1, round-robin ×2/);
  });

  it('the development example validates once its certificate exists', async () => {
    const devDir = tempDir('spooky-dev-example-');
    writeFileSync(join(devDir, 'development.yaml'), example('development.yaml'));
    generateSelfSigned(join(devDir, 'dev-certs'));
    const r = await spooky('validate', join(devDir, 'development.yaml'));
    assert.equal(r.code, 0, r.stderr);
  });

  it('--json prints errors and warnings as data', async () => {
    const file = join(dir, 'mixed.yaml');
    copyFileSync(cert.certFile, join(dir, 'c.pem'));
    writeFileSync(
      file,
      `listen:\n  tls: { cert: c.pem, key: missing.pem }\nupstream:\n  web:\n    backends:\n      - { id: w, address: "http://127.0.0.1:1", wieght: 3 }\nupstream_tls:\n  verify: false\n`,
    );
    const r = await spooky('validate', '--json', file);
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout);
    assert.equal(out.ok, false);
    assert.deepEqual(out.errors, [
      {
        path: 'upstream.web.backends[0].wieght',
        line: 6,
        column: 49,
        message: 'unknown key "wieght"; did you mean weight?',
      },
    ]);
    // File checks run only on a config whose shape is valid.
    assert.deepEqual(out.warnings, []);
    writeFileSync(file, readFileSync(file, 'utf8').replace(', wieght: 3', ''));
    const second = JSON.parse((await spooky('validate', '--json', file)).stdout);
    assert.deepEqual(
      second.errors.map((e: { path: string }) => e.path),
      ['listen.tls.key'],
    );
    assert.deepEqual(
      second.warnings.map((e: { path: string; line: number }) => [e.path, e.line]),
      [['upstream_tls.verify', 8]],
    );
  });

  it('warns about a certificate that expires within 14 days, still exit 0', async () => {
    const soon = generateSelfSigned(join(dir, 'soon'), 5);
    const file = join(dir, 'soon.yaml');
    writeFileSync(
      file,
      `listen:\n  tls: { cert: ${soon.certFile}, key: ${soon.keyFile} }\nupstream:\n  web:\n    backends: [{ id: w, address: "http://127.0.0.1:1" }]\n`,
    );
    const r = await spooky('validate', file);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /soon\.yaml:2:\d+: warning: listen\.tls\.cert: .*expires on .* \(in [45] days\)/);
  });

  it('exits 2 on usage errors', async () => {
    assert.equal((await spooky('validate')).code, 2);
    const r = await spooky('validate', join(dir, 'does-not-exist.yaml'));
    assert.equal(r.code, 2);
    assert.match(r.stderr, /does-not-exist\.yaml: no such file/);
  });

  it('`spooky schema` prints the committed JSON Schema (regenerate with npm run schema)', async () => {
    const r = await spooky('schema');
    assert.equal(r.code, 0, r.stderr);
    const committed = JSON.parse(readFileSync(join(REPO, 'schema', 'spooky-config.schema.json'), 'utf8'));
    assert.deepEqual(JSON.parse(r.stdout), committed, 'schema/spooky-config.schema.json is stale: run npm run schema');
  });
});
