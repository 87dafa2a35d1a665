// zod issues → ConfigIssue: the YAML path, the line and column of the key in the file, and a
// message that says what was expected, what was found and, for near misses, what was meant.

import { type Document, isAlias, isMap, isScalar, isSeq, type LineCounter } from 'yaml';
import type { z } from 'zod';
import { ConfigSchema } from './schema.js';

export interface ConfigIssue {
  /** YAML path such as `upstream.api.backends[1].weight`; '' for the whole file. */
  path: string;
  line?: number;
  column?: number;
  message: string;
}

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
export const errorMap: z.core.$ZodErrorMap = (iss) => {
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
export function locate(doc: Document, path: readonly PropertyKey[]): number {
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

// ---------------------------------------------------------------- translation

export function issuesFromZod(
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
    } else if (iss.path.length === 0) {
      message = `expected the file to be a map with at least listen and upstream, got ${describe(value)}`;
    } else if (!found && iss.code === 'invalid_type') {
      message = `required key is missing; ${MISSING_HINTS[genericPath(iss.path)] ?? message}`;
    } else if (message.startsWith('expected ') && !message.includes(', got ')) {
      message = `${message}, got ${describe(value)}${valueHint(iss, value)}`;
    }
    push(iss.path, message);
  }
  return withoutMisspeltRequired(out);
}

/** `upstream.api.backends[0].id` → `upstream.*.backends[].id`, the key MISSING_HINTS uses. */
function genericPath(path: readonly PropertyKey[]): string {
  return formatPath(path.map((seg, i) => (i === 1 && path[0] === 'upstream' ? '*' : seg))).replace(/\[\d+\]/g, '[]');
}

// What to add when a required key is missing, in the operator's words.
const MISSING_HINTS: Record<string, string> = {
  listen: 'add listen: with at least tls.cert and tls.key',
  'listen.tls': 'add tls: with cert (the PEM certificate chain, leaf first) and key (the PEM private key)',
  'listen.tls.cert': 'add cert: the path of the PEM certificate chain (leaf first)',
  'listen.tls.key': 'add key: the path of the PEM private key',
  upstream: 'add upstream: with at least one pool (name: { backends: [...] })',
  'upstream.*.backends': 'add backends: a list with at least one { id, address }',
  'upstream.*.backends[].id': 'add id: a name for this backend, unique in the file',
  'upstream.*.backends[].address': 'add address: host:port, https://host[:port] or http://host[:port]',
};

/** A hint after "expected X, got Y" when the value is close to something valid. */
function valueHint(iss: z.core.$ZodIssue, value: unknown): string {
  if (iss.code === 'invalid_value' && typeof value === 'string') {
    const options = iss.values.filter((v): v is string => typeof v === 'string');
    const normal = value.toLowerCase().replace(/_/g, '-');
    // Short values (h3 for h2) are different words, not typos.
    const near =
      options.find((o) => o === normal) ?? options.find((o) => o.length >= 5 && editDistance(normal, o) <= 2);
    if (near !== undefined) return `; did you mean ${near}?`;
  }
  const key = String(iss.path[iss.path.length - 1] ?? '');
  const duration = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)\s*$/.exec(value) : null;
  if (duration && (key.endsWith('_ms') || key === 'interval')) {
    const factor = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 }[duration[2]] ?? 1;
    return `; times are plain numbers of milliseconds: write ${Math.round(Number(duration[1]) * factor)}`;
  }
  return '';
}

/**
 * `upstreams:` for `upstream:` is one mistake: keep "did you mean upstream?" and drop the
 * "required key is missing" it also causes.
 */
function withoutMisspeltRequired(issues: ConfigIssue[]): ConfigIssue[] {
  const meant = new Set<string>();
  for (const i of issues) {
    const m = /; did you mean ([\w-]+)\?$/.exec(i.message);
    if (m && i.message.startsWith('unknown key')) meant.add(`${i.path.replace(/(^|\.)[^.[]+$/, '$1')}${m[1]}`);
  }
  return issues.filter((i) => !(i.message.startsWith('required key is missing') && meant.has(i.path)));
}

export function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = `${issue.path}\n${issue.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The files a valid config names, checked (see files.ts); issues carry YAML paths. */
