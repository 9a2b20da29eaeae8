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
// chunk sizes. CONNECT never reaches the request handler (Node's 'connect' event).
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

import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIPv6 } from 'node:net';

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
