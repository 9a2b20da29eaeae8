// Documentation generated from the settings schema: README.md's flag tables and the reference in
// docs/configuration.md, each between BEGIN/END GENERATED markers (the text around them is written
// by hand). `npm run gen:config-docs` rewrites the marked blocks; test/unit/config-docs.test.ts
// fails when a committed file differs from what this module makes (it never writes).

import { SECTIONS, SETTINGS, defaultText, envNames, envName, secretFileKey, type Setting } from './schema.js';

const cell = (s: string): string => s.replace(/\|/g, '\\|');
const code = (s: string): string => (s === '' ? '' : `\`${cell(s)}\``);

function flagOf(s: Setting): string {
  if (s.flag === 'none') return '';
  if (s.flag === 'negated') return `--no-${s.name}`;
  if (s.flag === 'switch') return `--${s.name}`;
  return `--${s.name} <${s.arg ?? 'value'}>`;
}

function fileKeyOf(s: Setting): string {
  if (s.notInFile) return '';
  const key = s.name.startsWith('dashboard.') ? `[dashboard] ${s.name.slice('dashboard.'.length)}` : s.name;
  return s.secret ? `${key}, ${secretFileKey(key)}` : key;
}

function envOf(s: Setting): string {
  const names = envNames(s);
  if (s.secret) names.push(`${envName(s.name)}_FILE`);
  return names.join(', ');
}

function defaultOf(s: Setting): string {
  const d = defaultText(s);
  if (s.defaultText !== undefined) return cell(d);
  return code(d);
}

/** README.md: the CHP flags and Switchyard's own, one table each. */
export function readmeFlagTables(): string {
  const out: string[] = [];
  const table = (group: Setting['group']): void => {
    out.push('| flag | default | meaning |', '|---|---|---|');
    for (const s of SETTINGS) {
      if (s.group !== group || s.flag === 'none') continue;
      out.push(`| ${code(flagOf(s))} | ${defaultOf(s)} | ${cell(s.help)} |`);
    }
  };
  out.push('configurable-http-proxy 5.3 flags (same names, same meaning):', '');
  table('chp');
  out.push('', "Switchyard's own:", '');
  table('switchyard');
  out.push('', 'Secrets have no flag (environment or config file only; `…_FILE` / `…-file` names a file holding one):', '');
  out.push('| setting | environment | meaning |', '|---|---|---|');
  for (const s of SETTINGS) if (s.flag === 'none') out.push(`| ${code(fileKeyOf(s))} | ${code(envOf(s))} | ${cell(s.help)} |`);
  return out.join('\n');
}

/** docs/configuration.md: every setting, by section, with all its names. */
export function configurationReference(): string {
  const out: string[] = [];
  for (const section of SECTIONS) {
    const list = SETTINGS.filter((s) => s.section === section);
    if (list.length === 0) continue;
    out.push(`### ${section}`, '');
    out.push('| file key | flag | environment | type | default | reload | meaning |', '|---|---|---|---|---|---|---|');
    for (const s of list) {
      const type = s.type === 'list' ? 'list of strings' : s.type === 'int' ? 'integer' : s.type === 'bool' ? 'boolean' : 'string';
      const reload = s.reloadable ? 'yes' : 'restart';
      const meaning = (s.secret ? '**secret** (redacted by check-config). ' : '') + s.help;
      out.push(`| ${code(fileKeyOf(s))} | ${code(flagOf(s))} | ${code(envOf(s))} | ${type} | ${defaultOf(s)} | ${reload} | ${cell(meaning)} |`);
    }
    out.push('');
  }
  return out.join('\n').trimEnd();
}

const begin = (name: string): string => `<!-- BEGIN GENERATED: ${name} (npm run gen:config-docs; edit src/config/schema.ts, not this block) -->`;
const end = (name: string): string => `<!-- END GENERATED: ${name} -->`;

/** `text` with the block between the markers `name` replaced by `content`; throws if the markers are missing. */
export function replaceGenerated(text: string, name: string, content: string): string {
  const b = text.indexOf(begin(name));
  const e = text.indexOf(end(name));
  if (b === -1 || e === -1 || e < b) throw new Error(`generated block markers for '${name}' are missing:\n${begin(name)}\n${end(name)}`);
  return text.slice(0, b) + begin(name) + '\n' + content + '\n' + text.slice(e);
}

/** Files (relative to the repository root) and how to regenerate their marked blocks. */
export const GENERATED_DOCS: readonly { readonly file: string; readonly block: string; readonly make: () => string }[] = [
  { file: 'README.md', block: 'flags', make: readmeFlagTables },
  { file: 'docs/configuration.md', block: 'reference', make: configurationReference },
];
