// Header rules for proxied requests and responses (CHP 5.3 / http-proxy-3 behaviour, plus the
// hop-by-hop rules of RFC 9110 §7.6.1 that http-proxy-3 does not apply).
//
// Request to upstream:
//  - end-to-end headers copied; hop-by-hop ones (Connection and what it lists, Keep-Alive, TE,
//    Trailer, Transfer-Encoding, Upgrade, Proxy-Connection) dropped: the upstream connection is
//    ours, pooled with keep-alive, and must not be closed or reframed by a client's header.
//    Connection cannot remove Host or Content-Length (a client naming them is ignored: routing and
//    framing rely on them), nor the proxy's own X-Forwarded-* (below).
//  - Forwarded and X-Real-IP from the client are dropped: a client must not claim an address
//    (CHP passes them through; deliberate difference).
//  - Host: the effective Host (req.headers.host, which proxy-server.ts sets to the authority of an
//    absolute-form target) preserved (JupyterHub's origin checks rely on it) unless --change-origin.
//  - X-Forwarded-For/-Port/-Proto appended with "," to the client's values and X-Forwarded-Host
//    set if the client sent none, unless --no-x-forward (CHP 5.3 / http-proxy-3's xfwd, exactly).
//    "The client's values" are those left after hop-by-hop removal: a client that names
//    X-Forwarded-Host in Connection loses its own value, never the proxy's.
//  - --custom-header values replace any client header of the same name.
// Response to client: hop-by-hop headers dropped, the rest copied as the upstream sent them.

import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Upstream } from '../../routing/target.js';
import { isToken, type FastRequest } from './fast-parser.js';
import { STATUS_CODES } from '../../node-http.js';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/** HOP_BY_HOP by name length, for byte-level checks (isHopByHop). */
const HOP_BY_HOP_BY_LENGTH: string[][] = [];
for (const name of HOP_BY_HOP) (HOP_BY_HOP_BY_LENGTH[name.length] ??= []).push(name);

/**
 * Lower-case ASCII name `lit` equals the header name b[s, e) compared case-insensitively (tchar
 * bytes only: `| 0x20` lower-cases letters and maps no other tchar onto a letter, digit or '-').
 */
export function nameIs(b: Uint8Array, s: number, e: number, lit: string): boolean {
  if (e - s !== lit.length) return false;
  for (let k = 0; k < lit.length; k++) if ((b[s + k]! | 0x20) !== lit.charCodeAt(k)) return false;
  return true;
}

/** HOP_BY_HOP.has(name.toLowerCase()) for a header name given as bytes b[s, e) (tchar only). */
export function isHopByHop(b: Uint8Array, s: number, e: number): boolean {
  const names = HOP_BY_HOP_BY_LENGTH[e - s];
  if (names === undefined) return false;
  for (const name of names) if (nameIs(b, s, e, name)) return true;
  return false;
}

// Dropped from every client request, whatever --x-forward says.
const CLIENT_CLAIMS = new Set(['forwarded', 'x-real-ip']);
// Never removed because a client listed them in Connection.
const NOT_HOP_BY_HOP = new Set(['host', 'content-length']);
/**
 * Never removed from a response because the upstream listed it in Connection: its length frames
 * the body we forward as is (dropping it left a keep-alive response with no framing at all).
 */
export const RESPONSE_FRAMING = new Set(['content-length']);

export interface HeaderOptions {
  readonly xForward: boolean;
  readonly changeOrigin: boolean;
  /** Lowercased names and values, validated at startup. */
  readonly customHeaders: readonly (readonly [string, string])[];
}

/** Header names a Connection field lists (lower case), beyond the hop-by-hop ones; undefined: none. */
export function connectionTokens(value: string | undefined, keep?: ReadonlySet<string>): Set<string> | undefined {
  // Fast path: the usual values name no extra headers.
  if (value === undefined || value === 'keep-alive' || value === 'close' || value === 'Keep-Alive') return undefined;
  let set: Set<string> | undefined;
  for (const t of value.split(',')) {
    const tok = t.trim().toLowerCase();
    if (tok && !HOP_BY_HOP.has(tok) && keep?.has(tok) !== true) (set ??= new Set()).add(tok);
  }
  return set;
}

/**
 * A response's raw header pairs (node:http's `rawHeaders`) without the hop-by-hop ones: the fixed
 * list and those named in any Connection field (RFC 9110 §7.6.1).
 */
export function withoutHopByHop(raw: readonly string[]): string[] {
  let connection: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'connection') connection = connection === undefined ? raw[i + 1]! : connection + ',' + raw[i + 1]!;
  }
  const listed = connectionTokens(connection, RESPONSE_FRAMING);
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (!HOP_BY_HOP.has(lower) && listed?.has(lower) !== true) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** A reason phrase to forward: the upstream's if it is plain visible ASCII, else the standard one. */
export function reasonPhrase(status: number, text: string): string {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7e || (c < 0x20 && c !== 9)) return STATUS_CODES[status] ?? '';
  }
  return text;
}

/** A client header's value, unless the client listed it in Connection (then it is not forwarded). */
function clientValue(headers: IncomingHttpHeaders, name: string, listed: Set<string> | undefined): string | string[] | undefined {
  return listed !== undefined && listed.has(name) ? undefined : headers[name];
}

function appendForwarded(existing: string | string[] | undefined, value: string): string {
  if (existing === undefined || existing === '') return value;
  return (Array.isArray(existing) ? existing.join(',') : existing) + ',' + value;
}

/** X-Forwarded-Port as CHP computes it: the Host header's port, else 443/80. */
export function forwardedPort(host: string | undefined, encrypted: boolean): string {
  if (host !== undefined) {
    const m = /:(\d+)/.exec(host.startsWith('[') ? host.slice(host.indexOf(']') + 1) : host);
    if (m) return m[1]!;
  }
  return encrypted ? '443' : '80';
}

/**
 * The upstream request's headers as a flat [name, value, ...] list, built from the client's raw
 * headers (names keep their case, repeated headers stay repeated). Node writes such a list as is,
 * skipping its per-header setHeader validation: every value here came through Node's parser or was
 * validated at startup, so this is safe and measurably cheaper on the hot path.
 */
export function upstreamRequestHeaders(
  req: IncomingMessage,
  upstream: Upstream,
  opts: HeaderOptions,
  upgrade: boolean,
): string[] {
  const inHeaders: IncomingHttpHeaders = req.headers;
  const listed = connectionTokens(inHeaders.connection, NOT_HOP_BY_HOP);
  const host = inHeaders.host;
  const raw = req.rawHeaders;
  const out: string[] = [];
  const custom = opts.customHeaders;
  let sawHost = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || CLIENT_CLAIMS.has(lower) || (listed !== undefined && listed.has(lower))) continue;
    if (opts.xForward && lower.startsWith('x-forwarded-')) {
      if (lower === 'x-forwarded-for' || lower === 'x-forwarded-port' || lower === 'x-forwarded-proto') continue;
    }
    if (lower === 'host') {
      // request-rules.ts let through one Host at most; its value may be an absolute-form authority.
      if (opts.changeOrigin || sawHost) continue;
      sawHost = true;
      out.push(name, host ?? '');
      continue;
    }
    if (custom.length > 0 && custom.some(([k]) => k === lower)) continue;
    // Expect: 100-continue was answered to the client by Node's server; undici (proxied requests)
    // does not implement it and refuses the header.
    if (!upgrade && lower === 'expect') continue;
    out.push(name, raw[i + 1]!);
  }
  if (upgrade) {
    out.push('connection', 'upgrade', 'upgrade', String(inHeaders.upgrade));
  } else if ((req.method === 'DELETE' || req.method === 'OPTIONS') && inHeaders['content-length'] === undefined && inHeaders['transfer-encoding'] === undefined) {
    out.push('content-length', '0');
  }
  if (opts.xForward) {
    const encrypted = (req.socket as TLSSocket).encrypted === true;
    out.push(
      'x-forwarded-for', appendForwarded(clientValue(inHeaders, 'x-forwarded-for', listed), req.socket.remoteAddress ?? ''),
      'x-forwarded-port', appendForwarded(clientValue(inHeaders, 'x-forwarded-port', listed), forwardedPort(host, encrypted)),
      'x-forwarded-proto', appendForwarded(clientValue(inHeaders, 'x-forwarded-proto', listed), encrypted ? 'https' : 'http'),
    );
    if (!clientValue(inHeaders, 'x-forwarded-host', listed)) out.push('x-forwarded-host', host ?? '');
  }
  // With a header list Node adds no Host of its own: the target's, when the client sent none
  // (HTTP/1.0) or an absolute-form request had no Host line.
  if (opts.changeOrigin) out.push('host', upstream.hostHeader);
  else if (!sawHost) out.push('host', host || upstream.hostHeader);
  for (const [name, value] of custom) out.push(name, value);
  return out;
}

/**
 * upstreamRequestHeaders for a request the fast path parsed (fast-parser.ts): the same list, from
 * the same rules. The fast subset makes some rules moot — Connection is only keep-alive/close (it
 * names no header), Host is there once, Expect and Upgrade never are, each X-Forwarded-* is there
 * at most once — and test/unit/fast-parser.test.ts checks both builders agree on every request the
 * fast path accepts.
 */
export function fastUpstreamHeaders(r: FastRequest, upstream: Upstream, opts: HeaderOptions, remoteAddress: string, encrypted: boolean): string[] {
  const raw = r.raw;
  const out: string[] = [];
  const custom = opts.customHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || CLIENT_CLAIMS.has(lower)) continue;
    if (opts.xForward && (lower === 'x-forwarded-for' || lower === 'x-forwarded-port' || lower === 'x-forwarded-proto')) continue;
    if (lower === 'host') {
      if (!opts.changeOrigin) out.push(name, r.host);
      continue;
    }
    if (custom.length > 0 && custom.some(([k]) => k === lower)) continue;
    out.push(name, raw[i + 1]!);
  }
  if ((r.method === 'DELETE' || r.method === 'OPTIONS') && r.contentLength === -1) out.push('content-length', '0');
  if (opts.xForward) {
    out.push(
      'x-forwarded-for', appendForwarded(r.xff, remoteAddress),
      'x-forwarded-port', appendForwarded(r.xfPort, forwardedPort(r.host, encrypted)),
      'x-forwarded-proto', appendForwarded(r.xfProto, encrypted ? 'https' : 'http'),
    );
    if (!r.xfHost) out.push('x-forwarded-host', r.host);
  }
  if (opts.changeOrigin) out.push('host', upstream.hostHeader);
  for (const [name, value] of custom) out.push(name, value);
  return out;
}

/**
 * An upstream response's Transfer-Encoding (every line, comma-joined): whether the body is chunked
 * (a final chunked: RFC 9112 §6.3) and the other codings it names, as listed, ", "-joined (e.g.
 * "gzip"; undefined if none). undefined: refused (the caller answers 502) — chunked somewhere but
 * last, twice or with parameters (§6.1, §7: it has none), or an element whose name is not a token
 * (what llhttp, reading the node:http path's responses, would frame differently from us).
 * The field is hop-by-hop and the proxy re-frames the body as chunked, so the client of a response
 * with a body gets `Transfer-Encoding: <codings>, chunked`: without it, coded bytes would pass for
 * the content.
 */
export function responseTransferCodings(te: string): { chunked: boolean; codings: string | undefined } | undefined {
  const list = te.split(',').map(trimOws).filter((c) => c !== '');
  let chunked = false;
  for (let k = 0; k < list.length; k++) {
    const c = list[k]!;
    const semi = c.indexOf(';');
    const name = semi === -1 ? c : trimOws(c.slice(0, semi));
    if (!isToken(name)) return undefined;
    if (name.toLowerCase() === 'chunked') {
      if (semi !== -1 || k !== list.length - 1) return undefined;
      chunked = true;
    }
  }
  const rest = chunked ? list.slice(0, -1) : list;
  return { chunked, codings: rest.length > 0 ? rest.join(', ') : undefined };
}

/** Without surrounding SP/HTAB (RFC 9110 OWS; String.trim() would also take U+00A0 and others). */
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

export interface RawResponseHeaders {
  /** [name, value, ...] as the upstream sent them (duplicates kept), hop-by-hop ones removed. */
  readonly list: string[];
  readonly location: string | undefined;
  /** Index of the Location name in `list` (its value follows), or -1. */
  readonly locationIndex: number;
  readonly contentLength: number | undefined;
  /** Transfer codings besides a final chunked (responseTransferCodings); null: a Transfer-Encoding refused. */
  readonly codings: string | undefined | null;
  /** A final chunked coding. */
  readonly chunked: boolean;
}

/** The upstream's raw response headers (undici's Buffer pairs) for the client, minus hop-by-hop ones. */
export function responseHeadersFromRaw(raw: readonly Buffer[]): RawResponseHeaders {
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    // Every Connection field counts (RFC 9110 §5.3: repeated fields are one comma-separated list).
    if (raw[i]!.length === 10 && raw[i]!.toString('latin1').toLowerCase() === 'connection') {
      const v = raw[i + 1]!.toString('latin1');
      connection = connection === undefined ? v : connection + ',' + v;
    }
  }
  const listed = connectionTokens(connection, RESPONSE_FRAMING);
  const list: string[] = [];
  let location: string | undefined;
  let locationIndex = -1;
  let contentLength: number | undefined;
  let te: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const lower = name.toLowerCase();
    if (lower === 'transfer-encoding') {
      const v = raw[i + 1]!.toString('latin1');
      te = te === undefined ? v : te + ',' + v;
    }
    if (HOP_BY_HOP.has(lower) || (listed !== undefined && listed.has(lower))) continue;
    const value = raw[i + 1]!.toString('latin1');
    if (lower === 'location' && locationIndex === -1) {
      location = value;
      locationIndex = list.length;
    } else if (lower === 'content-length') {
      contentLength = Number(value);
    }
    list.push(name, value);
  }
  let codings: string | undefined | null;
  let chunked = false;
  if (te !== undefined) {
    const t = responseTransferCodings(te);
    codings = t === undefined ? null : t.codings;
    chunked = t?.chunked === true;
  }
  return { list, location, locationIndex, contentLength, codings, chunked };
}

const REDIRECT_STATUS = new Set([201, 301, 302, 307, 308]);

/**
 * --auto-rewrite / --protocol-rewrite: rewrite a redirect's Location when it points at the
 * target itself (same host:port), as http-proxy-3 does. Returns the new value or undefined.
 */
export function rewriteLocation(
  location: unknown,
  status: number,
  upstream: Upstream,
  clientHost: string | undefined,
  autoRewrite: boolean,
  protocolRewrite: string | undefined,
): string | undefined {
  if (typeof location !== 'string' || !REDIRECT_STATUS.has(status)) return undefined;
  let u: URL;
  try {
    u = new URL(location, 'http://base.invalid');
  } catch {
    return undefined;
  }
  if (u.host !== upstream.hostHeader) return undefined;
  if (autoRewrite && clientHost) {
    // WHATWG's host setter keeps the old port when the new host has none (http-proxy-3 inherits
    // that bug); a client Host without a port means the scheme's default port.
    u.host = clientHost;
    if (!/:\d+$/.test(clientHost)) u.port = '';
  }
  if (protocolRewrite) u.protocol = protocolRewrite;
  return u.toString();
}

/** Build the upstream path (CHP's prependPath / includePrefix semantics, http-proxy-3's urlJoin). */
export function upstreamPath(
  upstream: Upstream,
  reqPath: string,
  query: string,
  prefixDepth: number,
  prependPath: boolean,
  includePrefix: boolean,
): string {
  let rest = reqPath;
  if (!includePrefix && prefixDepth > 0) {
    // Drop the first `prefixDepth` segments of the (normalised, encoded) request path.
    let idx = 0;
    for (let n = 0; n < prefixDepth && idx !== -1; n++) idx = reqPath.indexOf('/', idx + 1);
    rest = idx === -1 ? '' : reqPath.slice(idx);
  }
  const basePath = prependPath ? upstream.pathname : '/';
  const baseQuery = prependPath ? upstream.search : '';
  if (basePath === '/' && baseQuery === '' && rest.charCodeAt(0) === 47) return rest + query;
  let path: string;
  if (rest === '') path = basePath;
  else if (basePath.endsWith('/')) path = rest.startsWith('/') ? basePath + rest.slice(1) : basePath + rest;
  else path = rest.startsWith('/') ? basePath + rest : basePath + '/' + rest;
  const q1 = baseQuery.length > 1 ? baseQuery.slice(1) : '';
  const q2 = query.length > 1 ? query.slice(1) : '';
  const q = q1 && q2 ? q1 + '&' + q2 : q1 || q2;
  return q ? path + '?' + q : path;
}
