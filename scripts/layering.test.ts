import assert from 'node:assert/strict';
import { existsSync, globSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { describeViolations, FORBIDDEN_IMPORTS, importSpecifiers, layeringViolations } from './layering.js';

/** The repository root: the nearest directory above this file (or the cwd) with the .ts sources. */
function repositoryRoot(): string {
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    for (let dir = start; ; dir = dirname(dir)) {
      if (existsSync(join(dir, 'scripts', 'layering.ts'))) return dir;
      if (dirname(dir) === dir) break;
    }
  }
  throw new Error(`repository root not found above ${fileURLToPath(import.meta.url)} or ${process.cwd()}`);
}

describe('layering rule', () => {
  it('holds for every .ts file of the planes, the model and lib', () => {
    const root = repositoryRoot();
    const paths = Object.keys(FORBIDDEN_IMPORTS).flatMap((layer) => globSync(`${layer}/**/*.ts`, { cwd: root }));
    // The scan must have seen the files the rule is about, or an empty result would prove nothing.
    for (const known of ['dataplane/process.ts', 'controlplane/control-plane.ts', 'model/config/runtime.ts']) {
      assert.ok(paths.includes(known), `${known} not scanned`);
    }
    const files = paths.map((path) => ({ path, text: readFileSync(join(root, path), 'utf8') }));
    const violations = layeringViolations(files);
    assert.equal(violations.length, 0, `imports across layers:\n${describeViolations(violations)}`);
  });

  it('fails on a dataplane → controlplane import, naming the file and the import', () => {
    const fixture = {
      path: 'dataplane/process.ts',
      text: "import { decodeSnapshot } from '../model/snapshot/codec.js';\nimport { loadConfigFile } from '../controlplane/config/load.js';\n",
    };
    const violations = layeringViolations([fixture]);
    assert.deepEqual(violations, [
      {
        file: 'dataplane/process.ts',
        specifier: '../controlplane/config/load.js',
        from: 'dataplane',
        to: 'controlplane',
      },
    ]);
    assert.equal(
      describeViolations(violations),
      "dataplane/process.ts imports '../controlplane/config/load.js': dataplane/ must not import controlplane/",
    );
  });

  it('fails on controlplane → dataplane, model → either plane and lib → model', () => {
    const violations = layeringViolations([
      {
        path: 'controlplane/xds/server.test.ts',
        text: "import { ControlClient } from '../../dataplane/control/client.js';",
      },
      { path: 'model/config/runtime.ts', text: "import type { Snapshot } from '../../dataplane/snapshot.js';" },
      { path: 'model/router/route-table.ts', text: "export { X } from '../../controlplane/api/types.js';" },
      { path: 'lib/log.ts', text: "import { RouteTable } from '../model/router/route-table.js';" },
    ]);
    assert.deepEqual(
      violations.map((v) => `${v.from}→${v.to}`),
      ['controlplane→dataplane', 'model→dataplane', 'model→controlplane', 'lib→model'],
    );
  });

  it('allows the planes to import model/, lib/ and packages, and leaves cli/, e2e/ and integration/ free', () => {
    const violations = layeringViolations([
      {
        path: 'dataplane/process.ts',
        text: [
          "import { readFileSync } from 'node:fs';",
          "import { z } from 'zod';",
          "import { loadConfigFile } from '../model/config/load.js';",
          "import { createLogger } from '../lib/log.js';",
          "import { Dataplane } from './dataplane.js';",
        ].join('\n'),
      },
      { path: 'controlplane/main.ts', text: "import { buildBootstrapConfig } from '../model/config/runtime.js';" },
      {
        path: 'cli/main.ts',
        text: "import { x } from '../controlplane/main.js';\nimport { y } from '../dataplane/main.js';",
      },
      {
        path: 'integration/xds-server.test.ts',
        text: "import { ControlClient } from '../dataplane/control/client.js';",
      },
    ]);
    assert.deepEqual(violations, []);
  });

  it('reads every import form: multi-line, type-only, re-export, side-effect and dynamic', () => {
    const text = [
      '// import { commented } from "../controlplane/nope.js";',
      '/**',
      " * import { alsoCommented } from '../controlplane/nope.js';",
      ' */',
      'import {',
      '  a,',
      "  type B, // a comment with a quote: don't",
      "} from '../controlplane/multi.js';",
      "import type { T } from '../controlplane/type-only.js';",
      "export * from '../controlplane/re-export.js';",
      "import '../controlplane/side-effect.js';",
      "const lazy = await import('../controlplane/dynamic.js');",
    ].join('\n');
    assert.deepEqual(importSpecifiers(text).sort(), [
      '../controlplane/dynamic.js',
      '../controlplane/multi.js',
      '../controlplane/re-export.js',
      '../controlplane/side-effect.js',
      '../controlplane/type-only.js',
    ]);
  });
});
