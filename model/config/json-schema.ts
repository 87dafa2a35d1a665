// The JSON Schema editors use to validate and complete spooky.yaml, generated from the zod
// definition so the two cannot disagree. `schema/spooky-config.schema.json` is this output,
// committed so editors can point at it; a test fails when it is stale (`npm run schema`).

import { z } from 'zod';
import { ConfigSchema } from './schema.js';

export const SCHEMA_ID = 'https://spooky.invalid/schema/spooky-config.schema.json';

export function configJsonSchema(): Record<string, unknown> {
  // io 'input': describe what may be written in the file (defaults make keys optional).
  const schema = z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any', target: 'draft-7' });
  return {
    ...schema,
    $id: SCHEMA_ID,
    title: 'Spooky configuration',
    description: 'spooky.yaml: see docs/configuration.md',
  };
}

export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
