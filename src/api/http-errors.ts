// The one mapping from SwitchyardError codes to HTTP statuses (docs/errors.md mirrors it).

import type { ServerResponse } from 'node:http';
import { ErrorCode, type SwitchyardError } from '../errors.js';

export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  [ErrorCode.CONFIG_INVALID]: 500,
  [ErrorCode.CONFIG_UNSUPPORTED]: 500,
  [ErrorCode.LISTEN_FAILED]: 500,
  [ErrorCode.ROUTE_PATH_INVALID]: 400,
  [ErrorCode.ROUTE_INVALID]: 400,
  [ErrorCode.ROUTE_DATA_LIMIT]: 400,
  [ErrorCode.TARGET_INVALID]: 400,
  [ErrorCode.ROUTE_NOT_FOUND]: 404,
  [ErrorCode.BODY_INVALID_JSON]: 400,
  [ErrorCode.BODY_TOO_LARGE]: 413,
  [ErrorCode.QUERY_INVALID]: 400,
  [ErrorCode.AUTH_FAILED]: 403,
  [ErrorCode.UNAUTHENTICATED]: 401,
  [ErrorCode.UNSUPPORTED_MEDIA_TYPE]: 415,
  [ErrorCode.DASHBOARD_DISABLED]: 403,
  [ErrorCode.TOO_MANY_STREAMS]: 503,
  [ErrorCode.METHOD_NOT_ALLOWED]: 405,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.STORE_UNAVAILABLE]: 503,
  [ErrorCode.STORE_TIMEOUT]: 504,
  [ErrorCode.CERT_INVALID]: 500,
  [ErrorCode.CERT_LOCK_TIMEOUT]: 503,
  [ErrorCode.INTERNAL]: 500,
};

/**
 * Answer with the status for `err.code`. The body is CHP's: the plain message (403 has none),
 * so JupyterHub logs read the same; the stable code travels in the X-Switchyard-Error header.
 */
export function sendError(res: ServerResponse, err: SwitchyardError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = HTTP_STATUS[err.code];
  const body = err.code === ErrorCode.AUTH_FAILED ? '' : err.message;
  res.writeHead(status, {
    'x-switchyard-error': err.code,
    ...(body ? { 'content-type': 'text/plain; charset=utf-8' } : {}),
  });
  res.end(body);
}
