/**
 * JSON.parse, except that an object with the same key twice is an error (JSON.parse keeps the
 * last one silently; log consumers such as Loki or jq may keep either).
 */
export function parseStrictJson(text: string): unknown {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at offset ${i} of ${JSON.stringify(text.slice(0, 200))}`);
  };
  const ws = () => {
    while (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r') i++;
  };
  const expect = (c: string) => {
    ws();
    if (text[i] !== c) fail(`expected '${c}'`);
    i++;
  };
  const string = (): string => {
    const start = i;
    i++;
    while (text[i] !== '"') {
      if (i >= text.length) fail('unterminated string');
      i += text[i] === '\\' ? 2 : 1;
    }
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '"') return string();
    if (c === '{') {
      i++;
      const out: Record<string, unknown> = {};
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return out;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a key');
        const key = string();
        if (seen.has(key)) fail(`duplicate key ${JSON.stringify(key)}`);
        seen.add(key);
        expect(':');
        out[key] = value();
        ws();
        if (text[i] !== ',') {
          expect('}');
          return out;
        }
        i++;
      }
    }
    if (c === '[') {
      i++;
      const out: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return out;
      }
      for (;;) {
        out.push(value());
        ws();
        if (text[i] !== ',') {
          expect(']');
          return out;
        }
        i++;
      }
    }
    // A number, true, false or null: the longest run up to a delimiter, parsed by JSON.parse.
    const literal = /^[^,}\]\s]+/.exec(text.slice(i))?.[0] ?? fail('expected a value');
    i += literal.length;
    return JSON.parse(literal);
  };
  const out = value();
  ws();
  if (i !== text.length) fail('trailing characters');
  return out;
}
