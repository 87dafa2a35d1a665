// Loading: YAML text → validated Config, or every problem at once with its YAML path and the line
// and column of the offending key (or of its nearest existing parent when the key is missing).

import { readFileSync } from 'node:fs';
import { type Document, isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { checkCrossFieldRules } from './cross-field.js';
import { type Config, ConfigSchema } from './schema.js';

export interface ConfigIssue {
  /** YAML path such as `upstream.api.backends[1].weight`; '' for the whole file. */
  path: string;
  line?: number;
  column?: number;
  message: string;
}

export type LoadResult = { ok: true; config: Config } | { ok: false; errors: ConfigIssue[] };

type Segment = string | number;

// ---------------------------------------------------------------- messages

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value';
  if (typeof value === 'string') {
    const text = JSON.stringify(value);
    return text.length > 60 ? `${text.slice(0, 57)}..."` : text;
  }
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (typeof value === 'object') return Object.keys(value).length === 0 ? 'an empty map' : 'a map';
  return String(value);
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a map',
  record: 'a map',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
};

// Fallback wording for issues whose schema sets no message of its own.
const errorMap: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'invalid_type':
      return `expected ${TYPE_NAMES[iss.expected] ?? iss.expected}`;
    case 'invalid_value':
      return `expected ${iss.values.length === 1 ? '' : 'one of '}${iss.values.map((v) => String(v)).join(', ')}`;
    case 'too_small':
      return iss.origin === 'array' ? `expected at least ${iss.minimum} item(s)` : `expected at least ${iss.minimum}`;
    case 'too_big':
      return iss.origin === 'array' ? `expected at most ${iss.maximum} item(s)` : `expected at most ${iss.maximum}`;
    case 'invalid_format':
      return `expected ${iss.format === 'regex' ? `text matching ${iss.pattern}` : `a valid ${iss.format}`}`;
    default:
      return undefined;
  }
};

// ---------------------------------------------------------------- unknown keys

interface LooseDef {
  type: string;
  innerType?: LooseSchema;
  in?: LooseSchema;
  shape?: Record<string, LooseSchema>;
  valueType?: LooseSchema;
  element?: LooseSchema;
}
interface LooseSchema {
  _zod: { def: LooseDef };
}

const WRAPPERS = new Set(['optional', 'default', 'prefault', 'nullable', 'readonly', 'nonoptional', 'catch']);

function unwrap(schema: LooseSchema): LooseDef {
  let def = schema._zod.def;
  for (;;) {
    if (WRAPPERS.has(def.type) && def.innerType !== undefined) def = def.innerType._zod.def;
    else if (def.type === 'pipe' && def.in !== undefined) def = def.in._zod.def;
    else return def;
  }
}

/** Keys the object schema at `path` accepts. */
function allowedKeysAt(path: readonly Segment[]): string[] {
  let def = unwrap(ConfigSchema as unknown as LooseSchema);
  for (const seg of path) {
    const next = def.type === 'object' ? def.shape?.[String(seg)] : def.type === 'record' ? def.valueType : def.element;
    if (next === undefined) return [];
    def = unwrap(next);
  }
  return def.type === 'object' && def.shape !== undefined ? Object.keys(def.shape) : [];
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push([i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

function unknownKeyMessage(key: string, allowed: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of allowed) {
    const distance = editDistance(key.toLowerCase(), candidate);
    if (distance < bestDistance && distance < candidate.length) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best !== undefined) return `unknown key ${JSON.stringify(key)}; did you mean ${best}?`;
  return allowed.length > 0
    ? `unknown key ${JSON.stringify(key)}; expected one of ${allowed.join(', ')}`
    : `unknown key ${JSON.stringify(key)}`;
}

// ---------------------------------------------------------------- positions

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(String(seg))) out += out === '' ? String(seg) : `.${String(seg)}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

function start(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range?.[0];
}

/**
 * Offset of the key (or sequence item) the path ends at; for a path that does not exist, the
 * deepest one that does.
 */
function locate(doc: Document, path: readonly PropertyKey[]): number {
  let node: unknown = doc.contents;
  let offset = start(node) ?? 0;
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg));
      if (pair === undefined) return offset;
      offset = start(pair.key) ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
      node = node.items[seg];
      offset = start(node) ?? offset;
    } else {
      return offset;
    }
  }
  return offset;
}

function valueAt(data: unknown, path: readonly PropertyKey[]): { found: boolean; value: unknown } {
  let value = data;
  for (const seg of path) {
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, seg)) return { found: false, value };
    value = (value as Record<PropertyKey, unknown>)[seg];
  }
  return { found: true, value };
}

// ---------------------------------------------------------------- loading

function issuesFromZod(
  issues: readonly z.core.$ZodIssue[],
  doc: Document,
  lines: LineCounter,
  data: unknown,
  fileName: string,
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const push = (path: readonly PropertyKey[], message: string) => {
    const { line, col } = lines.linePos(locate(doc, path));
    out.push({ path: formatPath(path), line: Math.max(line, 1), column: Math.max(col, 1), message });
  };
  for (const iss of issues) {
    if (iss.code === 'unrecognized_keys') {
      const allowed = allowedKeysAt(iss.path as Segment[]);
      for (const key of iss.keys) push([...iss.path, key], unknownKeyMessage(key, allowed));
      continue;
    }
    if (iss.code === 'invalid_key') {
      const key = iss.path[iss.path.length - 1];
      push(iss.path, `${iss.issues[0]?.message ?? iss.message}, got ${describe(key)}`);
      continue;
    }
    let message = iss.message;
    const { found, value } = valueAt(data, iss.path);
    if (iss.path.length === 0 && (data === null || data === undefined)) {
      message = `${fileName} is empty; expected a map with at least listen and upstream`;
    } else if (!found && iss.code === 'invalid_type') {
      message = `required key is missing; ${message}`;
    } else if (message.startsWith('expected ') && !message.includes(', got ')) {
      message = `${message}, got ${describe(value)}`;
    }
    push(iss.path, message);
  }
  return out;
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = `${issue.path}\n${issue.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export function loadConfigText(text: string, fileName: string): LoadResult {
  const lines = new LineCounter();
  // merge: `<<: *defaults` lets operators share health_check blocks between backends.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
  if (doc.errors.length > 0) {
    // The tree is unreliable after a syntax error; schema messages would only add noise.
    const errors = doc.errors.map((err): ConfigIssue => {
      const { line, col } = lines.linePos(err.pos[0]);
      return { path: '', line: Math.max(line, 1), column: Math.max(col, 1), message: `YAML: ${err.message}` };
    });
    return { ok: false, errors };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return { ok: false, errors: [{ path: '', message: `YAML: ${(err as Error).message}` }] };
  }
  const result = ConfigSchema.safeParse(data, { error: errorMap });
  if (result.success) return { ok: true, config: result.data };
  const issues: z.core.$ZodIssue[] = [...result.error.issues];
  // zod skips the cross-field rule when a field aborted (a non-integer number does); run it on
  // the raw data so those problems are still reported in the same pass.
  checkCrossFieldRules(data, (path, message) => issues.push({ code: 'custom', path, message }));
  const errors = dedupe(issuesFromZod(issues, doc, lines, data, fileName));
  errors.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity) || (a.column ?? 0) - (b.column ?? 0));
  return { ok: false, errors };
}

export function loadConfigFile(path: string): LoadResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    return { ok: false, errors: [{ path: '', message: `cannot read ${path}: ${reason}` }] };
  }
  return loadConfigText(text, path);
}

/** One line per issue: `config.yaml:12:9: upstream.api.backends[1].weight: expected ...`. */
export function formatIssues(fileName: string, issues: readonly ConfigIssue[]): string {
  return issues
    .map((issue) => {
      const where = issue.line === undefined ? fileName : `${fileName}:${issue.line}:${issue.column ?? 1}`;
      return issue.path === '' ? `${where}: ${issue.message}` : `${where}: ${issue.path}: ${issue.message}`;
    })
    .join('\n');
}
