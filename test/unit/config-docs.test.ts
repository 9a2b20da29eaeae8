// The generated documentation matches the schema (like golden files: this test never writes;
// `npm run gen:config-docs` rewrites the marked blocks on purpose, then the diff is reviewed).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { GENERATED_DOCS, replaceGenerated } from '../../src/config/config-docs.js';
import { helpText } from '../../src/config/flags.js';
import { SETTINGS, envNames } from '../../src/config/schema.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

test('README.md and docs/configuration.md hold exactly what the schema generates', () => {
  for (const { file, block, make } of GENERATED_DOCS) {
    const committed = readFileSync(join(ROOT, file), 'utf8');
    const expected = replaceGenerated(committed, block, make());
    assert.equal(committed, expected, `${file} (${block}) drifted from src/config/schema.ts: run \`npm run gen:config-docs\` and review the diff`);
  }
});

test('every setting is in the generated reference, and every flag and variable in --help', () => {
  const reference = GENERATED_DOCS.find((d) => d.block === 'reference')!.make();
  const help = helpText('0.0.0');
  for (const s of SETTINGS) {
    const key = s.name.startsWith('dashboard.') ? s.name.slice('dashboard.'.length) : s.name;
    const written = s.notInFile ? `\`--${key}` : s.name.includes('.') ? `\`[dashboard] ${key}` : `\`${key}`;
    assert.ok(reference.includes(written), `${s.name} in docs/configuration.md`);
    if (s.flag === 'none') for (const e of envNames(s)) assert.ok(help.includes(e), `${e} in --help`);
    else assert.ok(help.includes(s.flag === 'negated' ? `--no-${s.name}` : `--${s.name}`), `${s.name} in --help`);
  }
});

test('a missing marker is an error, not a silent append', () => {
  assert.throws(() => replaceGenerated('no markers here', 'flags', 'x'), /markers for 'flags' are missing/);
});

test('docs/switchyard.toml mentions every setting that a file can hold', () => {
  const text = readFileSync(join(ROOT, 'docs/switchyard.toml'), 'utf8');
  for (const s of SETTINGS) {
    if (s.notInFile) continue;
    const key = s.name === 'dashboard' ? 'enabled' : s.name.startsWith('dashboard.') ? s.name.slice('dashboard.'.length) : s.name;
    const forms = s.secret ? [key, `${key}-file`] : [key];
    assert.ok(forms.some((k) => new RegExp(`^(# )?${k.replace(/[.-]/g, '\\$&')} = `, 'm').test(text)), `${s.name} in docs/switchyard.toml`);
  }
});
