// The import rule between the layers (docs/architecture.md, "Layers"): the two planes never import
// each other, both may import model/ and lib/, model/ imports neither plane, and lib/ imports none
// of the three. Pure: callers hand in { path, text } pairs; scripts/layering.test.ts reads the tree.

import { posix } from 'node:path';

/** For each layer (a top-level directory), the layers its files must not import. */
export const FORBIDDEN_IMPORTS: Readonly<Record<string, readonly string[]>> = {
  dataplane: ['controlplane'],
  controlplane: ['dataplane'],
  model: ['dataplane', 'controlplane'],
  lib: ['dataplane', 'controlplane', 'model'],
};

export interface SourceFile {
  /** Repository-relative path with forward slashes, e.g. `dataplane/process.ts`. */
  path: string;
  text: string;
}

export interface LayeringViolation {
  file: string;
  specifier: string;
  from: string;
  to: string;
}

// Static imports and re-exports (`import … from`, `import type … from`, `export … from`, which may
// span lines), side-effect imports (`import '…'`) and dynamic imports (`import('…')`). Anchored at
// a line start so that examples in comments (` * import …`) do not count.
const STATIC_FROM = /^[ \t]*(?:import|export)\b[^;]*?\bfrom\s*(['"])([^'"]+)\1/gm;
const SIDE_EFFECT = /^[ \t]*import\s*(['"])([^'"]+)\1/gm;
const DYNAMIC = /\bimport\s*\(\s*(['"])([^'"]+)\1\s*\)/g;

/** Every module specifier a TypeScript source imports or re-exports, in source order per kind. */
export function importSpecifiers(text: string): string[] {
  const specifiers: string[] = [];
  for (const pattern of [STATIC_FROM, SIDE_EFFECT, DYNAMIC]) {
    for (const match of text.matchAll(pattern)) specifiers.push(match[2]);
  }
  return specifiers;
}

/** The top-level directory a repository path lies in, or undefined for a file at the root. */
export function layerOf(path: string): string | undefined {
  const normal = posix.normalize(path);
  const slash = normal.indexOf('/');
  return slash < 0 ? undefined : normal.slice(0, slash);
}

/** The imports that break the rule; package imports (`node:…`, `zod`) are never layer imports. */
export function layeringViolations(files: Iterable<SourceFile>): LayeringViolation[] {
  const violations: LayeringViolation[] = [];
  for (const file of files) {
    const from = layerOf(file.path);
    if (from === undefined || !Object.hasOwn(FORBIDDEN_IMPORTS, from)) continue;
    const forbidden = FORBIDDEN_IMPORTS[from];
    for (const specifier of importSpecifiers(file.text)) {
      if (!specifier.startsWith('./') && !specifier.startsWith('../')) continue;
      const to = layerOf(posix.join(posix.dirname(file.path), specifier));
      if (to !== undefined && forbidden.includes(to)) violations.push({ file: file.path, specifier, from, to });
    }
  }
  return violations;
}

/** One line per violation, naming the file, the import and the rule it breaks. */
export function describeViolations(violations: readonly LayeringViolation[]): string {
  return violations.map((v) => `${v.file} imports '${v.specifier}': ${v.from}/ must not import ${v.to}/`).join('\n');
}
