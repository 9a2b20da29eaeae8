// Command-line flags, derived from the settings schema (schema.ts): every configurable-http-proxy
// 5.3 flag with CHP's name and meaning, plus Switchyard's own. A small table-driven parser (no
// dependency) that follows commander's conventions as CHP uses them: "--flag value" and
// "--flag=value", "--no-x" negations, repeatable --custom-header, unknown flags are an error.

import { ErrorCode, SwitchyardError } from '../errors.js';
import { SETTINGS, defaultText, type Setting, type SettingValue } from './schema.js';
import { suggest } from './suggest.js';

export type FlagKind = 'string' | 'int' | 'bool' | 'negated' | 'repeat';

export interface FlagSpec {
  /** Flag name without dashes, e.g. "api-port" or, for negated flags, "x-forward" (given as --no-x-forward). */
  readonly name: string;
  readonly kind: FlagKind;
  readonly arg?: string;
  readonly help: string;
  readonly group: 'chp' | 'switchyard';
}

function kindOf(s: Setting): FlagKind {
  if (s.flag === 'switch') return 'bool';
  if (s.flag === 'negated') return 'negated';
  if (s.flag === 'repeat') return 'repeat';
  return s.type === 'int' ? 'int' : 'string';
}

/** Every flag, in schema order (settings with flag 'none' have none). */
export const FLAGS: readonly FlagSpec[] = SETTINGS.filter((s) => s.flag !== 'none').map((s) => ({
  name: s.name,
  kind: kindOf(s),
  ...(s.arg === undefined ? {} : { arg: s.arg }),
  help: s.help,
  group: s.group,
}));

export type FlagValue = SettingValue;
export interface ParsedArgs {
  /** Settings given as flags, by setting name (only those given). */
  readonly values: Readonly<Record<string, FlagValue>>;
  readonly help: boolean;
  readonly version: boolean;
  readonly command: string | undefined;
}

/** A flag that does not parse: `flag` as written (e.g. "--port"), and why. */
export interface FlagProblem {
  readonly flag: string;
  readonly reason: string;
}

const byName = new Map(FLAGS.map((f) => [f.name, f]));
const COMMANDS = ['envoy-bootstrap', 'check-config'];

/** Parse argv, collecting every problem instead of stopping at the first. */
export function parseFlags(argv: readonly string[]): { args: ParsedArgs; problems: FlagProblem[] } {
  const values: Record<string, FlagValue> = {};
  const problems: FlagProblem[] = [];
  let help = false;
  let version = false;
  let command: string | undefined;
  let skipValue = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    if (arg === '-V' || arg === '--version') {
      version = true;
      continue;
    }
    const afterUnknown = skipValue;
    skipValue = false;
    if (!arg.startsWith('--')) {
      // The value of an unknown option (its problem is already reported).
      if (afterUnknown) continue;
      if (command === undefined && i === 0) {
        command = arg;
        if (!COMMANDS.includes(arg)) problems.push({ flag: arg, reason: `unknown command '${arg}' (see --help)` });
        continue;
      }
      problems.push({ flag: arg, reason: `unexpected argument '${arg}'` });
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    const spec = byName.get(name);
    if (spec === undefined && name.startsWith('no-')) {
      const neg = byName.get(name.slice(3));
      if (neg?.kind === 'negated') {
        if (inline !== undefined) problems.push({ flag: `--${name}`, reason: `option '--${name}' takes no value` });
        else values[neg.name] = false;
        continue;
      }
    }
    if (spec === undefined || spec.kind === 'negated') {
      const near = suggest(name, FLAGS.map((f) => (f.kind === 'negated' ? `no-${f.name}` : f.name)));
      problems.push({ flag: `--${name}`, reason: `unknown option '--${name}' (see --help)${near ? `; did you mean --${near}?` : ''}` });
      skipValue = inline === undefined;
      continue;
    }
    if (spec.kind === 'bool') {
      if (inline !== undefined) problems.push({ flag: `--${name}`, reason: `option '--${name}' takes no value` });
      else values[name] = true;
      continue;
    }
    let raw = inline;
    if (raw === undefined) {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) {
        problems.push({ flag: `--${name}`, reason: `option '--${name} <${spec.arg ?? 'value'}>' argument missing` });
        continue;
      }
      raw = next;
      i++;
    }
    if (spec.kind === 'int') {
      if (!/^-?\d+$/.test(raw.trim())) problems.push({ flag: `--${name}`, reason: `option '--${name}' expects an integer, got '${raw}'` });
      else values[name] = Number.parseInt(raw, 10);
    } else if (spec.kind === 'repeat') {
      const prev = values[name];
      values[name] = Array.isArray(prev) ? [...prev, raw] : [raw];
    } else {
      values[name] = raw;
    }
  }
  return { args: { values, help, version, command }, problems };
}

/** Parse argv; throws SWY_CONFIG_INVALID with the first problem. */
export function parseArgv(argv: readonly string[]): ParsedArgs {
  const { args, problems } = parseFlags(argv);
  if (problems.length > 0) throw new SwitchyardError(ErrorCode.CONFIG_INVALID, problems[0]!.reason);
  return args;
}

function flagLeft(f: FlagSpec): string {
  return f.kind === 'negated' ? `--no-${f.name}` : f.kind === 'bool' ? `--${f.name}` : `--${f.name} <${f.arg ?? 'value'}>`;
}

/** --help, generated from the schema. */
export function helpText(version: string): string {
  const lines = [
    `Usage: switchyard [options]`,
    `       switchyard envoy-bootstrap [options]   print an Envoy bootstrap (YAML) for this control plane`,
    `       switchyard check-config [options]      validate the configuration, print it (secrets redacted), exit 0/1`,
    '',
    `Switchyard ${version}: a drop-in replacement for configurable-http-proxy.`,
    '',
    'Every option can also be set in the --config file (key = the long name: port = 8000) or in the',
    'environment (SWITCHYARD_ + the name in capitals, "-" as "_": SWITCHYARD_API_PORT).',
    'Precedence: flags > environment > config file > defaults. See docs/configuration.md.',
    '',
    'Secrets (environment or config file only; <NAME>_FILE / <name>-file names a file that holds one):',
  ];
  for (const s of SETTINGS) {
    if (s.flag !== 'none') continue;
    const env = ['SWITCHYARD_' + s.name.toUpperCase().replace(/[-.]/g, '_'), ...(s.envAliases ?? [])].join(', ');
    lines.push(env.length > 38 ? `  ${env}\n${' '.repeat(41)}${s.help}` : `  ${env.padEnd(38)} ${s.help}`);
  }
  lines.push('', 'Options (configurable-http-proxy compatible):');
  const settingOf = new Map(SETTINGS.map((s) => [s.name, s]));
  const fmt = (f: FlagSpec): string => {
    const d = defaultText(settingOf.get(f.name)!);
    const dflt = d === '' || f.kind === 'negated' || f.kind === 'bool' ? '' : ` (default: ${d})`;
    return `  ${flagLeft(f).padEnd(38)} ${f.help}${dflt}`;
  };
  for (const f of FLAGS) if (f.group === 'chp') lines.push(fmt(f));
  lines.push('', 'Switchyard options:');
  for (const f of FLAGS) if (f.group === 'switchyard') lines.push(fmt(f));
  lines.push('  -V, --version'.padEnd(41) + 'output the version number', '  -h, --help'.padEnd(41) + 'display help for command');
  return lines.join('\n') + '\n';
}
