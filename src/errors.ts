// One error type for the whole process, with stable codes.
//
// Contract: every error that crosses a module boundary on purpose is a SwitchyardError with one of
// the codes below. The mapping from code to HTTP status lives in api/http-errors.ts (the only place),
// and docs/errors.md lists every code. Codes never change meaning once released.

export const ErrorCode = {
  /** A flag, env var or config value is invalid; the process refuses to start. */
  CONFIG_INVALID: 'SWY_CONFIG_INVALID',
  /** A flag CHP has that Switchyard does not support (yet); never silently ignored. */
  CONFIG_UNSUPPORTED: 'SWY_CONFIG_UNSUPPORTED',
  /** A listener (proxy, API, metrics, redirect, xDS) cannot bind its port or socket; the cause is the OS error. */
  LISTEN_FAILED: 'SWY_LISTEN_FAILED',
  /** A route path that cannot be stored (NUL bytes, dot segments, bad encoding...). */
  ROUTE_PATH_INVALID: 'SWY_ROUTE_PATH_INVALID',
  /** A route body that is not what the API accepts (no string target, not an object...). */
  ROUTE_INVALID: 'SWY_ROUTE_INVALID',
  /** Route data nested deeper or larger than routing/route-data.ts allows. */
  ROUTE_DATA_LIMIT: 'SWY_ROUTE_DATA_LIMIT',
  /** A target URL that does not parse or uses an unsupported scheme. */
  TARGET_INVALID: 'SWY_TARGET_INVALID',
  /** The route does not exist. */
  ROUTE_NOT_FOUND: 'SWY_ROUTE_NOT_FOUND',
  /** Request body is not valid JSON. */
  BODY_INVALID_JSON: 'SWY_BODY_INVALID_JSON',
  /** Request body is larger than the API accepts. */
  BODY_TOO_LARGE: 'SWY_BODY_TOO_LARGE',
  /** A query parameter does not parse (e.g. inactive_since). */
  QUERY_INVALID: 'SWY_QUERY_INVALID',
  /** Missing or wrong API token. */
  AUTH_FAILED: 'SWY_AUTH_FAILED',
  /** No valid dashboard session or token (log in first); a failed dashboard login. */
  UNAUTHENTICATED: 'SWY_UNAUTHENTICATED',
  /** The request body's Content-Type is not one this endpoint accepts (the dashboard login takes JSON only). */
  UNSUPPORTED_MEDIA_TYPE: 'SWY_UNSUPPORTED_MEDIA_TYPE',
  /** The dashboard is off because the API has no token to log in with. */
  DASHBOARD_DISABLED: 'SWY_DASHBOARD_DISABLED',
  /** The dashboard already serves its maximum number of live streams; try again later. */
  TOO_MANY_STREAMS: 'SWY_TOO_MANY_STREAMS',
  /** The path exists but not for this method. */
  METHOD_NOT_ALLOWED: 'SWY_METHOD_NOT_ALLOWED',
  /** No such API resource. */
  NOT_FOUND: 'SWY_NOT_FOUND',
  /** The route store cannot be reached or refused the write. */
  STORE_UNAVAILABLE: 'SWY_STORE_UNAVAILABLE',
  /** A write did not become live in time. */
  STORE_TIMEOUT: 'SWY_STORE_TIMEOUT',
  /** Certificate-store data that is unusable: refused on write, or found corrupt when read (names the entry). */
  CERT_INVALID: 'SWY_CERT_INVALID',
  /** A certificate lock (one ACME order per name across replicas) was not free within the wait. */
  CERT_LOCK_TIMEOUT: 'SWY_CERT_LOCK_TIMEOUT',
  /** Anything else: a bug. Logged with a stack. */
  INTERNAL: 'SWY_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class SwitchyardError extends Error {
  readonly code: ErrorCode;
  /** Extra, non-secret facts for logs and JSON error bodies. */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SwitchyardError';
    this.code = code;
    this.details = options?.details;
  }
}

export function isSwitchyardError(e: unknown): e is SwitchyardError {
  return e instanceof SwitchyardError;
}
