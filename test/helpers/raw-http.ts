// Raw HTTP/1.1 on both sides of the proxy, for the hostile-request and hostile-upstream tests: an
// upstream that records exactly what it receives (request line, raw header lines, body bytes and
// their framing), one strict parser of responses (framing per RFC 9112 §6: chunked, Content-Length,
// none, HEAD, interim and 101) and of request bodies, and a client that sends exact bytes and
// splits what comes back into well-framed responses.

import { once } from 'node:events';
import net from 'node:net';
import { listen0, type TestContextLike } from './servers.js';

export interface RecordedRequest {
  /** Which recorder got it. */
  readonly to: string;
  /** "GET /x HTTP/1.1" */
  readonly line: string;
  /** Header lines as received, "Name: value" (latin1). */
  readonly headers: string[];
  /** The decoded body (chunked framing removed). */
  readonly body: Buffer;
  /** The body bytes as framed on the wire (chunk sizes and extensions included). */
  readonly framedBody: Buffer;
}

export interface Recorder {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  /** Complete requests, in arrival order (shared by every recorder given the same log). */
  readonly log: RecordedRequest[];
  /** Bytes that did not parse as a request (a framing mismatch upstream shows up here). */
  readonly garbage: string[];
}

type Parsed<T> = { value: T; rest: Buffer } | 'incomplete' | 'invalid';

const CRLF2 = Buffer.from('\r\n\r\n');

/** A chunked body at the start of `buf` (RFC 9112 §7.1): the decoded bytes and how many bytes it took. */
export function parseChunked(buf: Buffer): { body: Buffer; used: number } | 'incomplete' | 'invalid' {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', at, 'latin1');
    if (eol === -1) return 'incomplete';
    const sizeText = buf.toString('latin1', at, eol).split(';', 1)[0]!.trim();
    if (!/^[0-9a-fA-F]+$/.test(sizeText)) return 'invalid';
    const size = parseInt(sizeText, 16);
    at = eol + 2;
    if (size === 0) {
      // trailer section, then an empty line
      for (;;) {
        const tEol = buf.indexOf('\r\n', at, 'latin1');
        if (tEol === -1) return 'incomplete';
        const empty = tEol === at;
        at = tEol + 2;
        if (empty) return { body: Buffer.concat(parts), used: at };
      }
    }
    if (buf.length < at + size + 2) return 'incomplete';
    parts.push(buf.subarray(at, at + size));
    if (buf.toString('latin1', at + size, at + size + 2) !== '\r\n') return 'invalid';
    at += size + 2;
  }
}

interface Head {
  line: string;
  headers: string[];
}

function parseHead(buf: Buffer): Parsed<Head> {
  const end = buf.indexOf(CRLF2);
  if (end === -1) return buf.length > 1 << 20 ? 'invalid' : 'incomplete';
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  return { value: { line: lines[0]!, headers: lines.slice(1) }, rest: buf.subarray(end + 4) };
}

/** Every value of a header, in order (`name` lowercased). */
export function headerValues(headers: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (const h of headers) {
    const c = h.indexOf(':');
    if (c > 0 && h.slice(0, c).toLowerCase() === name) out.push(h.slice(c + 1).trim());
  }
  return out;
}

/**
 * The body that follows a head, framed by Transfer-Encoding (`chunked` last) or Content-Length
 * (one, all digits); anything else is 'invalid'. Without either, a request has no body and a
 * response runs to the close (`untilClose`, RFC 9112 §6.3).
 */
function parseBody(head: Head, rest: Buffer, untilClose: boolean): Parsed<{ body: Buffer; framed: Buffer }> {
  const te = headerValues(head.headers, 'transfer-encoding');
  const cl = headerValues(head.headers, 'content-length');
  if (te.length > 0) {
    // chunked last and once (RFC 9112 §6.1, §6.3); codings before it are the body's, left as they are.
    const codings = te.join(',').split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '');
    if (codings.indexOf('chunked') !== codings.length - 1) return 'invalid';
    const c = parseChunked(rest);
    if (typeof c === 'string') return c;
    return { value: { body: c.body, framed: rest.subarray(0, c.used) }, rest: rest.subarray(c.used) };
  }
  if (cl.length > 1) return 'invalid';
  if (cl.length === 1) {
    if (!/^\d+$/.test(cl[0]!)) return 'invalid';
    const n = Number(cl[0]);
    if (rest.length < n) return 'incomplete';
    return { value: { body: rest.subarray(0, n), framed: rest.subarray(0, n) }, rest: rest.subarray(n) };
  }
  if (untilClose) return { value: { body: rest, framed: rest }, rest: Buffer.alloc(0) };
  return { value: { body: Buffer.alloc(0), framed: Buffer.alloc(0) }, rest };
}

/**
 * The body of a request whose header lines are `headers`, at the start of `buf`: decoded, and how
 * many bytes it took (no Content-Length and no Transfer-Encoding: no body).
 */
export function takeRequestBody(headers: readonly string[], buf: Buffer): { body: Buffer; used: number } | 'incomplete' | 'invalid' {
  const b = parseBody({ line: '', headers: [...headers] }, buf, false);
  if (typeof b === 'string') return b;
  return { body: b.value.body, used: b.value.framed.length };
}

/**
 * One whole request at the start of `buf`: its request line and header lines, its body (decoded
 * and as framed, as takeRequestBody reads it) and the bytes after it.
 */
export function takeRequest(buf: Buffer): { line: string; headers: string[]; body: Buffer; framed: Buffer; rest: Buffer } | 'incomplete' | 'invalid' {
  const h = parseHead(buf);
  if (typeof h === 'string') return h;
  const b = parseBody(h.value, h.rest, false);
  if (typeof b === 'string') return b;
  return { line: h.value.line, headers: h.value.headers, body: b.value.body, framed: b.value.framed, rest: b.rest };
}

/**
 * An upstream on a raw `net` server: records every complete request, answers 200 with its name
 * as the body (or 101 to an Upgrade request, then holds the connection), and keeps the connection
 * for the next request. Bytes that do not parse are kept in `garbage` and the connection closed.
 */
export async function startRecorder(t: TestContextLike, name: string, log: RecordedRequest[] = [], garbage: string[] = []): Promise<Recorder> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf = Buffer.alloc(0);
    let upgraded = false;
    sock.on('data', (d: Buffer) => {
      if (upgraded) return;
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const r = takeRequest(buf);
        if (r === 'incomplete') return;
        if (r === 'invalid') {
          garbage.push(buf.toString('latin1'));
          sock.destroy();
          return;
        }
        log.push({ to: name, line: r.line, headers: r.headers, body: Buffer.from(r.body), framedBody: Buffer.from(r.framed) });
        buf = Buffer.from(r.rest);
        if (headerValues(r.headers, 'upgrade').length > 0) {
          upgraded = true;
          sock.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
          return;
        }
        sock.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(name)}\r\n\r\n${name}`);
      }
    });
  });
  const port = await listen0(server);
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  return { name, port, url: `http://127.0.0.1:${port}`, log, garbage };
}

/** One response as parsed off the wire. */
export interface RawResponse {
  readonly status: number;
  /** The reason phrase as received (latin1). */
  readonly reason: string;
  /** The status line. */
  readonly line: string;
  /** Header lines as received, "Name: value" (latin1). */
  readonly headers: string[];
  /** The same header fields as [lowercased name, trimmed value], in order. */
  readonly fields: [string, string][];
  /** The decoded body (chunked framing removed); while incomplete, the bytes after the head so far. */
  readonly body: Buffer;
  /**
   * Complete: framed by Content-Length or chunked and all there, bodiless (1xx, 204, 304, or the
   * answer to a HEAD request), or without framing and ended by the close. Only the last response
   * of a parse can be incomplete.
   */
  readonly complete: boolean;
  /** The bytes this response took on the wire, head included. */
  readonly raw: Buffer;
}

export interface ParsedResponses {
  /** Every response in order; the last one may be incomplete. */
  readonly responses: RawResponse[];
  /**
   * The bytes after the last listed response: a head not complete yet or that does not parse, a
   * mis-framed response (Transfer-Encoding other than chunked, a bad chunk, several or a
   * non-numeric Content-Length), or what follows a 101.
   */
  readonly rest: Buffer;
}

export interface RawExchange {
  /** Every response, each completely framed, in order. */
  readonly responses: RawResponse[];
  /** Bytes after the last complete response ("" when everything parsed). */
  readonly leftover: string;
  /** The server closed the connection (before we did, or after our half-close). */
  readonly closedByServer: boolean;
  readonly raw: string;
}

/** RFC 9112 §4: HTTP-version SP status-code SP [reason-phrase] (no bare CR). */
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3}) (.*)$/;

function field(line: string): [string, string] {
  const c = line.indexOf(':');
  return c === -1 ? [line.toLowerCase(), ''] : [line.slice(0, c).toLowerCase(), line.slice(c + 1).trim()];
}

/**
 * Split raw bytes into responses. `closed`: the connection has closed, so that a response without
 * Content-Length or Transfer-Encoding ends here (RFC 9112 §6.3). `headRequest`: they answer HEAD
 * requests, so that no body follows whatever the headers announce (RFC 9110 §9.3.2).
 */
export function parseResponses(buf: Buffer, opts: { closed: boolean; headRequest?: boolean }): ParsedResponses {
  const responses: RawResponse[] = [];
  let rest = buf;
  while (rest.length > 0) {
    const h = parseHead(rest);
    if (typeof h === 'string') break;
    const m = STATUS_LINE.exec(h.value.line);
    if (m === null) break;
    const status = Number(m[1]);
    const { line, headers } = h.value;
    const base = { status, reason: m[2]!, line, headers, fields: headers.map(field) };
    const bodiless = opts.headRequest === true || status === 204 || status === 304 || (status >= 100 && status < 200);
    const framed = headerValues(headers, 'transfer-encoding').length > 0 || headerValues(headers, 'content-length').length > 0;
    const b = bodiless ? { value: { body: Buffer.alloc(0) }, rest: h.rest } : framed || opts.closed ? parseBody(h.value, h.rest, true) : 'incomplete';
    if (b === 'invalid') break;
    if (b === 'incomplete') {
      responses.push({ ...base, body: h.rest, complete: false, raw: rest });
      rest = Buffer.alloc(0);
      break;
    }
    responses.push({ ...base, body: b.value.body, complete: true, raw: rest.subarray(0, rest.length - b.rest.length) });
    rest = b.rest;
    if (status === 101) break; // the rest belongs to the upgraded protocol
  }
  return { responses, rest };
}

/** The complete responses in `buf`, and the bytes after them (an incomplete response's included). */
function completeResponses(buf: Buffer, closed: boolean): { responses: RawResponse[]; leftover: Buffer } {
  const { responses, rest } = parseResponses(buf, { closed });
  const last = responses.at(-1);
  if (last !== undefined && !last.complete) return { responses: responses.slice(0, -1), leftover: Buffer.concat([last.raw, rest]) };
  return { responses, leftover: rest };
}

/** The first value of a header of `response` (`name` lowercased). */
export function header(response: Pick<RawResponse, 'fields'>, name: string): string | undefined {
  return response.fields.find(([n]) => n === name)?.[1];
}

/**
 * Send `data` on a new connection. Once `expected` responses have arrived (or the server closed),
 * half-close our side so that the server closes too, then return everything that came back.
 * Bounded by `ms` in all.
 */
export async function exchange(port: number, data: string | Buffer, opts: { expected: number; halfClose?: boolean; ms?: number }): Promise<RawExchange> {
  const ms = opts.ms ?? 5000;
  const sock = net.connect(port, '127.0.0.1');
  await once(sock, 'connect');
  let buf = Buffer.alloc(0);
  let closedByServer = false;
  sock.on('error', () => {});
  const closed = new Promise<void>((resolve) => {
    sock.once('end', () => {
      closedByServer = true;
      resolve();
    });
    sock.once('close', () => {
      closedByServer = true;
      resolve();
    });
  });
  let wake: () => void = () => {};
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    wake();
  });
  const deadline = Date.now() + ms;
  const timeLeft = (): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref());
  sock.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  if (opts.halfClose) sock.end();
  // Wait for the expected responses, the server's close, or the deadline.
  while (!closedByServer && Date.now() < deadline) {
    const { responses } = completeResponses(buf, false);
    if (responses.length >= opts.expected && opts.expected > 0) break;
    await Promise.race([new Promise<void>((r) => (wake = r)), closed, timeLeft()]);
  }
  // A refusal closes by itself; otherwise ask the server to close (keep-alive) by half-closing.
  if (!closedByServer) {
    const { responses } = completeResponses(buf, false);
    const closing = responses.some((r) => r.headers.some((h) => /^connection:\s*close$/i.test(h)));
    if (!closing && !opts.halfClose) sock.end();
    await Promise.race([closed, timeLeft()]);
  }
  sock.destroy();
  const { responses, leftover } = completeResponses(buf, closedByServer);
  return { responses, leftover: leftover.toString('latin1'), closedByServer, raw: buf.toString('latin1') };
}

/** "name: value" lines of a header, compared with a lowercased name. */
export function headerLines(headers: readonly string[], name: string): string[] {
  return headers.filter((h) => h.slice(0, h.indexOf(':')).toLowerCase() === name).map((h) => name + ': ' + h.slice(h.indexOf(':') + 1).trim());
}
