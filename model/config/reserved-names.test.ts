// User-chosen names that are also property names of JavaScript objects: `__proto__` is refused
// with its own error (zod drops it from a map, which silently lost the pool), the others are
// ordinary names.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfigText } from './load.js';
import { assembleRuntimeConfig, buildRuntimeConfig } from './runtime.js';

const HEAD = `listen:
  tls: { cert: cert.pem, key: key.pem }
upstream:
`;

const pool = (name: string, prefix: string, id: string, port: number) =>
  `  ${name}:\n    route: { path_prefix: ${prefix} }\n    backends: [{ id: ${id}, address: "http://127.0.0.1:${port}" }]\n`;

describe('reserved names', () => {
  it('refuses a pool named __proto__ with an error at its key, instead of dropping it', () => {
    const text = HEAD + pool('a', '/a', 'a1', 1) + pool('__proto__', '/p', 'p1', 2) + pool('b', '/b', 'b1', 3);
    const r = loadConfigText(text, 'c.yaml');
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.errors.length, 1, JSON.stringify(r.errors));
    const [e] = r.errors;
    assert.equal(e.path, 'upstream.__proto__');
    assert.equal(e.line, 7);
    assert.match(e.message, /pool name "__proto__" is not allowed/);
  });

  it('reports __proto__ together with schema errors elsewhere', () => {
    const text = `${HEAD}${pool('__proto__', '/p', 'p1', 2)}  bad:\n    backends: []\n`;
    const r = loadConfigText(text, 'c.yaml');
    assert.equal(r.ok, false);
    if (r.ok) return;
    const paths = r.errors.map((e) => e.path).sort();
    assert.deepEqual(paths, ['upstream.__proto__', 'upstream.bad.backends']);
  });

  it('keeps constructor, toString and hasOwnProperty as ordinary pool names and backend ids', () => {
    const text =
      HEAD +
      pool('constructor', '/c', 'toString', 1) +
      pool('toString', '/t', 'constructor', 2) +
      pool('hasOwnProperty', '/h', 'valueOf', 3);
    const r = loadConfigText(text, 'c.yaml');
    assert.ok(r.ok, JSON.stringify(r.ok ? [] : r.errors));
    assert.deepEqual(Object.keys(r.config.upstream), ['constructor', 'toString', 'hasOwnProperty']);
    const rt = buildRuntimeConfig(r.config, { baseDir: '/', readPem: () => 'PEM' });
    assert.deepEqual([...rt.pools.keys()], ['constructor', 'toString', 'hasOwnProperty']);
    assert.equal(rt.pools.get('hasOwnProperty')?.backends[0].id, 'valueOf');
    assert.equal(rt.routes.match('x', '/c/1'), 'constructor');
    assert.equal(rt.routes.match('x', '/t'), 'toString');
    assert.equal(rt.routes.match('x', '/h'), 'hasOwnProperty');
    assert.equal(rt.routes.match('x', '/nothing'), undefined);
    // The data plane's copy (decoded snapshot) indexes the same way.
    const again = assembleRuntimeConfig({ ...rt, pools: [...rt.pools.values()] });
    assert.equal(again.pools.size, 3);
  });
});
