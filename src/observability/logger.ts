// Structured logger with CHP's levels (debug, info, warn, error) and fixed field names.
//
// Contract: one line per event on stderr, dropped once stderr's reader is gone (stdio.ts); stdout
// is kept for command output such as --help or envoy-bootstrap. Text format mirrors CHP's
// "<time> [Switchyard] <level>: <msg>" so operators' greps keep working; `json` emits
// {"time","level","msg",...fields}. Fields whose names look like secrets are redacted. Nothing
// logs at info per proxied request: that is the access log's job.
// An Error passed as a field (`{ err: e }`) keeps what a reader needs to find the bug: in json as
// an object {message, name, code, details, stack, cause} (cause serialized the same way, a few
// levels deep); in text as `err=<message>` followed by `err.code=`, `err.stack=`, `err.cause=`...
// fields, each a quoted single-line value, so one event stays one line. Fields stay fields: the
// message is never rewritten with them.

import { guardStdio, writeStderr } from './stdio.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFields = Record<string, unknown>;

export interface Logger {
  readonly level: LogLevel;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  isEnabled(level: LogLevel): boolean;
  child(fields: LogFields): Logger;
}

/** The root logger: its level can change at run time (a config reload), for it and every child. */
export interface RootLogger extends Logger {
  setLevel(level: LogLevel): void;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: 'text' | 'json';
  write?: (line: string) => void;
  base?: LogFields;
}

const SECRET = /token|authorization|password|passphrase|secret|cookie/i;
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

const MAX_CAUSE_DEPTH = 4;

/** An Error as plain data: message first, then what identifies and locates it, then its cause. */
export function serializeError(e: Error, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = { message: e.message };
  if (e.name && e.name !== 'Error') out.name = e.name;
  const { code, details } = e as { code?: unknown; details?: unknown };
  if (code !== undefined) out.code = code;
  if (details !== undefined) out.details = details;
  if (e.stack) out.stack = e.stack;
  if (e.cause !== undefined) {
    out.cause = e.cause instanceof Error ? (depth < MAX_CAUSE_DEPTH ? serializeError(e.cause, depth + 1) : { message: e.cause.message }) : e.cause;
  }
  return out;
}

function redact(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) {
    if (SECRET.test(k)) out[k] = '[redacted]';
    else if (v instanceof Error) out[k] = serializeError(v);
    else out[k] = v;
  }
  return out;
}

/** Text format of a serialized error: `k=<message>`, then `k.<prop>=` for the rest (cause nested likewise). */
function textError(key: string, e: Record<string, unknown>): string {
  let s = ` ${key}=${textValue(e.message)}`;
  for (const [p, v] of Object.entries(e)) {
    if (p === 'message' || v === undefined) continue;
    if (p === 'cause' && v !== null && typeof v === 'object' && 'message' in v) s += textError(`${key}.cause`, v as Record<string, unknown>);
    else s += ` ${key}.${p}=${textValue(v)}`;
  }
  return s;
}

function textValue(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v) ?? String(v);
}

export function createLogger(options: LoggerOptions = {}): RootLogger {
  // Shared by the root and every child: setLevel (a reload) applies to all of them at once.
  const state = { level: options.level ?? 'info' };
  let write = options.write;
  if (write === undefined) {
    guardStdio(); // a gone stderr drops lines instead of throwing (stdio.ts)
    write = (line: string) => writeStderr(line + '\n');
  }
  return makeLogger(state, options.format ?? 'text', write, options.base ?? {});
}

function makeLogger(state: { level: LogLevel }, format: 'text' | 'json', write: (line: string) => void, base: LogFields): RootLogger {
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields): void => {
    if (RANK[lvl] < RANK[state.level]) return;
    const all = fields === undefined ? base : { ...base, ...redact(fields) };
    const time = new Date().toISOString();
    if (format === 'json') {
      write(JSON.stringify({ time, level: lvl, msg, ...all }));
      return;
    }
    let line = `${time} [Switchyard] ${lvl}: ${msg}`;
    for (const [k, v] of Object.entries(all)) {
      if (v === undefined) continue;
      line += fields !== undefined && fields[k] instanceof Error ? textError(k, v as Record<string, unknown>) : ` ${k}=${textValue(v)}`;
    }
    write(line);
  };

  return {
    get level() {
      return state.level;
    },
    setLevel(l: LogLevel) {
      state.level = l;
    },
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    isEnabled: (l) => RANK[l] >= RANK[state.level],
    child: (fields) => makeLogger(state, format, write, { ...base, ...redact(fields) }),
  };
}

/** A logger that drops everything (tests that do not care about logs). */
export function createSilentLogger(): Logger {
  return createLogger({ level: 'error', write: () => {} });
}
