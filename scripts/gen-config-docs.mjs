#!/usr/bin/env node
// Rewrites the generated blocks of README.md (flag tables) and docs/configuration.md (reference)
// from the settings schema (src/config/schema.ts), via the built dist/src/config/config-docs.js.
// Run with `npm run gen:config-docs` (builds first), then review and commit the diff;
// test/unit/config-docs.test.ts fails until the committed files match the schema.

import { readFileSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import { URL, fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { GENERATED_DOCS, replaceGenerated } = await import(new URL('../dist/src/config/config-docs.js', import.meta.url).href);

for (const { file, block, make } of GENERATED_DOCS) {
  const path = root + file;
  const before = readFileSync(path, 'utf8');
  const after = replaceGenerated(before, block, make());
  if (after !== before) {
    writeFileSync(path, after);
    process.stdout.write(`rewrote ${file} (${block})\n`);
  } else {
    process.stdout.write(`${file} (${block}) is up to date\n`);
  }
}
