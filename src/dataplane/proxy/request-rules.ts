// Request rules the data plane applies before routing: the RFC 9110/9112 checks Node's HTTP
// parser (llhttp) does not make, on the request line and raw header lines of one request.
//
// Contract: `checkRequest` is pure (reads method, url, version, headers and rawHeaders; changes
// nothing) and returns either the facts routing needs — the effective Host (the authority of an
// absolute-form target replaces the Host header, RFC 9112 §3.2.2) — or a local answer the caller
// sends instead of forwarding (`sendLocalAnswer`): a refusal (400 / 501 / 505), after which the
// connection is closed and nothing more is read from it, or 200 for `OPTIONS *`. Nothing answered
// here reaches an upstream.
//
// What llhttp already refuses (answered by proxy-server.ts's 'clientError' handler, 400): CL and TE
// together, duplicate or list-valued Content-Length, chunked twice (a final coding other than
// chunked too, but only once the body starts: refused here first), bare CR, bare LF, obs-fold, whitespace before a colon, invalid bytes in names and values,
// methods outside its list, versions other than 0.9/1.0/1.1/2.0, authority-form outside CONNECT, bad
// chunk sizes. `parserRefusalStatus` picks the status for those: 400, except a well-formed version
// with a major other than 1 (505), a request line past Node's header limit (414), other heads past
// it (431). CONNECT never reaches the request handler (Node's 'connect' event): proxy-server.ts
// answers it CONNECT_REFUSAL (501) with `localAnswerBytes`.
//
// Rules here, in order:
//  - HTTP major version other than 1 (Node lets "HTTP/2.0" and "HTTP/0.9" request lines through):
//    505 (RFC 9110 §15.6.6, RFC 9112 §2.3).
//  - Host (RFC 9112 §3.2): more than one Host line, an HTTP/1.1 request without Host, or a value
//    that is not `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2): 400.
//  - Request target (RFC 9112 §3.2): origin-form ("/…"); absolute-form with an http/https scheme,
//    a non-empty valid authority and no userinfo (RFC 9110 §4.2.1, §4.2.4), whose authority becomes
//    the Host; asterisk-form only with OPTIONS, answered 200 by the proxy itself (it applies to the
//    server in general, RFC 9110 §9.3.7, and undici cannot forward it). Anything else, and any "#"
//    (a request target has no fragment), is 400.
//  - Transfer-Encoding: in an HTTP/1.0 request 400 (the framing is faulty, RFC 9112 §6.1); a final
//    coding other than exactly "chunked" ("identity", "x-chunked", "chunked;q=1") 400 (§6.3: the
//    length cannot be determined; llhttp would refuse it too, but only once the body starts, after
//    the request went upstream); chunked twice 400 (§6.1); any other coding before a final chunked
//    ("gzip, chunked", which llhttp accepts) 501 (§6.1: a coding the server does not understand;
//    the proxy would otherwise forward coded bytes as plain content).
//  - An upgrade request (websocket) with a body (Content-Length > 0 or any Transfer-Encoding): 400.
//    The body would arrive in the upgrade's head and be written only after a 101, so an upstream
//    that waits for the announced body and a proxy that waits for the 101 would wait for each other.
//
// The common request (origin-form path without "#", one valid Host, no TE or exactly "chunked")
// costs a scan of the raw header names, a comparison with the last valid Host (else one scan of
// it) and one indexOf on the URL.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIPv6 } from 'node:net';
import { STATUS_CODES } from '../../node-http.js';

/** The parts of an IncomingMessage the rules read (a plain object will do in tests). */
export type RequestLike = Pick<IncomingMessage, 'method' | 'url' | 'httpVersionMajor' | 'httpVersionMinor' | 'headers' | 'rawHeaders'>;

export interface RequestFacts {
  readonly ok: true;
  /** The effective Host: an absolute-form target's authority, else the Host header; undefined for HTTP/1.0 without Host. */
  readonly host: string | undefined;
}

/** Answered by the proxy itself, never forwarded; after a refusal (>= 400) the connection is closed. */
export interface LocalAnswer {
  readonly ok: false;
  /** 400, 501, 505 (refusals), or 200 for `OPTIONS *`. */
  readonly status: number;
  /** A fixed sentence (never client bytes) for the plain-text body and the debug log. */
  readonly reason: string;
}

export type RequestVerdict = RequestFacts | LocalAnswer;

function answer(status: number, reason: string): LocalAnswer {
  return { ok: false, status, reason };
}

const REFUSE = {
  version: answer(505, 'HTTP version not supported'),
  twoHosts: answer(400, 'more than one Host header'),
  noHost: answer(400, 'missing Host header'),
  badHost: answer(400, 'invalid Host header'),
  target: answer(400, 'invalid request target'),
  fragment: answer(400, 'fragment in request target'),
  asterisk: answer(400, 'asterisk-form request target outside OPTIONS'),
  scheme: answer(400, 'absolute-form request target with a scheme other than http or https'),
  authority: answer(400, 'invalid authority in absolute-form request target'),
  te10: answer(400, 'Transfer-Encoding in an HTTP/1.0 request'),
  teTwice: answer(400, 'chunked applied more than once'),
  teNotChunked: answer(400, 'final transfer coding is not chunked'),
  teUnknown: answer(501, 'transfer coding not implemented (only chunked is)'),
  upgradeBody: answer(400, 'upgrade request with a body'),
} as const;

const OPTIONS_ASTERISK = answer(200, 'OPTIONS * answered by the proxy');

/**
 * CONNECT (RFC 9110 §9.3.6) asks for a tunnel, which this reverse proxy never opens: a method the
 * server does not implement is 501 (RFC 9110 §9.1, §15.6.2). Not 405: that says the method is
 * implemented for other resources, and would owe an Allow header (RFC 9110 §15.5.6).
 */
export const CONNECT_REFUSAL = answer(501, 'CONNECT not implemented (this proxy opens no tunnels)');

// reg-name = *( unreserved / pct-encoded / sub-delims ) (RFC 3986 §3.2.2); "%" checked apart.
const REG_NAME = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=") REG_NAME[c.charCodeAt(0)] = 1;
// The body of an IPvFuture literal after "v" HEXDIG+ ".": unreserved / sub-delims / ":".
const IPV_FUTURE = /^[vV][0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+$/;

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/**
 * `uri-host [ ":" port ]` (RFC 9110 §7.2): a reg-name or IPv4 address (reg-name covers it), or an
 * IP-literal in brackets, then optionally ":" and digits. An empty value is valid (RFC 9112 §3.2).
 */
export function isValidHost(v: string): boolean {
  const n = v.length;
  let i = 0;
  if (n > 0 && v.charCodeAt(0) === 91 /* [ */) {
    const close = v.indexOf(']');
    if (close === -1) return false;
    const lit = v.slice(1, close);
    if (!isIPv6(lit) && !IPV_FUTURE.test(lit)) return false;
    i = close + 1;
  } else {
    for (; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c === 58 /* : */) break;
      if (c === 37 /* % */) {
        if (i + 2 >= n || !isHex(v.charCodeAt(i + 1)) || !isHex(v.charCodeAt(i + 2))) return false;
        i += 2;
      } else if (c >= 128 || REG_NAME[c] === 0) {
        return false;
      }
    }
  }
  if (i === n) return true;
  if (v.charCodeAt(i) !== 58) return false;
  for (i++; i < n; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

// The last Host value found valid: most connections of a deployment send the same one or few, and
// comparing strings is cheaper than validating them again. A memo only: results never depend on it.
let lastValidHost = '';

/** The authority of an absolute-form target ("http://authority/..."), or a refusal. */
function absoluteAuthority(url: string): string | LocalAnswer {
  const sep = url.indexOf('://');
  if (sep <= 0) return REFUSE.target;
  const scheme = url.slice(0, sep).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') {
    // A scheme is ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 §3.1); anything else is no URI at all.
    return /^[a-z][a-z0-9+.-]*$/.test(scheme) ? REFUSE.scheme : REFUSE.target;
  }
  const start = sep + 3;
  let end = url.length;
  for (let i = start; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 47 /* / */ || c === 63 /* ? */) {
      end = i;
      break;
    }
  }
  const authority = url.slice(start, end);
  // An http(s) URI must have a host (RFC 9110 §4.2.1); userinfo ("@") is an error (§4.2.4).
  if (authority === '' || authority.charCodeAt(0) === 58 || !isValidHost(authority)) return REFUSE.authority;
  return authority;
}

/** Transfer-Encoding other than exactly "chunked" (rare): only one final chunked is implemented. */
function checkTransferCodings(te: string): LocalAnswer | undefined {
  // Empty list elements are allowed (RFC 9110 §5.6.1); names are case-insensitive (RFC 9112 §7).
  const codings = te.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '');
  if (codings.at(-1) !== 'chunked') return REFUSE.teNotChunked;
  if (codings.indexOf('chunked') !== codings.length - 1) return REFUSE.teTwice;
  if (codings.length > 1) return REFUSE.teUnknown;
  return undefined;
}

/** The rules above, for one request; `upgrade`: it came through the server's 'upgrade' event. */
export function checkRequest(req: RequestLike, upgrade: boolean): RequestVerdict {
  if (req.httpVersionMajor !== 1) return REFUSE.version;

  // Node keeps only the first Host in req.headers: count the raw lines.
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && (name === 'Host' || name === 'host' || name.toLowerCase() === 'host')) hosts++;
  }
  let host = req.headers.host;
  if (hosts > 1) return REFUSE.twoHosts;
  if (host === undefined) {
    if (req.httpVersionMinor >= 1) return REFUSE.noHost;
  } else if (host !== lastValidHost) {
    if (!isValidHost(host)) return REFUSE.badHost;
    lastValidHost = host;
  }

  const url = req.url ?? '';
  if (url.indexOf('#') !== -1) return REFUSE.fragment;
  if (url.charCodeAt(0) !== 47 /* / */) {
    if (url === '*') return upgrade || req.method !== 'OPTIONS' ? REFUSE.asterisk : OPTIONS_ASTERISK;
    const authority = absoluteAuthority(url);
    if (typeof authority !== 'string') return authority;
    host = authority;
  }

  const te = req.headers['transfer-encoding'];
  if (te !== undefined) {
    if (req.httpVersionMinor === 0) return REFUSE.te10;
    if (upgrade) return REFUSE.upgradeBody;
    if (te !== 'chunked') {
      const bad = checkTransferCodings(te);
      if (bad !== undefined) return bad;
    }
  }
  if (upgrade) {
    const cl = req.headers['content-length'];
    if (cl !== undefined && cl !== '0' && Number(cl) !== 0) return REFUSE.upgradeBody;
  }
  return { ok: true, host };
}

/**
 * Send a LocalAnswer. A refusal closes the connection (`Connection: close`): its framing or its
 * sender is in doubt, so nothing after it on that connection is read as a request. Its body is
 * plain text naming the rule.
 */
export function sendLocalAnswer(res: ServerResponse, a: LocalAnswer): void {
  if (a.status < 400) {
    res.writeHead(a.status, { 'content-length': '0' });
    res.end();
    return;
  }
  const body = `${STATUS_CODES[a.status] ?? 'Error'}: ${a.reason}\n`;
  res.shouldKeepAlive = false;
  res.writeHead(a.status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), connection: 'close' });
  res.end(body);
}

/**
 * The bytes `sendLocalAnswer` writes for a refusal, for a socket that has no ServerResponse (Node's
 * 'connect' event). `date`: the Date header's value.
 */
export function localAnswerBytes(a: LocalAnswer, date: string): string {
  const body = `${STATUS_CODES[a.status] ?? 'Error'}: ${a.reason}\n`;
  return (
    `HTTP/1.1 ${a.status} ${STATUS_CODES[a.status] ?? 'Error'}\r\nDate: ${date}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

/** What Node's HTTP server tells its 'clientError' listener about a request its parser refused. */
export interface ParserError {
  readonly code?: string | undefined;
  /** Where in rawPacket llhttp stopped. */
  readonly bytesParsed?: number | undefined;
  /** The bytes of the parser's current read. */
  readonly rawPacket?: Buffer | undefined;
}

const SP = 32;
const COLON = 58;
const CR = 13;
const LF = 10;
// "method SP" then target bytes (no SP): the start of a request line, never of a header line (a
// header name is followed by ":" and llhttp refuses whitespace before it).
const REQUEST_LINE_START = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^ ]+$/;

/**
 * The status for a request Node's parser refused. `firstRead`: rawPacket is the first data read on
 * the connection (it starts the first request). Node answers 400 for all but the header limit
 * (431) and chunk extensions (413); from llhttp's stop position this refines it:
 *  - HPE_INVALID_VERSION on a well-formed `HTTP/D.D` (llhttp stops right after it, before the line
 *    end) with a major version other than 1 (`HTTP/3.0`, `HTTP/2.1`): 505 (RFC 9110 §15.6.6).
 *    A 1.x minor llhttp does not know (`HTTP/1.2`) stays 400: 505 is about the major version, and
 *    "process it as 1.1" (RFC 9112 §2.3) is not something Node's parser can be told.
 *  - HPE_HEADER_OVERFLOW (Node counts the request line in its header limit) found in the request
 *    target: 414 (RFC 9112 §3: a request-target longer than the server parses). Node counts the
 *    target when its span ends, at the SP after it or at the end of the read: the line is told
 *    from a header line by its start ("method SP") when that is in this read, else by that SP.
 *    A limit crossed in a read that starts and ends inside the target cannot be told from a long
 *    header value: 431, as for every other head past the limit.
 */
export function parserRefusalStatus(err: ParserError, firstRead: boolean): number {
  const raw = err.rawPacket;
  const at = err.bytesParsed;
  switch (err.code) {
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return 413;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 408;
    case 'HPE_INVALID_VERSION': {
      if (raw === undefined || at === undefined || at < 8 || at > raw.length) return 400;
      if (at < raw.length && raw[at] !== CR && raw[at] !== LF) return 400; // junk after the version
      const v = raw.toString('latin1', at - 8, at);
      const m = /^HTTP\/(\d)\.\d$/.exec(v);
      return m !== null && m[1] !== '1' ? 505 : 400;
    }
    case 'HPE_HEADER_OVERFLOW': {
      if (raw === undefined || at === undefined || at > raw.length) return 431;
      // A header value's span ends at its CR; a header name's just after its colon; the target's at
      // the SP after it. Any of them may also end with the read.
      if (at < raw.length && raw[at] !== SP) return 431;
      const lf = raw.lastIndexOf(LF, at - 1);
      if (lf !== -1 || firstRead) return REQUEST_LINE_START.test(raw.toString('latin1', lf + 1, at)) ? 414 : 431;
      // The line began in an earlier read: an SP after the target, unless a name's colon precedes it.
      return at < raw.length && raw[at - 1] !== COLON ? 414 : 431;
    }
    default:
      return 400;
  }
}
