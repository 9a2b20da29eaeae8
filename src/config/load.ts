// The configuration loader: command line, environment and config file -> one frozen Config, or every
// problem found, each with its place. Never exits and never prints: main.ts does (and a reload calls
// this again and diffs the result with diffSettings).
//
// Precedence, per setting: flags > environment > config file > defaults (schema.ts). A repeatable
// flag given on the command line replaces the list from the environment or the file.
// Places: `command line`, `environment` (with the variable's name as key), `FILE:LINE` (with the
// file key); an error reads `PLACE: KEY: REASON` (formatProblem).

import { readFileSync, statSync } from 'node:fs';
import { isSwitchyardError } from '../errors.js';
import { configFromValues, type Config } from './config.js';
import { parseFlags } from './flags.js';
import {
  RELOADABLE, SETTINGS, SETTINGS_BY_NAME, checkValue, defaultValue, envName, envNames, secretFileKey,
  type Setting, type SettingValue,
} from './schema.js';
import { suggest } from './suggest.js';

export type SourceKind = 'flag' | 'env' | 'file' | 'default';

/** Where a setting's value came from: `where` is the place, `key` the name used there. */
export interface Source {
  readonly kind: SourceKind;
  readonly where: string;
  readonly key: string;
}

/** One configuration problem, printed as `where: key: reason` (or `where: reason` without a key). */
export interface ConfigProblem {
  readonly where: string;
  readonly key: string;
  readonly reason: string;
}

export function formatProblem(p: ConfigProblem): string {
  return p.key === '' ? `${p.where}: ${p.reason}` : `${p.where}: ${p.key}: ${p.reason}`;
}

export interface ResolvedSetting {
  readonly value: SettingValue;
  readonly source: Source;
}

interface LoadCommon {
  /** `--help` / `--version` given (main prints those whatever else is wrong). */
  readonly help: boolean;
  readonly version: boolean;
  /** `envoy-bootstrap`, `check-config`, or undefined (run the proxy). */
  readonly command: string | undefined;
  /** The config file read, if any. */
  readonly configFile: string | undefined;
  /** Not fatal: unknown SWITCHYARD_ variables, secret files readable by every user... */
  readonly warnings: readonly string[];
}

export interface LoadedConfig extends LoadCommon {
  readonly ok: true;
  readonly config: Config;
  /** Every setting given somewhere (not the defaults), with its source; secrets included. */
  readonly settings: ReadonlyMap<string, ResolvedSetting>;
}

export interface FailedConfig extends LoadCommon {
  readonly ok: false;
  readonly errors: readonly ConfigProblem[];
}

export type LoadResult = LoadedConfig | FailedConfig;

export interface LoadInput {
  readonly argv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
}

const CMDLINE = 'command line';
const ENVIRONMENT = 'environment';

/** Alias inside a [dashboard] table for the `dashboard` switch (TOML cannot have both `dashboard = false` and `[dashboard]`). */
const DASHBOARD_ENABLED = 'dashboard.enabled';

/** File keys: every setting's name (but `config`), `<secret>-file` (or `<secret>_file`), and dashboard.enabled. */
function fileKeys(): Map<string, { setting: Setting; secretFile: boolean }> {
  const m = new Map<string, { setting: Setting; secretFile: boolean }>();
  for (const s of SETTINGS) {
    if (s.notInFile) continue;
    m.set(s.name, { setting: s, secretFile: false });
    if (s.secret) {
      m.set(secretFileKey(s.name), { setting: s, secretFile: true });
      // The `_file` spelling of the same key (the Kubernetes Secret convention, as in the issue).
      m.set(`${s.name}_file`, { setting: s, secretFile: true });
    }
  }
  m.set(DASHBOARD_ENABLED, { setting: SETTINGS_BY_NAME.get('dashboard')!, secretFile: false });
  return m;
}

/** Env names: SWITCHYARD_<NAME> (+ CHP's aliases) and SWITCHYARD_<NAME>_FILE for secrets. */
function envKeys(): Map<string, { setting: Setting; secretFile: boolean }> {
  const m = new Map<string, { setting: Setting; secretFile: boolean }>();
  for (const s of SETTINGS) {
    for (const n of envNames(s)) m.set(n, { setting: s, secretFile: false });
    if (s.secret) m.set(`${envName(s.name)}_FILE`, { setting: s, secretFile: true });
  }
  return m;
}

function typeName(t: Setting['type']): string {
  return t === 'int' ? 'an integer' : t === 'bool' ? 'a boolean (true or false)' : t === 'list' ? 'an array of strings' : 'a string';
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Date) return 'a date';
  if (v === null) return 'null';
  if (typeof v === 'number') return Number.isInteger(v) ? `an integer (${v})` : `a float (${v})`;
  if (typeof v === 'string') return `a string (${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)})`;
  if (typeof v === 'object') return 'a table';
  return `a ${typeof v} (${String(v)})`;
}

/** A value from the config file (already typed by TOML/JSON): the value or the reason it is the wrong type. */
function fromFile(s: Setting, v: unknown): { value: SettingValue } | { reason: string } {
  const ok =
    (s.type === 'int' && typeof v === 'number' && Number.isInteger(v)) ||
    (s.type === 'bool' && typeof v === 'boolean') ||
    (s.type === 'string' && typeof v === 'string') ||
    (s.type === 'list' && Array.isArray(v) && v.every((x) => typeof x === 'string'));
  if (typeof v === 'bigint' && s.type === 'int') return { reason: `integer out of range: ${String(v)}` };
  if (!ok) {
    // A secret's wrong value is not quoted back (it may still be the secret, mistyped).
    const got = s.type === 'list' && Array.isArray(v) ? 'an array with a non-string item' : s.secret ? describe(v).replace(/ \(.*\)$/, '') : describe(v);
    return { reason: `expected ${typeName(s.type)}, got ${got}` };
  }
  return { value: v as SettingValue };
}

const TRUE = ['true', '1', 'yes', 'on'];
const FALSE = ['false', '0', 'no', 'off'];

/** A value from the environment (a string): parsed to the setting's type, or the reason it does not parse. */
function fromEnv(s: Setting, raw: string): { value: SettingValue } | { reason: string } {
  if (s.type === 'string') return { value: raw };
  if (s.type === 'int') return /^-?\d+$/.test(raw.trim()) ? { value: Number.parseInt(raw, 10) } : { reason: `expected an integer, got '${raw}'` };
  if (s.type === 'bool') {
    const b = raw.trim().toLowerCase();
    if (TRUE.includes(b)) return { value: true };
    if (FALSE.includes(b)) return { value: false };
    return { reason: `expected a boolean (true/false, 1/0, yes/no, on/off), got '${raw}'` };
  }
  return listFromText(raw);
}

/** A list in the environment or a secret file: a JSON array of strings, or one item per line. */
function listFromText(raw: string): { value: readonly string[] } | { reason: string } {
  if (raw.trim().startsWith('[')) {
    try {
      const a: unknown = JSON.parse(raw);
      if (Array.isArray(a) && a.every((x) => typeof x === 'string')) return { value: a as string[] };
    } catch {
      // fall through
    }
    return { reason: 'expected a JSON array of strings, or one item per line' };
  }
  return { value: raw.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')) };
}

// --- config file ----------------------------------------------------------------------------------

/** Line (1-based) of each key in a TOML text, by full dotted name ("dashboard.users"). */
function tomlKeyLines(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  let table = '';
  const unquote = (k: string): string => k.trim().split(/\s*\.\s*/).map((p) => p.replace(/^["']|["']$/g, '')).join('.');
  text.split('\n').forEach((line, i) => {
    const header = /^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$/.exec(line);
    if (header) {
      table = unquote(header[1]!);
      if (!lines.has(table)) lines.set(table, i + 1);
      return;
    }
    const kv = /^\s*((?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+))*)\s*=/.exec(line);
    if (kv) {
      const full = (table ? table + '.' : '') + unquote(kv[1]!);
      if (!lines.has(full)) lines.set(full, i + 1);
    }
  });
  return lines;
}

/** Line (1-based) of each key in a JSON text, by its last name segment (first occurrence). */
function jsonKeyLines(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  text.split('\n').forEach((line, i) => {
    for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"\s*:/g)) if (!lines.has(m[1]!)) lines.set(m[1]!, i + 1);
  });
  return lines;
}

/** 1-based line of a character offset. */
function lineAt(text: string, offset: number): number {
  return text.slice(0, offset).split('\n').length;
}

interface FileEntry {
  readonly key: string;
  readonly value: unknown;
  readonly where: string;
}

/** Read and parse the config file; its entries flattened to dotted keys, each with its place. */
async function readConfigFile(path: string, origin: Source, problems: ConfigProblem[]): Promise<{ entries: FileEntry[]; mode: number } | undefined> {
  let text: string;
  let mode = 0;
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    mode = st.mode;
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    problems.push({ where: origin.where, key: origin.key, reason: `cannot read config file ${path}: ${err.code ?? ''} (${err.message.replace(/^[A-Z]+: /, '')})` });
    return undefined;
  }
  const json = path.endsWith('.json');
  let doc: unknown;
  try {
    // smol-toml only when a TOML file is named: a data-plane worker loads no TOML parser otherwise
    // (test/unit/worker-imports.test.ts follows static imports only).
    doc = json ? JSON.parse(text) : (await import('smol-toml')).parse(text);
  } catch (e) {
    const err = e as Error & { line?: number; column?: number };
    let line = err.line;
    let col = err.column;
    const lastLine = text.trimEnd().split('\n').length;
    let atEnd = line !== undefined && line > lastLine;
    if (json) {
      const lc = /line (\d+) column (\d+)/.exec(err.message);
      const pos = /position (\d+)/.exec(err.message);
      if (lc) [line, col] = [Number(lc[1]), Number(lc[2])];
      else if (pos) line = lineAt(text, Number(pos[1]));
      else if (/end of JSON input/.test(err.message)) line = lastLine;
      atEnd = pos ? Number(pos[1]) >= text.trimEnd().length : /end of JSON input/.test(err.message);
    }
    let msg = json ? err.message.replace(/\s+/g, ' ') : err.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
    if (atEnd) msg += ' (at the end of the file: is it complete?)';
    problems.push({ where: `${path}${line ? `:${line}` : ''}${col ? `:${col}` : ''}`, key: '', reason: `${json ? 'JSON' : 'TOML'} syntax error: ${msg}` });
    return undefined;
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    problems.push({ where: `${path}:1`, key: '', reason: 'the config file must hold a table (an object) of settings' });
    return undefined;
  }
  const keyLines = json ? jsonKeyLines(text) : tomlKeyLines(text);
  const lineOf = (key: string): number | undefined => {
    if (json) return keyLines.get(key.split('.').pop()!);
    for (let k = key; k !== ''; k = k.includes('.') ? k.slice(0, k.lastIndexOf('.')) : '') {
      const l = keyLines.get(k);
      if (l !== undefined) return l;
    }
    return undefined;
  };
  const entries: FileEntry[] = [];
  const known = fileKeys();
  const isTable = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);
  const walk = (obj: Record<string, unknown>, prefix: string): void => {
    for (const [k, v] of Object.entries(obj)) {
      const key = prefix + k;
      // A table is a group of keys, unless the key itself is a setting (then it is a wrong type);
      // `dashboard` is both the switch and the [dashboard] table (with enabled = the switch).
      if (isTable(v) && (!known.has(key) || key === 'dashboard')) walk(v, key + '.');
      else {
        const line = lineOf(key);
        entries.push({ key, value: v, where: line === undefined ? path : `${path}:${line}` });
      }
    }
  };
  walk(doc as Record<string, unknown>, '');
  return { entries, mode };
}

// --- secrets --------------------------------------------------------------------------------------

/** Read a secret file: its text without the trailing newline; a warning when every user can read it. */
function readSecretFile(s: Setting, path: string, place: Source, problems: ConfigProblem[], warnings: string[]): SettingValue | undefined {
  let text: string;
  try {
    const st = statSync(path);
    if (st.mode & 0o004) warnings.push(formatProblem({ ...place, reason: `secret file ${path} is readable by every user (chmod o-r ${path})` }));
    text = readFileSync(path, 'utf8');
  } catch (e) {
    problems.push({ ...place, reason: `cannot read secret file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}` });
    return undefined;
  }
  if (s.type === 'list') {
    const r = listFromText(text);
    if ('reason' in r) {
      problems.push({ ...place, reason: `${path}: ${r.reason}` });
      return undefined;
    }
    return r.value;
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') {
    problems.push({ ...place, reason: `secret file ${path} is empty` });
    return undefined;
  }
  return value;
}

// --- the loader -----------------------------------------------------------------------------------

/** One level's value of a setting: a value, or (secrets) a file to read the value from. */
interface Candidate {
  readonly source: Source;
  readonly value?: SettingValue;
  readonly secretPath?: string;
}

/** Load the whole configuration from argv, env and the config file they name. Never rejects for bad input. */
export async function loadConfig(input: LoadInput): Promise<LoadResult> {
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  const { args, problems: flagProblems } = parseFlags(input.argv);
  for (const p of flagProblems) problems.push({ where: CMDLINE, key: '', reason: p.reason });

  // Level 1: flags (typed by the parser).
  const flagLevel = new Map<string, Candidate>();
  for (const [name, value] of Object.entries(args.values)) {
    const s = SETTINGS_BY_NAME.get(name)!;
    const flag = s.flag === 'negated' ? `--no-${name}` : `--${name}`;
    flagLevel.set(name, { source: { kind: 'flag', where: CMDLINE, key: flag }, value });
  }

  // Level 2: the environment.
  const envLevel = new Map<string, Candidate>();
  const envKnown = envKeys();
  for (const s of SETTINGS) {
    const present = envNames(s).filter((n) => input.env[n]);
    const fileVar = `${envName(s.name)}_FILE`;
    const hasFile = s.secret === true && !!input.env[fileVar];
    if (present.length > 0 && hasFile) {
      problems.push({ where: ENVIRONMENT, key: fileVar, reason: `set either ${present[0]} or ${fileVar}, not both` });
      continue;
    }
    if (hasFile) {
      envLevel.set(s.name, { source: { kind: 'env', where: ENVIRONMENT, key: fileVar }, secretPath: input.env[fileVar]! });
    } else if (present.length > 0) {
      const name = present[0]!;
      const r = fromEnv(s, input.env[name]!);
      if ('reason' in r) problems.push({ where: ENVIRONMENT, key: name, reason: r.reason });
      else envLevel.set(s.name, { source: { kind: 'env', where: ENVIRONMENT, key: name }, value: r.value });
    }
  }
  for (const name of Object.keys(input.env)) {
    if (!name.startsWith('SWITCHYARD_') || envKnown.has(name) || !input.env[name]) continue;
    const near = suggest(name, envKnown.keys());
    warnings.push(`${ENVIRONMENT}: ${name}: unknown SWITCHYARD_ variable, ignored${near ? `; did you mean ${near}?` : ''}`);
  }

  // Level 3: the config file, named by --config or SWITCHYARD_CONFIG.
  const fileLevel = new Map<string, Candidate>();
  const configAt = flagLevel.get('config') ?? envLevel.get('config');
  const configFile = configAt?.value as string | undefined;
  if (configAt && configFile !== undefined) {
    const read = await readConfigFile(configFile, configAt.source, problems);
    const known = fileKeys();
    let inlineSecret = false;
    for (const e of read?.entries ?? []) {
      const k = known.get(e.key);
      if (!k) {
        const near = suggest(e.key, known.keys());
        problems.push({ where: e.where, key: e.key, reason: `unknown key${near ? `; did you mean ${near}?` : ''}` });
        continue;
      }
      const s = k.setting;
      const source: Source = { kind: 'file', where: e.where, key: e.key };
      if (fileLevel.has(s.name)) {
        const other = fileLevel.get(s.name)!.source;
        problems.push({ where: e.where, key: e.key, reason: `${s.name} is already set by ${other.key} (${other.where}); use one` });
        continue;
      }
      if (k.secretFile) {
        if (typeof e.value !== 'string' || e.value === '') problems.push({ where: e.where, key: e.key, reason: `expected a file path (a string), got ${describe(e.value)}` });
        else fileLevel.set(s.name, { source, secretPath: e.value });
        continue;
      }
      const r = fromFile(s, e.value);
      if ('reason' in r) problems.push({ where: e.where, key: e.key, reason: r.reason });
      else {
        // Dashboard users are password hashes, not passwords: no warning for those in a shared file.
        if (s.secret && s.type !== 'list') inlineSecret = true;
        fileLevel.set(s.name, { source, value: r.value });
      }
    }
    if (read && inlineSecret && read.mode & 0o004) {
      warnings.push(`${configFile}: holds secrets and is readable by every user (chmod o-r ${configFile}, or name the secret's file with <name>-file)`);
    }
  }

  // Merge: the highest level wins; then each value's own check, with the place it came from.
  const settings = new Map<string, ResolvedSetting>();
  for (const s of SETTINGS) {
    const c = flagLevel.get(s.name) ?? envLevel.get(s.name) ?? fileLevel.get(s.name);
    if (!c) continue;
    let value = c.value;
    if (c.secretPath !== undefined) value = readSecretFile(s, c.secretPath, c.source, problems, warnings);
    if (value === undefined) continue;
    const reason = checkValue(s, value);
    if (reason !== undefined) {
      problems.push({ where: c.source.where, key: c.source.key, reason });
      continue;
    }
    settings.set(s.name, { value, source: c.source });
  }

  const common = { help: args.help, version: args.version, command: args.command, configFile, warnings };
  if (problems.length > 0) return { ok: false, errors: sortProblems(problems), ...common };
  const values: Record<string, SettingValue> = {};
  for (const [name, r] of settings) if (name !== 'config') values[name] = r.value;
  try {
    return { ok: true, config: configFromValues(values), settings, ...common };
  } catch (e) {
    if (!isSwitchyardError(e)) throw e;
    const key = e.details?.key as string | undefined;
    const reason = (e.details?.reason as string | undefined) ?? e.message;
    const at = key === undefined ? undefined : settings.get(key)?.source;
    return { ok: false, errors: [{ where: at?.where ?? 'configuration', key: at?.key ?? key ?? '', reason }], ...common };
  }
}

/** Command line first, then environment, then the file by line (stable: same place keeps its order). */
function sortProblems(list: ConfigProblem[]): ConfigProblem[] {
  const rank = (p: ConfigProblem): [number, number] => {
    if (p.where === CMDLINE) return [0, 0];
    if (p.where === ENVIRONMENT) return [1, 0];
    const m = /:(\d+)(?::\d+)?$/.exec(p.where);
    return [2, m ? Number(m[1]) : 0];
  };
  return list
    .map((p, i) => ({ p, i, r: rank(p) }))
    .sort((a, b) => a.r[0] - b.r[0] || a.r[1] - b.r[1] || a.i - b.i)
    .map((x) => x.p);
}

// --- reload support and check-config --------------------------------------------------------------

function effective(settings: ReadonlyMap<string, ResolvedSetting>, name: string): SettingValue | undefined {
  return settings.get(name)?.value ?? defaultValue(name);
}

/**
 * The settings whose effective value differs between two loads, split by the schema's `reloadable`
 * mark: a reload applies `reloadable` and must name `restartRequired` (they keep their old value
 * until a restart). TLS files whose content changed under the same path are not seen here.
 */
export function diffSettings(
  before: ReadonlyMap<string, ResolvedSetting>,
  after: ReadonlyMap<string, ResolvedSetting>,
): { readonly reloadable: string[]; readonly restartRequired: string[] } {
  const reloadable: string[] = [];
  const restartRequired: string[] = [];
  for (const s of SETTINGS) {
    if (s.name === 'config') continue;
    if (JSON.stringify(effective(before, s.name)) === JSON.stringify(effective(after, s.name))) continue;
    (RELOADABLE.has(s.name) ? reloadable : restartRequired).push(s.name);
  }
  return { reloadable, restartRequired };
}

const REDACTED = '<redacted>';

function tomlValue(s: Setting, v: SettingValue): string {
  if (s.secret) {
    // Dashboard users: the names are not secret, the hashes are.
    if (Array.isArray(v)) return `[${v.map((l) => JSON.stringify(`${l.split(':')[0]}:${REDACTED}`)).join(', ')}]`;
    return JSON.stringify(REDACTED);
  }
  if (Array.isArray(v)) return `[${v.map((x) => JSON.stringify(x)).join(', ')}]`;
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

function sourceNote(r: ResolvedSetting | undefined): string {
  if (!r) return 'default';
  if (r.source.kind === 'flag') return `flag ${r.source.key}`;
  if (r.source.kind === 'env') return `env ${r.source.key}`;
  return `${r.source.where} (${r.source.key})`;
}

/**
 * The effective configuration as TOML (it loads back as the same settings, secrets aside), every
 * line annotated with where its value came from; secrets are `<redacted>`; defaults and unset
 * settings are comments.
 */
export function describeConfig(loaded: LoadedConfig): string {
  const out: string[] = [`# switchyard check-config: the effective configuration${loaded.configFile ? ` (config file ${loaded.configFile})` : ''}`];
  out.push('# precedence: flags > environment > config file > defaults; secrets are redacted');
  const tail: string[] = [];
  for (const s of SETTINGS) {
    if (s.name === 'config') continue;
    const r = loaded.settings.get(s.name);
    const v = effective(loaded.settings, s.name);
    const inDashboard = s.name === 'dashboard' || s.name.startsWith('dashboard.');
    const key = s.name === 'dashboard' ? 'enabled' : inDashboard ? s.name.slice('dashboard.'.length) : s.name;
    // Defaults as comments: the output loads back as the same settings (a default written out
    // would count as given, and some rules look at what is given, e.g. access-log-format).
    const line =
      v === undefined
        ? `# ${key} is not set${s.defaultText ? ` (${s.defaultText})` : ''}`
        : `${r ? '' : '# '}${key} = ${tomlValue(s, v)}  # ${sourceNote(r)}`;
    (inDashboard ? tail : out).push(line);
  }
  out.push('', '[dashboard]', ...tail);
  return out.join('\n') + '\n';
}
