// The access log (opt-in, --access-log): one line per proxied request or websocket, in JSON or
// the combined log format, to stdout or a file.
//
// Contract: `log()` never blocks and never throws on the data path: lines are formatted, buffered
// and written in batches (at most every FLUSH_MS, or at FLUSH_BYTES). Every write is cut at line
// boundaries into pieces of at most PIPE_ATOMIC bytes, so lines from several worker processes
// sharing one stdout pipe (or one O_APPEND file) never interleave mid-line. If the destination
// stalls, at most MAX_BUFFERED bytes wait; lines past that are dropped and counted (memory stays
// bounded). Secrets in query strings (token=, access_token=, ...) are written as [redacted].

import { open, type FileHandle } from 'node:fs/promises';
import { guardStdio, stdioGone } from './stdio.js';

export type AccessLogFormat = 'json' | 'combined';

export interface AccessEntry {
  /** When the request arrived (ms since epoch). */
  readonly start: number;
  readonly remote: string | undefined;
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly host: string | undefined;
  /** Response status; 101 for an established websocket; 499 when the client went away first. */
  readonly status: number;
  /** Bytes sent to the client (status line and headers included, as nginx's $bytes_sent). */
  readonly bytes: number;
  readonly durationMs: number;
  readonly route: string | undefined;
  readonly upstream: string | undefined;
  readonly kind: 'web' | 'ws';
  readonly userAgent: string | undefined;
  readonly referer: string | undefined;
}

export interface AccessLog {
  log(e: AccessEntry): void;
  /** Lines dropped because the destination could not keep up. */
  dropped(): number;
  /** Write what is buffered and close the file. */
  close(): Promise<void>;
}

export interface AccessLogOptions {
  /** '-' or 'stdout' for standard output, otherwise a file path (opened for append). */
  readonly dest: string;
  readonly format: AccessLogFormat;
  /** Where failures to write are reported (once per failure streak). */
  readonly onError?: (e: Error) => void;
}

const FLUSH_MS = 50;
const FLUSH_BYTES = 64 * 1024;
const PIPE_ATOMIC = 4096;
const MAX_BUFFERED = 16 * 1024 * 1024;

const SECRET_PARAM = /([?&](?:token|access_token|auth|password|_xsrf|key)=)[^&#]*/gi;

export function redactUrl(url: string): string {
  return url.includes('=') ? url.replace(SECRET_PARAM, '$1[redacted]') : url;
}

/** Quote-safe text for the combined format: ", \ and control or non-ASCII bytes as \xHH (as nginx). */
function esc(s: string | undefined): string {
  if (s === undefined || s === '') return '-';
  // eslint-disable-next-line no-control-regex
  return s.replace(/["\\\u0000-\u001f\u007f-\u{10ffff}]/gu, (c) => {
    const code = c.charCodeAt(0);
    if (code <= 0xff) return '\\x' + code.toString(16).padStart(2, '0');
    // Beyond latin1 (route paths and targets from the API): the UTF-8 bytes. A lone surrogate
    // becomes U+FFFD's bytes rather than an exception.
    let out = '';
    for (const b of Buffer.from(c, 'utf8')) out += '\\x' + b.toString(16).padStart(2, '0');
    return out;
  });
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number): string => (n < 10 ? '0' + n : String(n));

/** nginx's $time_local, in UTC: 10/Oct/2026:13:55:36 +0000 */
function clfTime(ms: number): string {
  const d = new Date(ms);
  return `${p2(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000`;
}

export function formatAccessEntry(e: AccessEntry, format: AccessLogFormat): string {
  const url = redactUrl(e.url);
  const duration = Math.round(e.durationMs * 1000) / 1000;
  if (format === 'json') {
    return JSON.stringify({
      time: new Date(e.start).toISOString(),
      kind: e.kind,
      remote: e.remote,
      method: e.method,
      url,
      protocol: `HTTP/${e.httpVersion}`,
      host: e.host,
      status: e.status,
      bytes: e.bytes,
      duration_ms: duration,
      route: e.route ?? null,
      upstream: e.upstream ?? null,
      user_agent: e.userAgent,
      referer: e.referer,
    });
  }
  // Combined log format, then Switchyard's fields (as nginx's log_format would add them).
  return (
    `${esc(e.remote)} - - [${clfTime(e.start)}] "${esc(e.method)} ${esc(url)} HTTP/${esc(e.httpVersion)}" ` +
    `${e.status} ${e.bytes} "${esc(e.referer)}" "${esc(e.userAgent)}" ` +
    `rt=${(duration / 1000).toFixed(3)} route="${esc(e.route)}" upstream="${esc(e.upstream)}" kind=${e.kind}`
  );
}

/** Split `text` (whole lines) into pieces of at most `max` bytes, cut only after a newline. */
function pieces(text: string, max: number): Buffer[] {
  const buf = Buffer.from(text);
  if (buf.length <= max) return [buf];
  const out: Buffer[] = [];
  let start = 0;
  while (start < buf.length) {
    let end = Math.min(start + max, buf.length);
    if (end < buf.length) {
      const nl = buf.lastIndexOf(0x0a, end - 1);
      // A single line longer than max goes out whole (it cannot be atomic anyway).
      end = nl >= start ? nl + 1 : buf.indexOf(0x0a, end) + 1 || buf.length;
    }
    out.push(buf.subarray(start, end));
    start = end;
  }
  return out;
}

export function createAccessLog(o: AccessLogOptions): AccessLog {
  const toStdout = o.dest === '-' || o.dest === 'stdout';
  if (toStdout) guardStdio(); // a gone stdout drops lines instead of throwing (stdio.ts)
  let lines: string[] = [];
  let lineBytes = 0; // in `lines`
  let size = 0; // in `lines` plus being written
  let dropped = 0;
  let timer: NodeJS.Timeout | undefined;
  let chain: Promise<void> = Promise.resolve();
  let file: Promise<FileHandle> | undefined;
  let failing = false;

  const write = async (chunk: Buffer): Promise<void> => {
    if (toStdout) {
      if (stdioGone(process.stdout)) return; // its reader is gone: nowhere to write (stdio.ts)
      await new Promise<void>((resolve, reject) => process.stdout.write(chunk, (e) => (e ? reject(e) : resolve())));
      return;
    }
    file ??= open(o.dest, 'a');
    const fh = await file;
    await fh.write(chunk);
  };

  const flush = (): Promise<void> => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (lines.length === 0) return chain;
    const text = lines.join('\n') + '\n';
    const bytes = lineBytes;
    lines = [];
    lineBytes = 0;
    chain = chain.then(async () => {
      try {
        for (const c of pieces(text, PIPE_ATOMIC)) await write(c);
        failing = false;
      } catch (e) {
        if (!failing) o.onError?.(e as Error);
        failing = true;
        if (!toStdout) file = undefined; // reopen next time (deleted directory recreated, disk freed)
      } finally {
        size -= bytes;
      }
    });
    return chain;
  };

  return {
    log(e) {
      let line: string;
      try {
        line = formatAccessEntry(e, o.format);
      } catch (err) {
        // Never let one odd entry reach the data path as an exception.
        if (!failing) o.onError?.(err as Error);
        return;
      }
      if (size + line.length > MAX_BUFFERED) {
        dropped++;
        return;
      }
      lines.push(line);
      size += line.length + 1;
      lineBytes += line.length + 1;
      if (lineBytes >= FLUSH_BYTES) void flush();
      else timer ??= setTimeout(() => void flush(), FLUSH_MS);
    },
    dropped: () => dropped,
    async close() {
      await flush();
      if (file) await (await file.catch(() => undefined))?.close();
      file = undefined;
    },
  };
}
