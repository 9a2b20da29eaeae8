// Targets: where a route sends traffic. Parsed once when a route enters the table, never per request.
//
// Supported schemes, as in CHP 5.3: http, https, and http+unix / unix+http (the host part is the
// URL-encoded socket path, e.g. http+unix://%2Fvar%2Frun%2Fapp.sock/prefix). Anything else is a
// clear SWY_TARGET_INVALID at the API, instead of CHP's 201 followed by a 500 on every request.

import { ErrorCode, SwitchyardError } from '../errors.js';

export type UpstreamProtocol = 'http:' | 'https:';

export interface Upstream {
  /** The target string exactly as given. */
  readonly target: string;
  readonly protocol: UpstreamProtocol;
  /** Hostname without IPv6 brackets, for connect(); '' for unix sockets. */
  readonly hostname: string;
  readonly port: number;
  /** Set for http+unix targets. */
  readonly socketPath: string | undefined;
  /** Target path without trailing "?"; "/" when the target has none. */
  readonly pathname: string;
  /** Target query including "?", or "". */
  readonly search: string;
  /** Host header value for --change-origin (port only when not the scheme default). */
  readonly hostHeader: string;
  /** Stable identity of the connection pool this target uses. */
  readonly poolKey: string;
}

export function parseTarget(target: unknown): Upstream {
  if (typeof target !== 'string') {
    throw new SwitchyardError(ErrorCode.ROUTE_INVALID, "Must specify 'target' as string");
  }
  if (target.length === 0 || target.length > 2048) {
    throw new SwitchyardError(ErrorCode.TARGET_INVALID, 'target must be a non-empty URL of at most 2048 characters');
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f]/.test(target)) {
    throw new SwitchyardError(ErrorCode.TARGET_INVALID, 'target contains whitespace or control characters');
  }
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new SwitchyardError(ErrorCode.TARGET_INVALID, `target is not a valid URL: ${JSON.stringify(target)}`);
  }
  const scheme = url.protocol;
  const search = url.search;
  const pathname = url.pathname === '' ? '/' : url.pathname;
  if (scheme === 'http+unix:' || scheme === 'unix+http:') {
    let socketPath: string;
    try {
      socketPath = decodeURIComponent(url.host);
    } catch {
      throw new SwitchyardError(ErrorCode.TARGET_INVALID, 'http+unix target has a malformed socket path');
    }
    if (!socketPath) {
      throw new SwitchyardError(ErrorCode.TARGET_INVALID, 'http+unix target needs a URL-encoded socket path as its host');
    }
    return Object.freeze({
      target,
      protocol: 'http:',
      hostname: '',
      port: 0,
      socketPath,
      pathname,
      search,
      hostHeader: 'localhost',
      poolKey: `unix:${socketPath}`,
    });
  }
  if (scheme !== 'http:' && scheme !== 'https:') {
    throw new SwitchyardError(
      ErrorCode.TARGET_INVALID,
      `unsupported target scheme "${scheme.slice(0, -1)}"; use http, https or http+unix`,
    );
  }
  if (!url.hostname) {
    throw new SwitchyardError(ErrorCode.TARGET_INVALID, 'target has no host');
  }
  const defaultPort = scheme === 'https:' ? 443 : 80;
  const port = url.port ? Number(url.port) : defaultPort;
  let hostname = url.hostname;
  if (hostname.startsWith('[') && hostname.endsWith(']')) hostname = hostname.slice(1, -1);
  return Object.freeze({
    target,
    protocol: scheme,
    hostname,
    port,
    socketPath: undefined,
    pathname,
    search,
    hostHeader: url.host,
    poolKey: `${scheme}//${url.host}`,
  });
}
