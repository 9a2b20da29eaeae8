// The fast path's request-head parser: a strict subset of HTTP/1.1 (RFC 9112), read straight from
// the connection's bytes.
//
// Contract: `parseRequestHead(buf, start)` returns
//  - a FastRequest: the head is complete, in the subset below, and passes every rule of
//    request-rules.ts by construction (HTTP/1.1, exactly one valid Host, origin-form target
//    without "#", no Transfer-Encoding, not an upgrade); node:http would parse it to the same
//    method, URL and raw header pairs (differentially tested: test/unit/fast-parser.test.ts);
//  - INCOMPLETE: no end of head yet within MAX_HEAD bytes (the caller reads on, or defers);
//  - DEFER: anything else. Deferring is never an answer: the connection goes to node:http
//    (llhttp + request-rules.ts), which accepts or refuses it exactly as it does without the fast
//    path. So the fast path never has its own refusal rules, only a narrower door.
//
// The subset: METHOD in KNOWN_METHODS, SP, a target of visible ASCII starting with "/" and without
// "#", SP, "HTTP/1.1", CRLF; header lines `token ":" OWS value OWS CRLF` with a value of visible
// ASCII, SP and HTAB (no obs-text, no control bytes), no obs-fold (a line starting with SP/HTAB),
// no whitespace before the colon, no bare CR or LF anywhere; then CRLF. Framing and hop-by-hop
// headers narrow it further: Content-Length at most once and only digits; no Transfer-Encoding,
// Upgrade, Expect; Connection at most once and exactly keep-alive or close (any case), so no
// header is named by Connection; each X-Forwarded-* at most once (their values are appended to).

export interface FastRequest {
  readonly method: string;
  readonly url: string;
  /** [name, value, ...] as sent (names keep their case; values without surrounding OWS). */
  readonly raw: string[];
  readonly host: string;
  /** Content-Length, or -1 when absent. */
  readonly contentLength: number;
  /** Connection: close was sent. */
  readonly close: boolean;
  /** Offset in the buffer just after the head's final CRLF. */
  readonly headEnd: number;
  /** Values of X-Forwarded-For/-Port/-Proto/-Host as sent (undefined when absent). */
  readonly xff: string | undefined;
  readonly xfPort: string | undefined;
  readonly xfProto: string | undefined;
  readonly xfHost: string | undefined;
}

export const INCOMPLETE = 0;
export const DEFER = 1;

/** Longest head the fast path reads; a longer one (or a longer partial one) is node:http's. */
export const MAX_HEAD = 8192;

const KNOWN_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'];

/** The method in buf[s, e) if it is one of KNOWN_METHODS (case-sensitive), as that constant string: no new string per request. */
function knownMethod(buf: Buffer, s: number, e: number): string | undefined {
  next: for (const m of KNOWN_METHODS) {
    if (m.length !== e - s) continue;
    for (let k = 0; k < m.length; k++) if (buf[s + k] !== m.charCodeAt(k)) continue next;
    return m;
  }
  return undefined;
}

/** tchar (RFC 9110 §5.6.2): 1 for each byte allowed in a token (method, field name). */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

/** `s` is a token (RFC 9110 §5.6.2): one or more tchar. */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let k = 0; k < s.length; k++) if (TCHAR[s.charCodeAt(k)] !== 1) return false;
  return true;
}

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;

/** Buffer's own latin1 decoder without toString's argument checks (hot path; present since Node 0.x). */
export const latin1Slice = (b: Buffer, s: number, e: number): string => (b as Buffer & { latin1Slice(s: number, e: number): string }).latin1Slice(s, e);

/** Host values found valid (most deployments see a handful); bounded, a memo only. */
const validHosts = new Set<string>();
/** The last Host found valid: compared first (equal strings compare without hashing the new one). */
let lastValidHost: string | undefined;

export function parseRequestHead(buf: Buffer, start: number, isValidHost: (h: string) => boolean): FastRequest | typeof INCOMPLETE | typeof DEFER {
  const len = buf.length;
  const limit = Math.min(len, start + MAX_HEAD);
  // Request line: method.
  let i = start;
  while (i < limit && TCHAR[buf[i]!] === 1) i++;
  if (i === limit) return limit === len ? INCOMPLETE : DEFER;
  if (buf[i] !== SP || i === start) return DEFER;
  const method = knownMethod(buf, start, i);
  if (method === undefined) return DEFER;
  // Target: "/" then visible ASCII without "#".
  const u0 = ++i;
  if (i < limit && buf[i] !== 47) return DEFER;
  for (; i < limit; i++) {
    const c = buf[i]!;
    if (c <= SP || c >= 0x7f || c === 35 /* # */) break;
  }
  if (i === limit) return limit === len ? INCOMPLETE : DEFER;
  if (buf[i] !== SP || i === u0) return DEFER;
  const url = latin1Slice(buf, u0, i);
  i++;
  // "HTTP/1.1" CRLF
  if (i + 10 > limit) return limit === len ? INCOMPLETE : DEFER;
  if (
    buf[i] !== 72 || buf[i + 1] !== 84 || buf[i + 2] !== 84 || buf[i + 3] !== 80 || buf[i + 4] !== 47 ||
    buf[i + 5] !== 49 || buf[i + 6] !== 46 || buf[i + 7] !== 49 || buf[i + 8] !== CR || buf[i + 9] !== LF
  ) {
    return DEFER;
  }
  i += 10;

  const raw: string[] = [];
  let host: string | undefined;
  let contentLength = -1;
  let close = false;
  let sawConnection = false;
  let xff: string | undefined;
  let xfPort: string | undefined;
  let xfProto: string | undefined;
  let xfHost: string | undefined;
  for (;;) {
    if (i + 2 > limit) return limit === len ? INCOMPLETE : DEFER;
    const c0 = buf[i]!;
    if (c0 === CR) {
      if (buf[i + 1] !== LF) return DEFER;
      i += 2;
      break;
    }
    // Name.
    const n0 = i;
    while (i < limit && TCHAR[buf[i]!] === 1) i++;
    if (i === limit) return limit === len ? INCOMPLETE : DEFER;
    if (buf[i] !== 58 /* : */ || i === n0) return DEFER;
    const n1 = i;
    i++;
    // Value: skip leading OWS, then visible ASCII / SP / HTAB up to CR LF; trailing OWS dropped.
    while (i < limit && (buf[i] === SP || buf[i] === HTAB)) i++;
    const v0 = i;
    let v1 = i;
    for (; i < limit; i++) {
      const c = buf[i]!;
      if (c > SP && c < 0x7f) v1 = i + 1;
      else if (c !== SP && c !== HTAB) break;
    }
    if (i + 2 > limit) return limit === len ? INCOMPLETE : DEFER;
    if (buf[i] !== CR || buf[i + 1] !== LF) return DEFER;
    i += 2;
    const name = latin1Slice(buf, n0, n1);
    const value = latin1Slice(buf, v0, v1);
    const nl = n1 - n0;
    // Headers with a rule of their own (names compared case-insensitively only when the length fits).
    if (nl === 4 && name.toLowerCase() === 'host') {
      if (host !== undefined) return DEFER;
      host = value;
    } else if (nl === 14 && name.toLowerCase() === 'content-length') {
      if (contentLength !== -1 || value.length === 0 || value.length > 15) return DEFER;
      let n = 0;
      for (let k = 0; k < value.length; k++) {
        const d = value.charCodeAt(k) - 48;
        if (d < 0 || d > 9) return DEFER;
        n = n * 10 + d;
      }
      contentLength = n;
    } else if (nl === 10 && name.toLowerCase() === 'connection') {
      if (sawConnection) return DEFER;
      sawConnection = true;
      const v = value.toLowerCase();
      if (v === 'close') close = true;
      else if (v !== 'keep-alive') return DEFER;
    } else if (
      (nl === 17 && name.toLowerCase() === 'transfer-encoding') ||
      (nl === 7 && name.toLowerCase() === 'upgrade') ||
      (nl === 6 && name.toLowerCase() === 'expect')
    ) {
      return DEFER;
    } else if (nl >= 15 && nl <= 17 && (name.charCodeAt(0) | 0x20) === 120 /* x */) {
      const lower = name.toLowerCase();
      if (lower === 'x-forwarded-for') {
        if (xff !== undefined) return DEFER;
        xff = value;
      } else if (lower === 'x-forwarded-port') {
        if (xfPort !== undefined) return DEFER;
        xfPort = value;
      } else if (lower === 'x-forwarded-proto') {
        if (xfProto !== undefined) return DEFER;
        xfProto = value;
      } else if (lower === 'x-forwarded-host') {
        if (xfHost !== undefined) return DEFER;
        xfHost = value;
      }
    }
    raw.push(name, value);
  }
  if (host === undefined) return DEFER;
  if (host !== lastValidHost) {
    if (!validHosts.has(host)) {
      if (!isValidHost(host)) return DEFER;
      if (validHosts.size >= 64) validHosts.clear();
      validHosts.add(host);
    }
    lastValidHost = host;
  }
  return { method, url, raw, host, contentLength, close, headEnd: i, xff, xfPort, xfProto, xfHost };
}
