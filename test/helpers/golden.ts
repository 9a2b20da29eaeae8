// Golden files (test/golden/): the expected output of a pure translator, kept in the repository.
//
// Contract: a missing or different golden file FAILS, everywhere (CI or not). They are written
// only on purpose, by `npm run golden` (UPDATE_GOLDEN=1), and the diff is then reviewed before a
// commit: a test never produces the file it compares against.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** test/golden in the source tree (tests run from dist/test/...). */
export const GOLDEN_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../../test/golden');

const updating = process.env.UPDATE_GOLDEN === '1';

/** Compare `actual` with the golden file `name` (relative to test/golden) using `compare`. */
function check(name: string, actual: string, compare: (actual: string, expected: string, msg: string) => void): void {
  const file = join(GOLDEN_DIR, name);
  if (updating) {
    writeFileSync(file, actual);
    return;
  }
  if (!existsSync(file)) assert.fail(`golden file ${file} is missing (write it on purpose with \`npm run golden\`, then review it)`);
  compare(actual, readFileSync(file, 'utf8'), `${name} differs from ${file} (\`npm run golden\` to rewrite it on purpose, then review the diff)`);
}

/** The exact text must equal the golden file. */
export function expectGoldenText(name: string, actual: string): void {
  check(name, actual, (a, e, msg) => assert.equal(a, e, msg));
}

/** The JSON value must deep-equal the golden file's (written pretty-printed). */
export function expectGoldenJson(name: string, value: unknown): void {
  check(name, JSON.stringify(value, null, 2) + '\n', (a, e, msg) => assert.deepEqual(JSON.parse(a), JSON.parse(e), msg));
}
