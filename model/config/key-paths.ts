// Config key paths in the notation the docs and tests use: `upstream.NAME.backends[].weight`
// (any pool name becomes NAME, a list of maps becomes []). Pure functions over parsed YAML.

/** Every leaf key path a parsed YAML document sets. A list of scalars is one leaf. */
export function yamlLeaves(value: unknown, prefix = '', out: Set<string> = new Set()): Set<string> {
  if (Array.isArray(value) && value.some((v) => typeof v === 'object' && v !== null)) {
    for (const v of value) yamlLeaves(v, `${prefix}[]`, out);
  } else if (isMap(value)) {
    for (const [k, v] of Object.entries(value)) {
      const key = prefix === 'upstream' ? 'NAME' : k;
      yamlLeaves(v, prefix ? `${prefix}.${key}` : key, out);
    }
  } else out.add(prefix);
  return out;
}

/**
 * Sets `value` at every place of `doc` that `path` names and that exists already (NAME: every
 * pool, []: every list item); returns how many it set.
 */
export function setKeyPath(doc: unknown, path: string, value: unknown): number {
  const [head, ...rest] = path.split('.');
  const listed = head.endsWith('[]');
  const key = listed ? head.slice(0, -2) : head;
  if (!isMap(doc)) return 0;
  const keys = key === 'NAME' ? Object.keys(doc) : Object.hasOwn(doc, key) ? [key] : [];
  let set = 0;
  for (const k of keys) {
    if (rest.length === 0 && !listed) {
      doc[k] = value;
      set++;
    } else if (listed) {
      const items = doc[k];
      if (Array.isArray(items)) for (const item of items) set += setKeyPath(item, rest.join('.'), value);
    } else set += setKeyPath(doc[k], rest.join('.'), value);
  }
  return set;
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
