// Keeps docs/configuration.md and the config schema from drifting: every key of the generated JSON
// Schema has a row in the doc, every row names a real key, and every default the schema knows is
// the one the doc states.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { configJsonSchema } from './json-schema.js';
import { ConfigSchema } from './schema.js';

const DOC = join('docs', 'configuration.md');

type JsonSchema = {
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  default?: unknown;
};

interface SchemaKey {
  /** Has no keys of its own (scalars, arrays of scalars, unions). */
  leaf: boolean;
  schema: JsonSchema;
}

// Defaults zod applies but the input-mode JSON Schema cannot carry (the value is transformed
// after parsing); keep in step with schema.ts.
const DEFAULTS_OUTSIDE_JSON_SCHEMA: Record<string, unknown> = {
  'upstream.NAME.backends[].health_check.expected_status': '2xx',
  // Derived from the interval when absent (1000 at the default interval of 5000).
  'upstream.NAME.backends[].health_check.timeout_ms': 1000,
};

function findDoc(): string {
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    for (let dir = start; ; dir = dirname(dir)) {
      if (existsSync(join(dir, DOC))) return join(dir, DOC);
      if (dirname(dir) === dir) break;
    }
  }
  throw new Error(`${DOC} not found above ${fileURLToPath(import.meta.url)} or ${process.cwd()}`);
}

const isObject = (value: unknown): value is JsonSchema => typeof value === 'object' && value !== null;

/** Every key path of the schema: `upstream.NAME` for the pool map, `[]` for list elements. */
function schemaKeys(schema: JsonSchema, prefix = '', out = new Map<string, SchemaKey>()): Map<string, SchemaKey> {
  const children: [string, JsonSchema][] = [];
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    children.push([prefix === '' ? name : `${prefix}.${name}`, child]);
  }
  if (isObject(schema.additionalProperties)) children.push([`${prefix}.NAME`, schema.additionalProperties]);
  if (
    isObject(schema.items) &&
    (schema.items.properties !== undefined || isObject(schema.items.additionalProperties))
  ) {
    // A list of maps: its elements' keys hang off `path[]`.
    schemaKeys(schema.items, `${prefix}[]`, out);
  }
  for (const [path, child] of children) {
    const nested = schemaKeys(child, path, new Map());
    out.set(path, { leaf: nested.size === 0, schema: child });
    for (const [p, k] of nested) out.set(p, k);
  }
  return out;
}

interface DocRow {
  key: string;
  default: string;
  line: number;
}

/** The rows of every `| key | default | notes |` table. */
function docRows(markdown: string): DocRow[] {
  const rows: DocRow[] = [];
  let inTable = false;
  markdown.split('\n').forEach((text, index) => {
    const cells = splitRow(text);
    if (cells === undefined) {
      inTable = false;
    } else if (cells[0] === 'key' && cells[1] === 'default' && cells[2] === 'notes') {
      inTable = true;
    } else if (inTable && !/^:?-+:?$/.test(cells[0])) {
      const key = /^`([^`]+)`$/.exec(cells[0]);
      assert.ok(key, `${DOC}:${index + 1}: the key cell must be one path in backticks, got ${cells[0]}`);
      rows.push({ key: key[1], default: cells[1], line: index + 1 });
    }
  });
  return rows;
}

/** The trimmed cells of a Markdown table row, or undefined for any other line. */
function splitRow(line: string): string[] | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('|') || !trimmed.endsWith('|')) return undefined;
  // A `|` inside backticks belongs to the cell; Markdown tables escape it as `\|`.
  return trimmed
    .slice(1, -1)
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim());
}

/** The doc's default cell without its backticks; undefined for `—` (no default). */
function docDefault(cell: string): string | undefined {
  if (cell === '—') return undefined;
  const code = /^`([^`]*)`$/.exec(cell);
  return code === null ? cell : code[1];
}

/** A default the doc can state: a scalar or a list of scalars; undefined for maps and absence. */
function schemaDefault(value: unknown): unknown {
  const scalar = (v: unknown) => v === null || ['string', 'number', 'boolean'].includes(typeof v);
  return scalar(value) || (Array.isArray(value) && value.every(scalar)) ? value : undefined;
}

/** Strings compare bare (`info`), everything else as JSON (`30000`, `true`, `["GET","HEAD"]`). */
function sameDefault(stated: string, expected: unknown): boolean {
  if (typeof expected === 'string') return stated === expected;
  try {
    assert.deepEqual(JSON.parse(stated), expected);
    return true;
  } catch {
    return false;
  }
}

const show = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value));

const keys = schemaKeys(configJsonSchema() as JsonSchema);
const rows = docRows(readFileSync(findDoc(), 'utf8'));
const documented = new Map(rows.map((row) => [row.key, row]));

test('the doc has tables with key rows', () => {
  assert.ok(rows.length > 50, `expected the ${DOC} tables to list the config keys, found ${rows.length} rows`);
  const twice = rows.filter((row, i) => rows.findIndex((r) => r.key === row.key) !== i).map((r) => r.key);
  assert.deepEqual(twice, [], `keys documented more than once in ${DOC}`);
});

test('every leaf key of the schema is documented', () => {
  const missing = [...keys].filter(([path, k]) => k.leaf && !documented.has(path)).map(([path]) => path);
  assert.deepEqual(missing, [], `${DOC} has no table row for: ${missing.join(', ')}`);
});

test('every documented key exists in the schema', () => {
  const ghosts = rows.filter((row) => !keys.has(row.key)).map((row) => `${row.key} (line ${row.line})`);
  assert.deepEqual(ghosts, [], `${DOC} documents keys the schema does not have: ${ghosts.join(', ')}`);
});

test('every default in the schema is the one the doc states', () => {
  const wrong: string[] = [];
  for (const [path, k] of keys) {
    const expected = schemaDefault(k.schema.default);
    const row = documented.get(path);
    if (!k.leaf || expected === undefined || row === undefined) continue;
    const stated = docDefault(row.default);
    if (stated === undefined || !sameDefault(stated, expected)) {
      wrong.push(`${path} (line ${row.line}): doc says ${stated ?? '—'}, schema says ${show(expected)}`);
    }
  }
  assert.deepEqual(wrong, [], `${DOC} defaults differ from the schema:\n${wrong.join('\n')}`);
});

test('every default the doc states is the schema default', () => {
  const wrong: string[] = [];
  for (const row of rows) {
    const stated = docDefault(row.default);
    const k = keys.get(row.key);
    if (stated === undefined || k === undefined) continue;
    const expected = schemaDefault(k.schema.default) ?? DEFAULTS_OUTSIDE_JSON_SCHEMA[row.key];
    if (expected === undefined || !sameDefault(stated, expected)) {
      wrong.push(
        `${row.key} (line ${row.line}): doc says ${stated}, schema has ${expected === undefined ? 'none' : show(expected)}`,
      );
    }
  }
  assert.deepEqual(wrong, [], `${DOC} states defaults the schema does not have:\n${wrong.join('\n')}`);
});

test('the defaults kept outside the JSON Schema are the ones zod applies', () => {
  const minimal = {
    listen: { tls: { cert: 'cert.pem', key: 'key.pem' } },
    upstream: { web: { backends: [{ id: 'web-1', address: '127.0.0.1:8443', health_check: {} }] } },
  };
  const parsed = ConfigSchema.parse(minimal);
  const applied = {
    'upstream.NAME.backends[].health_check.expected_status':
      parsed.upstream.web.backends[0].health_check?.expected_status,
    'upstream.NAME.backends[].health_check.timeout_ms': parsed.upstream.web.backends[0].health_check?.timeout_ms,
  };
  assert.deepEqual(applied, DEFAULTS_OUTSIDE_JSON_SCHEMA);
});
