// An upstream response head, read and re-emitted as bytes for the fast path (fast-path.ts).
//
// Contract:
//  - `parseResponseHead(b, end)` validates the head in b[0, end) (status line, header lines, the
//    empty line) and returns where its parts are, or the error code the fast path reports (502):
//    the same checks, in the same order, with the same codes as node:http's path would give
//    through undici and upstream-socket.ts for the cases the fast path meets. No string is made
//    for a header unless it needs reading as text (Transfer-Encoding, a Connection field that
//    names other fields, Location for --auto-rewrite).
//  - `encodeResponseHead(...)` writes the head the client gets, into one new Buffer: "HTTP/1.1",
//    the status, the upstream's reason phrase (the standard one if it is not plain visible
//    ASCII), every header line that is not hop-by-hop (RFC 9110 §7.6.1: headers.ts's list and
//    those named in Connection) as `name: value` with the value's surrounding whitespace dropped,
//    a Date if the upstream sent none, then the caller's own lines (framing, Connection). It is
//    byte for byte what building `${name}: ${value}` strings from withoutHopByHop() and writing
//    them as latin1 gives (test/unit/response-head.test.ts), without a string per header: values
//    keep their bytes (obs-text included), as node:http's path forwards them.
//
// Why bytes: building and encoding the head as strings was the largest share of the fast path's
// own CPU per small response (bench/README.md, "The per-request hot path").

import { STATUS_CODES } from '../../node-http.js';
import { TCHAR, latin1Slice } from './fast-parser.js';
import { RESPONSE_FRAMING, connectionTokens, isHopByHop, nameIs, responseTransferCodings } from './headers.js';

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;


export interface ResponseHead {
  readonly status: number;
  /** The reason phrase's bytes: [reasonStart, reasonEnd). */
  readonly reasonStart: number;
  readonly reasonEnd: number;
  /**
   * Header lines, four offsets each: name start, name end, value start, value end (the value
   * without surrounding whitespace); `kept[k]` 1 if line k goes to the client.
   */
  readonly lines: Int32Array;
  readonly kept: Uint8Array;
  readonly count: number;
  /** -1 none; else the body length. */
  readonly contentLength: number;
  readonly chunked: boolean;
  /**
   * Transfer codings the upstream applied besides a final chunked (RFC 9112 §6.1: "gzip" of
   * "gzip, chunked", or of a lone "gzip", which is read until close), as it listed them, ", "
   * joined; undefined if none. The Transfer-Encoding field is hop-by-hop and the fast path
   * re-frames the body as chunked: the client must still be told of these codings
   * (`Transfer-Encoding: <codings>, chunked`), or it takes coded bytes for the content.
   */
  readonly codings: string | undefined;
  /** The first kept Location line, or -1. */
  readonly location: number;
  /** A kept Date line is there. */
  readonly hasDate: boolean;
  /**
   * The upstream closes the connection after this response (RFC 9112 §9.3, §9.6): a Connection
   * field has the token "close" (any case, anywhere in the list), or the response is HTTP/1.0
   * without a "keep-alive" token. Such a connection must not go back to the pool.
   */
  readonly close: boolean;
}

/** Which of the tokens "close" (1) and "keep-alive" (2) the list b[s, e) names, case-insensitively. */
function closeTokens(b: Uint8Array, s: number, e: number): number {
  let found = 0;
  let i = s;
  while (i < e) {
    while (i < e && (b[i] === SP || b[i] === HTAB || b[i] === 44)) i++;
    const t0 = i;
    while (i < e && b[i] !== 44) i++;
    let t1 = i;
    while (t1 > t0 && (b[t1 - 1] === SP || b[t1 - 1] === HTAB)) t1--;
    if (nameIs(b, t0, t1, 'close')) found |= 1;
    else if (nameIs(b, t0, t1, 'keep-alive')) found |= 2;
  }
  return found;
}

function bytesAre(b: Uint8Array, s: number, e: number, lit: string): boolean {
  if (e - s !== lit.length) return false;
  for (let k = 0; k < lit.length; k++) if (b[s + k] !== lit.charCodeAt(k)) return false;
  return true;
}

// Reused per parse (one parse at a time per thread; nothing keeps them across parses except the
// ResponseHead the caller holds until it has encoded the head, before the next parse).
let LINES = new Int32Array(4 * 64);
let KEPT = new Uint8Array(64);

/** Parse one response head (bytes up to and including the empty line), or an error code. */
export function parseResponseHead(b: Buffer, end: number): ResponseHead | string {
  // "HTTP/1.x SSS reason" CRLF
  if (end < 14 || !bytesAre(b, 0, 7, 'HTTP/1.') || (b[7] !== 48 && b[7] !== 49) || b[8] !== SP) return 'HPE_INVALID_CONSTANT';
  const d0 = b[9]! - 48;
  const d1 = b[10]! - 48;
  const d2 = b[11]! - 48;
  if (d0 < 0 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return 'HPE_INVALID_STATUS';
  const status = d0 * 100 + d1 * 10 + d2;
  let i = 12;
  if (b[i] !== SP && b[i] !== CR) return 'HPE_INVALID_STATUS';
  if (b[i] === SP) i++;
  const r0 = i;
  for (; b[i] !== CR; i++) {
    const c = b[i]!;
    if (c === LF || (c < 32 && c !== HTAB) || c === 0x7f) return 'SWY_UPSTREAM_BARE_CR';
  }
  const r1 = i;
  if (b[i + 1] !== LF) return 'SWY_UPSTREAM_BARE_CR';
  i += 2;
  let lines = LINES;
  let count = 0;
  while (i < end - 2) {
    const n0 = i;
    while (TCHAR[b[i]!] === 1) i++;
    if (b[i] !== 58 || i === n0) return 'HPE_INVALID_HEADER_TOKEN';
    const n1 = i;
    i++;
    while (b[i] === SP || b[i] === HTAB) i++;
    const v0 = i;
    let v1 = i;
    for (; i < end; i++) {
      const c = b[i]!;
      if (c === CR) break;
      if ((c < 32 && c !== HTAB) || c === 0x7f) return 'HPE_INVALID_HEADER_TOKEN';
      if (c !== SP && c !== HTAB) v1 = i + 1;
    }
    if (b[i + 1] !== LF) return 'HPE_LF_EXPECTED';
    if (4 * count + 4 > lines.length) {
      const more = new Int32Array(lines.length * 2);
      more.set(lines);
      LINES = lines = more;
    }
    const at = 4 * count++;
    lines[at] = n0;
    lines[at + 1] = n1;
    lines[at + 2] = v0;
    lines[at + 3] = v1;
    i += 2;
  }
  if (KEPT.length < count) KEPT = new Uint8Array(LINES.length / 4);
  const kept = KEPT;
  // Framing, in header order (as the string version checked it).
  let contentLength = -1;
  let te: string | undefined;
  // Connection fields: joined as one list (RFC 9110 §5.3); the usual lone "keep-alive"/"close" names nothing.
  let connection: string | undefined;
  let connectionLines = 0;
  let plainConnection = false;
  let closeFlags = 0;
  for (let k = 0; k < count; k++) {
    const n0 = lines[4 * k]!;
    const n1 = lines[4 * k + 1]!;
    const v0 = lines[4 * k + 2]!;
    const v1 = lines[4 * k + 3]!;
    const nl = n1 - n0;
    if (nl === 14 && nameIs(b, n0, n1, 'content-length')) {
      if (v1 - v0 < 1 || v1 - v0 > 15) return 'HPE_INVALID_CONTENT_LENGTH';
      let len = 0;
      for (let j = v0; j < v1; j++) {
        const d = b[j]! - 48;
        if (d < 0 || d > 9) return 'HPE_INVALID_CONTENT_LENGTH';
        len = len * 10 + d;
      }
      if (contentLength !== -1 && contentLength !== len) return 'HPE_UNEXPECTED_CONTENT_LENGTH';
      contentLength = len;
    } else if (nl === 17 && nameIs(b, n0, n1, 'transfer-encoding')) {
      te = te === undefined ? latin1Slice(b, v0, v1) : te + ',' + latin1Slice(b, v0, v1);
    } else if (nl === 10 && nameIs(b, n0, n1, 'connection')) {
      connectionLines++;
      closeFlags |= closeTokens(b, v0, v1);
      plainConnection = bytesAre(b, v0, v1, 'keep-alive') || bytesAre(b, v0, v1, 'close') || bytesAre(b, v0, v1, 'Keep-Alive');
      connection = connection === undefined ? latin1Slice(b, v0, v1) : connection + ',' + latin1Slice(b, v0, v1);
    }
  }
  let chunked = false;
  let codings: string | undefined;
  if (te !== undefined) {
    if (contentLength !== -1) return 'HPE_UNEXPECTED_CONTENT_LENGTH';
    const t = responseTransferCodings(te);
    if (t === undefined) return 'HPE_INVALID_TRANSFER_ENCODING';
    chunked = t.chunked;
    codings = t.codings;
  }
  const listed = connectionLines === 1 && plainConnection ? undefined : connectionTokens(connection, RESPONSE_FRAMING);
  let location = -1;
  let hasDate = false;
  for (let k = 0; k < count; k++) {
    const n0 = lines[4 * k]!;
    const n1 = lines[4 * k + 1]!;
    const keep = !isHopByHop(b, n0, n1) && (listed === undefined || !listed.has(latin1Slice(b, n0, n1).toLowerCase()));
    kept[k] = keep ? 1 : 0;
    if (!keep) continue;
    if (location === -1 && n1 - n0 === 8 && nameIs(b, n0, n1, 'location')) location = k;
    else if (n1 - n0 === 4 && nameIs(b, n0, n1, 'date')) hasDate = true;
  }
  const close = (closeFlags & 1) !== 0 || (b[7] === 48 && (closeFlags & 2) === 0);
  return { status, reasonStart: r0, reasonEnd: r1, lines, kept, count, contentLength, chunked, codings, location, hasDate, close };
}

/** The value of header line k, as latin1 text. */
export function headerValue(b: Buffer, h: ResponseHead, k: number): string {
  return latin1Slice(b, h.lines[4 * k + 2]!, h.lines[4 * k + 3]!);
}

// The Date of the current second, made once per second: as text (error pages) and as a head line.
let dateSecond = -1;
let dateText = '';
let dateLine = Buffer.alloc(0);
function refreshDate(): void {
  const now = Date.now();
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateText = new Date(now).toUTCString();
    dateLine = Buffer.from(`Date: ${dateText}\r\n`, 'latin1');
  }
}

/** The current IMF-fixdate (RFC 9110 §5.6.7). */
export function httpDate(): string {
  refreshDate();
  return dateText;
}

/** "Date: <IMF-fixdate>" CRLF. */
function currentDateLine(): Buffer {
  refreshDate();
  return dateLine;
}

/** Copy src[s, e) to dst at `at`; short runs by hand (cheaper than a native call for a header line). */
function put(dst: Buffer, at: number, src: Uint8Array, s: number, e: number): number {
  if (e - s > 64) {
    dst.set(src.subarray(s, e), at);
    return at + e - s;
  }
  for (let k = s; k < e; k++) dst[at++] = src[k]!;
  return at;
}

function putText(dst: Buffer, at: number, text: string): number {
  for (let k = 0; k < text.length; k++) dst[at++] = text.charCodeAt(k); // latin1: every char ≤ 0xff here
  return at;
}

function plainReason(b: Buffer, s: number, e: number): boolean {
  for (let k = s; k < e; k++) {
    const c = b[k]!;
    if (c > 0x7e || (c < 0x20 && c !== HTAB)) return false;
  }
  return true;
}

/**
 * The client's head: status line, kept header lines (line `h.location`'s value replaced by
 * `location` when given), a Date line if the upstream sent none, then `tail` (the caller's own
 * lines and the final CRLF). `reserve` bytes are left free at the end (a small body the caller
 * copies in).
 */
export function encodeResponseHead(b: Buffer, h: ResponseHead, location: string | undefined, tail: Buffer, reserve: number): Buffer {
  const { lines, kept, count } = h;
  let reason: string | undefined;
  let size = 13 + 2; // "HTTP/1.1 SSS " CRLF
  if (plainReason(b, h.reasonStart, h.reasonEnd)) size += h.reasonEnd - h.reasonStart;
  else {
    reason = STATUS_CODES[h.status] ?? '';
    size += reason.length;
  }
  for (let k = 0; k < count; k++) {
    if (kept[k] === 0) continue;
    const valueLen = k === h.location && location !== undefined ? location.length : lines[4 * k + 3]! - lines[4 * k + 2]!;
    size += lines[4 * k + 1]! - lines[4 * k]! + 4 + valueLen;
  }
  const date = h.hasDate ? undefined : currentDateLine();
  if (date !== undefined) size += date.length;
  size += tail.length;
  const out = Buffer.allocUnsafe(size + reserve);
  let at = putText(out, 0, 'HTTP/1.1 '); // whatever version the upstream spoke
  out[at++] = b[9]!;
  out[at++] = b[10]!;
  out[at++] = b[11]!;
  out[at++] = SP;
  at = reason === undefined ? put(out, at, b, h.reasonStart, h.reasonEnd) : putText(out, at, reason);
  out[at++] = CR;
  out[at++] = LF;
  for (let k = 0; k < count; k++) {
    if (kept[k] === 0) continue;
    const n0 = lines[4 * k]!;
    const n1 = lines[4 * k + 1]!;
    const v0 = lines[4 * k + 2]!;
    const v1 = lines[4 * k + 3]!;
    if (k === h.location && location !== undefined) {
      at = put(out, at, b, n0, n1);
      out[at++] = 58;
      out[at++] = SP;
      at = putText(out, at, location);
    } else if (v0 === n1 + 2 && b[n1 + 1] === SP) {
      at = put(out, at, b, n0, v1); // already "name: value"
    } else {
      at = put(out, at, b, n0, n1);
      out[at++] = 58;
      out[at++] = SP;
      at = put(out, at, b, v0, v1);
    }
    out[at++] = CR;
    out[at++] = LF;
  }
  if (date !== undefined) at = put(out, at, date, 0, date.length);
  put(out, at, tail, 0, tail.length);
  return out;
}
