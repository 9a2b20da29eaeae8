// Request paths on the data plane: split once, decode per segment, normalise like CHP.
//
// Contract: the path we route on and the path we forward are the same normalised path, so a
// hostile path cannot be routed one way and read another way by the backend.
//  - Fast path (almost every request): only RFC 3986 path characters, no "%", no "\", no dot
//    segments. The raw path is forwarded as is and split without decoding.
//  - Slow path: WHATWG URL normalisation (what CHP 5.3 does: dot segments resolved, "\" read as
//    "/", unsafe characters %-encoded), then each segment is URI-decoded for matching.
//    Unlike CHP, an encoded slash (%2F) stays inside its segment: "/user/a%2Fb" never matches
//    the route "/user/a/b".
//  - A malformed %-escape or an encoded NUL returns null: the caller answers 400.

export interface RequestPath {
  /** Normalised path, still %-encoded, without the query. Starts with "/". */
  readonly path: string;
  /** Query including its "?", or "". */
  readonly query: string;
  /** Decoded segments of `path` ("/" -> []). */
  readonly segments: string[];
}

// 1 where a byte may appear in a fast-path path: unreserved, sub-delims, ":" "@" "/".
const FAST = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/") {
  FAST[c.charCodeAt(0)] = 1;
}

function isFast(url: string, end: number): boolean {
  if (end === 0 || url.charCodeAt(0) !== 47) return false; // must start with "/"
  if (end > 1 && url.charCodeAt(1) === 47) return false; // "//" needs care
  for (let i = 0; i < end; i++) {
    const c = url.charCodeAt(i);
    if (c >= 128 || FAST[c] === 0) return false;
    // a dot segment: "/." followed by "/", end, or another "." then "/" or end
    if (c === 46 && url.charCodeAt(i - 1) === 47) {
      const n = i + 1 < end ? url.charCodeAt(i + 1) : 47;
      if (n === 47) return false;
      if (n === 46) {
        const n2 = i + 2 < end ? url.charCodeAt(i + 2) : 47;
        if (n2 === 47) return false;
      }
    }
  }
  return true;
}

function fastSegments(path: string): string[] {
  return path.length === 1 ? [] : path.slice(1).split('/');
}

export function parseRequestPath(url: string): RequestPath | null {
  const q = url.indexOf('?');
  const end = q === -1 ? url.length : q;
  if (isFast(url, end)) {
    const path = q === -1 ? url : url.slice(0, q);
    return { path, query: q === -1 ? '' : url.slice(q), segments: fastSegments(path) };
  }
  let u: URL;
  try {
    u = url.charCodeAt(0) === 47 ? new URL('http://h' + url) : new URL(url);
  } catch {
    return null;
  }
  const path = u.pathname || '/';
  const raw = fastSegments(path);
  const segments: string[] = new Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const s = raw[i]!;
    if (s.indexOf('%') === -1) {
      segments[i] = s;
      continue;
    }
    let d: string;
    try {
      d = decodeURIComponent(s);
    } catch {
      return null;
    }
    if (d.indexOf('\u0000') !== -1) return null;
    segments[i] = d;
  }
  return { path, query: u.search, segments };
}

/** Lowercased host without port, from a Host header value ("" when absent or malformed). */
export function hostKey(hostHeader: string | undefined): string {
  if (!hostHeader) return '';
  let end = hostHeader.length;
  if (hostHeader.charCodeAt(0) === 91 /* [ */) {
    const close = hostHeader.indexOf(']');
    end = close === -1 ? end : close + 1;
  } else {
    const colon = hostHeader.indexOf(':');
    if (colon !== -1) end = colon;
  }
  return hostHeader.slice(0, end).toLowerCase();
}
