// Route keys: the canonical form of a route's path, shared by the API, the stores and the table.
//
// Contract (CHP 5.3 compatible): a key starts with "/", has no trailing "/" (except the root "/"),
// and is stored *decoded* (the API URI-decodes what it receives, as CHP does), so
// POST /api/routes/user/a%20b stores "/user/a b" and GET /api/routes returns that key.
// We reject what could never match or would be dangerous to store: NUL and other C0 control
// characters, and "." / ".." segments (request paths are dot-normalised before lookup).

import { ErrorCode, SwitchyardError } from '../errors.js';

/** CHP's trimPrefix, extended to strip every trailing slash ("/a//" -> "/a"). */
export function cleanPath(path: string): string {
  let p = path.length === 0 || path.charCodeAt(0) !== 47 /* / */ ? '/' + path : path;
  let end = p.length;
  while (end > 1 && p.charCodeAt(end - 1) === 47) end--;
  if (end !== p.length) p = p.slice(0, end);
  return p;
}

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/**
 * Validate and canonicalise a route key that came from outside (API, file, etcd).
 * Throws SWY_ROUTE_PATH_INVALID with a message that says what is wrong.
 */
export function validateRoutePath(path: string): string {
  if (typeof path !== 'string') {
    throw new SwitchyardError(ErrorCode.ROUTE_PATH_INVALID, 'route path must be a string');
  }
  const p = cleanPath(path);
  if (p.length > 4096) {
    throw new SwitchyardError(ErrorCode.ROUTE_PATH_INVALID, 'route path longer than 4096 characters');
  }
  if (CONTROL_CHARS.test(p)) {
    throw new SwitchyardError(ErrorCode.ROUTE_PATH_INVALID, 'route path contains a NUL or control character');
  }
  for (const seg of p.split('/')) {
    if (seg === '.' || seg === '..') {
      throw new SwitchyardError(
        ErrorCode.ROUTE_PATH_INVALID,
        `route path contains a "${seg}" segment; request paths are normalised, so it could never match`,
      );
    }
  }
  return p;
}

/** URI-decode an API path component; a malformed escape is a 400, not an exception. */
export function decodeApiPath(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new SwitchyardError(ErrorCode.ROUTE_PATH_INVALID, 'route path has a malformed %-escape');
  }
}

/** Split a canonical key into trie segments ("/" -> [], "/a/b" -> ["a", "b"]). */
export function pathSegments(key: string): string[] {
  return key === '/' ? [] : key.slice(1).split('/');
}
