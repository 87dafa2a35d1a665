// YAML syntax errors reworded as what to change, at the most useful position: the parser's own
// messages ("Nested mappings are not allowed in compact mappings") name its grammar, not the fix.

import type { YAMLError } from 'yaml';

/** Where the first line with an unbalanced double quote opens it (an unclosed string). */
function unclosedQuote(text: string): number | undefined {
  let offset = 0;
  for (const line of text.split('\n')) {
    let open = -1;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (open < 0 && c === '#' && (i === 0 || /\s/.test(line[i - 1]))) break;
      if (c === '\\' && open >= 0) i++;
      else if (c === '"') open = open < 0 ? i : -1;
    }
    if (open >= 0) return offset + open;
    offset += line.length + 1;
  }
  return undefined;
}

/** The parser's message reworded as what to change, at the most useful offset. */
export function explainYamlError(err: YAMLError, text: string): { offset: number; message: string } {
  const offset = err.pos[0];
  switch (err.code) {
    case 'DUPLICATE_KEY': {
      const key = /^[^:\s]+/.exec(text.slice(offset))?.[0] ?? '';
      return { offset, message: `key ${JSON.stringify(key)} appears twice in the same map; keep one` };
    }
    case 'BAD_INDENT':
      return {
        offset,
        message: 'this line is indented differently from the keys next to it; keys of one map start at the same column',
      };
    case 'TAB_AS_INDENT':
      return { offset, message: 'a tab is used for indentation; YAML allows spaces only' };
    case 'BLOCK_AS_IMPLICIT_KEY':
    case 'MULTILINE_IMPLICIT_KEY':
      return {
        offset,
        message:
          'the next line is indented deeper than this key, so it reads as part of this value; keys of one map start at the same column',
      };
    case 'MISSING_CHAR':
      if (/quote/.test(err.message)) {
        const at = unclosedQuote(text);
        if (at !== undefined)
          return { offset: at, message: 'this string has no closing "; add it at the end of the value' };
      }
      return { offset, message: err.message };
    default:
      return { offset, message: err.message };
  }
}
