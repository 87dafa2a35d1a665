#!/usr/bin/env node
/** One load-generator process: reads LoadOptions as JSON from argv[2], prints a LoadResult. */
import { readFileSync } from 'node:fs';
import { type LoadOptions, runLoad } from './loadgen.js';

const opts = JSON.parse(process.argv[2]) as LoadOptions & { bodyFile?: string; bodyBytes?: number };
if (opts.bodyBytes) opts.body = Buffer.alloc(opts.bodyBytes, 'u');
else if (opts.bodyFile) opts.body = readFileSync(opts.bodyFile);
try {
  const result = await runLoad(opts);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
} catch (e) {
  process.stderr.write(`load generator: ${(e as Error).message}\n`);
  process.exit(1);
}
