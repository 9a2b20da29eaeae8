// The one schema of every setting: name, type, default, how it is given (flag, environment, config
// file), whether it is secret, whether a running process can reload it, and its help text.
//
// Contract:
//  - `name` is the one name of a setting everywhere: the flag's long name (`--api-port`), the config
//    file key (`api-port = 8001`), and, upper-cased with `-`/`.` as `_` after `SWITCHYARD_`, the
//    environment variable (`SWITCHYARD_API_PORT`). A negated flag's name is the positive setting
//    (`--no-x-forward` sets `x-forward = false`). A dotted name is a key inside a TOML table
//    (`dashboard.users` is `users` in `[dashboard]`).
//  - Every configurable-http-proxy 5.3 flag keeps its exact name and meaning (group 'chp').
//  - Secrets have no flag (a command line is visible in `ps`); they come from the environment, the
//    config file, or a file named by `<name>-file` / `SWITCHYARD_<NAME>_FILE` (Kubernetes Secrets).
//  - `reloadable: true` settings may change in a running process (part of issue 13's reload); every
//    other setting needs a restart, and a reload that changes one names it.
//  - `check` validates one value on its own (the loader reports its reason with the value's place);
//    rules across settings live in config.ts.
// --help, README.md's flag tables and docs/configuration.md are generated from this table
// (config-docs.ts); test/unit/config-docs.test.ts fails when they drift.

import { LOG_LEVELS } from '../observability/logger.js';
import { parseTarget } from '../routing/target.js';
import { checkStoreSpec } from './store-spec.js';

export type SettingType = 'string' | 'int' | 'bool' | 'list';
export type SettingValue = string | number | boolean | readonly string[];

/**
 * How a setting is given on the command line:
 *  value   --name <arg> or --name=<arg>
 *  switch  --name (true; default false)
 *  negated --no-name (false; default true)
 *  repeat  --name <arg>, repeatable: a list
 *  none    no flag (secrets and file-only settings)
 */
export type FlagForm = 'value' | 'switch' | 'negated' | 'repeat' | 'none';

export interface Setting {
  readonly name: string;
  readonly type: SettingType;
  readonly flag: FlagForm;
  /** The flag argument's placeholder in --help (`--port <n>`). */
  readonly arg?: string;
  /** The value used when the setting is given nowhere; undefined = unset (or derived: see defaultText). */
  readonly default?: SettingValue;
  /** The default as documented, when it is derived from other settings or the host. */
  readonly defaultText?: string;
  /** Environment variables read besides SWITCHYARD_<NAME> (CHP's names), lower precedence than it. */
  readonly envAliases?: readonly string[];
  /** Never printed (check-config redacts it), never a flag; also read from a file (`<name>-file`). */
  readonly secret?: boolean;
  /** A running process may apply a new value (reload); false = restart needed. */
  readonly reloadable?: boolean;
  /** Not in the config file (only `config` itself: the file cannot name another file). */
  readonly notInFile?: boolean;
  readonly group: 'chp' | 'switchyard';
  /** Heading in docs/configuration.md. */
  readonly section: Section;
  readonly help: string;
  /** Validate one value on its own; returns the reason it is invalid, or undefined. */
  readonly check?: (value: never) => string | undefined;
}

export type Section = 'Config file' | 'Proxy' | 'TLS' | 'API' | 'Routing and headers' | 'Timeouts and limits' | 'Logs and metrics' | 'Route store' | 'Dashboard' | 'Envoy and xDS';

export const SECTIONS: readonly Section[] = ['Config file', 'Proxy', 'TLS', 'API', 'Routing and headers', 'Timeouts and limits', 'Logs and metrics', 'Route store', 'Dashboard', 'Envoy and xDS'];

// --- value checks (reasons read after "key: ") --------------------------------------------------

const port = (v: number): string | undefined =>
  Number.isInteger(v) && v >= 0 && v <= 65535 ? undefined : `must be a port number (0-65535), got ${v}`;
const nonNegative = (v: number): string | undefined => (v >= 0 ? undefined : `must not be negative, got ${v}`);
const range = (lo: number, hi: number, unit = '') => (v: number): string | undefined =>
  v >= lo && v <= hi ? undefined : `must be ${lo}..${hi}${unit}, got ${v}`;
const oneOf = (...choices: string[]) => (v: string): string | undefined =>
  choices.includes(v)
    ? undefined
    : `must be ${choices.length === 2 ? `${choices[0]} or ${choices[1]}` : `one of ${choices.join(', ')}`}; got '${v}'`;
const nonEmpty = (v: string): string | undefined => (v.trim() === '' ? 'must not be empty' : undefined);

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Visible ASCII, space and tab, and obs-text; never CR, LF or NUL (header injection).
// eslint-disable-next-line no-control-regex
const HEADER_VALUE_BAD = /[\u0000-\u0008\u000a-\u001f\u007f]/;
const NOT_LATIN1 = /[\u0100-\uffff]/; // (lone surrogates and astral characters are in this range too)

/** CHP's "k:v" custom header syntax, validated against header injection: [name, value] or a reason. */
export function splitCustomHeader(raw: string): [string, string] | string {
  const value = raw.trim();
  const colon = value.indexOf(':');
  if (colon <= 0) return `A colon was expected in custom header: ${raw}`;
  const name = value.slice(0, colon).trim();
  const v = value.slice(colon + 1).trim();
  if (!HEADER_NAME.test(name)) return `custom header name is not a valid HTTP token: ${JSON.stringify(name)}`;
  if (HEADER_VALUE_BAD.test(v)) return `custom header value for '${name}' contains control characters`;
  // A field value is bytes; both data paths send it as latin1 (one byte per character), which
  // would turn e.g. U+010D into a bare CR. Above U+00FF there is no byte to send: refused here.
  if (NOT_LATIN1.test(v)) return `custom header value for '${name}' contains characters beyond U+00FF (a header value is bytes: use ASCII)`;
  return [name, v];
}

const headers = (list: readonly string[]): string | undefined => {
  for (const h of list) {
    const r = splitCustomHeader(h);
    if (typeof r === 'string') return r;
  }
  return undefined;
};

const target = (v: string): string | undefined => {
  try {
    parseTarget(v);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
};

const storeSpec = (v: string): string | undefined => {
  try {
    checkStoreSpec(v);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
};

/** An htpasswd line: `user:hash`, user without ':' or whitespace, hash non-empty (part B checks the hash kind). */
export const HTPASSWD_LINE = /^([^:\s]+):(\S+)$/;
const htpasswdLines = (list: readonly string[]): string | undefined => {
  const seen = new Set<string>();
  for (const [i, line] of list.entries()) {
    const m = HTPASSWD_LINE.exec(line);
    // The reason never quotes the entry: it may hold a password hash (or a password typed by mistake).
    if (!m) return `each entry must be "user:hash" (an htpasswd line); entry ${i + 1} is not`;
    if (seen.has(m[1]!)) return `user '${m[1]}' is listed twice`;
    seen.add(m[1]!);
  }
  return undefined;
};

// --- the table -----------------------------------------------------------------------------------

const chp = 'chp' as const;
const sy = 'switchyard' as const;

export const SETTINGS: readonly Setting[] = [
  { name: 'config', type: 'string', flag: 'value', arg: 'file', notInFile: true, group: sy, section: 'Config file',
    help: 'Read settings from this TOML file (or JSON if it ends in .json); flags and environment override it' },

  // Proxy (public side)
  { name: 'ip', type: 'string', flag: 'value', arg: 'ip-address', defaultText: 'all interfaces', group: chp, section: 'Proxy',
    help: 'Public-facing IP of the proxy' },
  { name: 'port', type: 'int', flag: 'value', arg: 'n', default: 8000, group: chp, section: 'Proxy', check: port,
    help: 'Public-facing port of the proxy' },
  { name: 'socket', type: 'string', flag: 'value', arg: 'path', group: chp, section: 'Proxy', check: nonEmpty,
    help: 'Unix socket for the proxy, instead of ip/port' },
  { name: 'redirect-port', type: 'int', flag: 'value', arg: 'redirect-port', group: chp, section: 'Proxy', check: port,
    help: 'Redirect HTTP requests on this port to the server on HTTPS' },
  { name: 'redirect-to', type: 'int', flag: 'value', arg: 'port', group: chp, section: 'Proxy', check: port,
    help: 'Redirect HTTP requests from redirect-port to this port' },
  { name: 'pid-file', type: 'string', flag: 'value', arg: 'pid-file', group: chp, section: 'Proxy', check: nonEmpty,
    help: 'Write our PID to a file (removed on exit)' },
  { name: 'workers', type: 'int', flag: 'value', arg: 'n', default: 0, defaultText: 'one per core', group: sy, section: 'Proxy', check: range(0, 256),
    help: 'Data-plane workers sharing the public port (0: one per core; 1: in the main process)' },
  { name: 'worker-mode', type: 'string', flag: 'value', arg: 'mode', default: 'auto', group: sy, section: 'Proxy', check: oneOf('auto', 'threads', 'processes'),
    help: 'What the data-plane workers are (with workers > 1): threads of the main process, each listening on the public port with SO_REUSEPORT (Linux, Node 22.12+, TCP listener), or node:cluster processes; auto: threads where supported, else processes' },
  { name: 'fast-path', type: 'bool', flag: 'negated', default: true, group: sy, section: 'Proxy',
    help: 'Serve plain-HTTP requests of the common shape through the HTTP/1.1 fast path; everything else goes through node:http (--no-fast-path: every request through node:http)' },

  // TLS
  { name: 'ssl-key', type: 'string', flag: 'value', arg: 'keyfile', reloadable: true, group: chp, section: 'TLS',
    help: 'SSL key to use, if any' },
  { name: 'ssl-key-passphrase', type: 'string', flag: 'none', secret: true, reloadable: true, envAliases: ['CONFIGPROXY_SSL_KEY_PASSPHRASE'], group: chp, section: 'TLS',
    help: 'Passphrase of the ssl-key' },
  { name: 'ssl-cert', type: 'string', flag: 'value', arg: 'certfile', reloadable: true, group: chp, section: 'TLS',
    help: 'SSL certificate to use, if any' },
  { name: 'ssl-ca', type: 'string', flag: 'value', arg: 'ca-file', group: chp, section: 'TLS',
    help: 'SSL certificate authority, if any' },
  { name: 'ssl-request-cert', type: 'bool', flag: 'switch', default: false, group: chp, section: 'TLS',
    help: 'Request SSL certs to authenticate clients' },
  { name: 'ssl-reject-unauthorized', type: 'bool', flag: 'switch', default: false, group: chp, section: 'TLS',
    help: 'Reject unauthorized SSL connections (with ssl-request-cert)' },
  { name: 'ssl-protocol', type: 'string', flag: 'value', arg: 'ssl-protocol', group: chp, section: 'TLS',
    help: 'Set specific SSL protocol, e.g. TLSv1_2' },
  { name: 'ssl-ciphers', type: 'string', flag: 'value', arg: 'ciphers', defaultText: "CHP's list, without RC4", group: chp, section: 'TLS',
    help: '":"-separated ssl cipher list' },
  { name: 'ssl-allow-rc4', type: 'bool', flag: 'switch', default: false, group: chp, section: 'TLS',
    help: 'Allow RC4 cipher for SSL' },
  { name: 'ssl-dhparam', type: 'string', flag: 'value', arg: 'dhparam-file', group: chp, section: 'TLS',
    help: 'SSL Diffie-Hellman parameters pem file, if any' },
  { name: 'client-ssl-key', type: 'string', flag: 'value', arg: 'keyfile', group: chp, section: 'TLS',
    help: 'SSL key the proxy presents to https targets' },
  { name: 'client-ssl-cert', type: 'string', flag: 'value', arg: 'certfile', group: chp, section: 'TLS',
    help: 'SSL certificate the proxy presents to https targets' },
  { name: 'client-ssl-ca', type: 'string', flag: 'value', arg: 'ca-file', group: chp, section: 'TLS',
    help: 'CA that https targets are verified against' },
  { name: 'client-ssl-request-cert', type: 'bool', flag: 'switch', default: false, group: chp, section: 'TLS',
    help: 'Accepted for CHP compatibility (CHP sets it on a client context, where it has no effect)' },
  { name: 'client-ssl-reject-unauthorized', type: 'bool', flag: 'switch', default: false, group: chp, section: 'TLS',
    help: 'Verify https targets against client-ssl-ca (the default unless insecure)' },
  { name: 'insecure', type: 'bool', flag: 'switch', default: false, group: chp, section: 'TLS',
    help: 'Disable SSL cert verification of https targets' },

  // Automatic HTTPS (ACME; config/acme-config.ts builds AcmeConfig from these, docs/https.md)
  { name: 'acme-domain', type: 'list', flag: 'repeat', arg: 'name', group: sy, section: 'TLS',
    help: 'Obtain and renew a certificate for this name over ACME; turns TLS on for the public port (repeatable)' },
  { name: 'acme-email', type: 'string', flag: 'value', arg: 'addr', group: sy, section: 'TLS',
    help: 'Contact address of the ACME account' },
  { name: 'acme-directory', type: 'string', flag: 'value', arg: 'url', defaultText: "Let's Encrypt production", group: sy, section: 'TLS',
    help: 'ACME directory URL, or letsencrypt-staging' },
  { name: 'acme-directory-ca', type: 'string', flag: 'value', arg: 'ca-file', group: sy, section: 'TLS',
    help: "PEM trusted for the ACME server's own HTTPS (private CAs, test servers)" },
  { name: 'acme-challenge', type: 'string', flag: 'value', arg: 'type', default: 'http-01', group: sy, section: 'TLS', check: oneOf('http-01', 'tls-alpn-01'),
    help: 'http-01 (answered on redirect-port, 80) or tls-alpn-01 (on the public port, 443)' },
  { name: 'acme-eab-kid', type: 'string', flag: 'value', arg: 'kid', group: sy, section: 'TLS',
    help: 'External account binding key id (needs acme-eab-hmac)' },
  { name: 'acme-eab-hmac', type: 'string', flag: 'none', secret: true, group: sy, section: 'TLS',
    help: 'External account binding HMAC key, base64url (with acme-eab-kid)' },
  { name: 'acme-on-demand', type: 'bool', flag: 'switch', default: false, group: sy, section: 'TLS',
    help: 'Order a certificate at the first handshake for a name that has a host route (or that acme-ask allows)' },
  { name: 'acme-ask', type: 'string', flag: 'value', arg: 'url', group: sy, section: 'TLS',
    help: 'With acme-on-demand: also allow names for which GET URL?domain=NAME answers 2xx (ignored without it)' },
  { name: 'acme-check-interval', type: 'int', flag: 'value', arg: 'ms', default: 600000, group: sy, section: 'TLS', check: range(100, 86400000, ' ms'),
    help: 'How often certificates are checked for renewal (jittered)' },

  // API
  { name: 'api-ip', type: 'string', flag: 'value', arg: 'ip', default: 'localhost', group: chp, section: 'API',
    help: 'Inward-facing IP for API requests' },
  { name: 'api-port', type: 'int', flag: 'value', arg: 'n', defaultText: 'port + 1', group: chp, section: 'API', check: port,
    help: 'Inward-facing port for API requests' },
  { name: 'api-socket', type: 'string', flag: 'value', arg: 'path', group: chp, section: 'API', check: nonEmpty,
    help: 'Unix socket for the API, instead of api-ip/api-port' },
  { name: 'auth-token', type: 'string', flag: 'none', secret: true, envAliases: ['CONFIGPROXY_AUTH_TOKEN'], group: chp, section: 'API',
    help: 'Token the REST API requires (Authorization: token ...); no token = an open API, as CHP' },
  { name: 'api-ssl-key', type: 'string', flag: 'value', arg: 'keyfile', reloadable: true, group: chp, section: 'API',
    help: 'SSL key for the API' },
  { name: 'api-ssl-key-passphrase', type: 'string', flag: 'none', secret: true, reloadable: true, envAliases: ['CONFIGPROXY_API_SSL_KEY_PASSPHRASE'], group: chp, section: 'API',
    help: 'Passphrase of the api-ssl-key' },
  { name: 'api-ssl-cert', type: 'string', flag: 'value', arg: 'certfile', reloadable: true, group: chp, section: 'API',
    help: 'SSL certificate for the API' },
  { name: 'api-ssl-ca', type: 'string', flag: 'value', arg: 'ca-file', group: chp, section: 'API',
    help: 'SSL certificate authority for the API' },
  { name: 'api-ssl-request-cert', type: 'bool', flag: 'switch', default: false, group: chp, section: 'API',
    help: 'Request SSL certs to authenticate API clients' },
  { name: 'api-ssl-reject-unauthorized', type: 'bool', flag: 'switch', default: false, group: chp, section: 'API',
    help: 'Reject unauthorized API clients (with api-ssl-request-cert)' },
  { name: 'api-max-body', type: 'int', flag: 'value', arg: 'bytes', default: 1048576, group: sy, section: 'API', check: nonNegative,
    help: 'Largest accepted API request body (at least 1024); larger gets 413' },

  // Routing and headers
  { name: 'default-target', type: 'string', flag: 'value', arg: 'host', group: chp, section: 'Routing and headers', check: target,
    help: 'Default proxy target (proto://host[:port])' },
  { name: 'error-target', type: 'string', flag: 'value', arg: 'host', group: chp, section: 'Routing and headers', check: target,
    help: 'Alternate server for error pages: GET <target>/<code>?url=<path>' },
  { name: 'error-path', type: 'string', flag: 'value', arg: 'path', group: chp, section: 'Routing and headers',
    help: 'Directory with <code>.html / error.html error pages' },
  { name: 'x-forward', type: 'bool', flag: 'negated', default: true, group: chp, section: 'Routing and headers',
    help: "Add 'X-Forwarded-*' headers to proxied requests (--no-x-forward: don't)" },
  { name: 'prepend-path', type: 'bool', flag: 'negated', default: true, group: chp, section: 'Routing and headers',
    help: 'Prepend target paths to proxied requests (--no-prepend-path: avoid it)' },
  { name: 'include-prefix', type: 'bool', flag: 'negated', default: true, group: chp, section: 'Routing and headers',
    help: "Include the routing prefix in proxied requests (--no-include-prefix: don't)" },
  { name: 'auto-rewrite', type: 'bool', flag: 'switch', default: false, group: chp, section: 'Routing and headers',
    help: 'Rewrite the Location header host/port in redirect responses' },
  { name: 'change-origin', type: 'bool', flag: 'switch', default: false, group: chp, section: 'Routing and headers',
    help: 'Changes the origin of the host header to the target URL' },
  { name: 'protocol-rewrite', type: 'string', flag: 'value', arg: 'proto', group: chp, section: 'Routing and headers',
    help: 'Rewrite the Location header protocol in redirect responses' },
  { name: 'custom-header', type: 'list', flag: 'repeat', arg: 'header', default: [], reloadable: true, group: chp, section: 'Routing and headers', check: headers,
    help: 'Custom header "k:v" added to proxied requests (repeatable)' },
  { name: 'host-routing', type: 'bool', flag: 'switch', default: false, group: chp, section: 'Routing and headers',
    help: 'Use host routing (host as first level of path)' },

  // Timeouts and limits
  { name: 'timeout', type: 'int', flag: 'value', arg: 'n', defaultText: 'none', reloadable: true, group: chp, section: 'Timeouts and limits', check: nonNegative,
    help: 'Timeout (in millis) when proxy drops connection for a request' },
  { name: 'proxy-timeout', type: 'int', flag: 'value', arg: 'n', defaultText: 'none', reloadable: true, group: chp, section: 'Timeouts and limits', check: nonNegative,
    help: 'Timeout (in millis) when proxy receives no response from target' },
  { name: 'keep-alive-timeout', type: 'int', flag: 'value', arg: 'timeout', default: 5000, reloadable: true, group: chp, section: 'Timeouts and limits', check: nonNegative,
    help: 'Timeout (in millis) for idle keep-alive client connections (0: the default)' },
  { name: 'request-body-timeout', type: 'int', flag: 'value', arg: 'ms', default: 60000, reloadable: true, group: sy, section: 'Timeouts and limits', check: nonNegative,
    help: 'Longest pause in a request body before the proxy answers 408 and closes (0: none)' },
  { name: 'upstream-connect-timeout', type: 'int', flag: 'value', arg: 'ms', default: 10000, reloadable: true, group: sy, section: 'Timeouts and limits', check: nonNegative,
    help: 'Longest TCP connect + TLS handshake to a target before 503 (0: the default)' },
  { name: 'drain-timeout', type: 'int', flag: 'value', arg: 'ms', default: 10000, group: sy, section: 'Timeouts and limits', check: nonNegative,
    help: 'On SIGTERM, wait at most this long for in-flight requests' },

  // Logs and metrics
  { name: 'log-level', type: 'string', flag: 'value', arg: 'loglevel', default: 'info', reloadable: true, group: chp, section: 'Logs and metrics',
    check: (v: string) => oneOf(...LOG_LEVELS)(v.toLowerCase()),
    help: `Log level (${LOG_LEVELS.join(', ')})` },
  { name: 'log-format', type: 'string', flag: 'value', arg: 'format', default: 'text', group: sy, section: 'Logs and metrics', check: oneOf('text', 'json'),
    help: 'Log format: text or json' },
  { name: 'access-log', type: 'string', flag: 'value', arg: 'dest', defaultText: 'off', reloadable: true, group: sy, section: 'Logs and metrics',
    check: (v: string) => (v.trim() === '' ? 'needs a destination: "-" (stdout) or a file path' : undefined),
    help: 'Access log: one line per proxied request/websocket to "-" (stdout) or a file' },
  { name: 'access-log-format', type: 'string', flag: 'value', arg: 'format', default: 'json', reloadable: true, group: sy, section: 'Logs and metrics', check: oneOf('json', 'combined'),
    help: 'Access log format: json or combined (needs access-log)' },
  { name: 'metrics-ip', type: 'string', flag: 'value', arg: 'ip', defaultText: 'all interfaces', group: chp, section: 'Logs and metrics',
    help: 'IP for metrics server' },
  { name: 'metrics-port', type: 'int', flag: 'value', arg: 'n', defaultText: 'no metrics server', group: chp, section: 'Logs and metrics', check: port,
    help: 'Port of metrics server' },
  { name: 'metrics-socket', type: 'string', flag: 'value', arg: 'path', group: chp, section: 'Logs and metrics', check: nonEmpty,
    help: 'Unix socket for the metrics server' },
  { name: 'metrics-route-labels', type: 'bool', flag: 'switch', default: false, group: sy, section: 'Logs and metrics',
    help: 'Also export per-route series (switchyard_route_*; one series set per route: mind cardinality)' },

  // Route store
  { name: 'store', type: 'string', flag: 'value', arg: 'spec', default: 'memory', group: sy, section: 'Route store', check: storeSpec,
    help: 'Route store: memory, file:PATH (TOML, or JSON if PATH ends in .json), etcd://host:port[,host:port...]' },
  { name: 'storage-backend', type: 'string', flag: 'value', arg: 'storage-class', group: chp, section: 'Route store', check: storeSpec,
    help: 'CHP: a JS storage class. Switchyard accepts a store spec here; JS classes are not supported' },
  { name: 'store-prefix', type: 'string', flag: 'value', arg: 'prefix', default: '/switchyard/', group: sy, section: 'Route store',
    help: 'Key prefix in etcd' },
  { name: 'etcd-username', type: 'string', flag: 'value', arg: 'user', group: sy, section: 'Route store',
    help: 'etcd user (needs etcd-password)' },
  { name: 'etcd-password', type: 'string', flag: 'none', secret: true, group: sy, section: 'Route store',
    help: 'etcd password (with etcd-username)' },
  { name: 'etcd-ca', type: 'string', flag: 'value', arg: 'ca-file', group: sy, section: 'Route store',
    help: 'CA for etcd over TLS (enables TLS)' },
  { name: 'etcd-cert', type: 'string', flag: 'value', arg: 'certfile', group: sy, section: 'Route store',
    help: 'client certificate for etcd (mutual TLS)' },
  { name: 'etcd-key', type: 'string', flag: 'value', arg: 'keyfile', group: sy, section: 'Route store',
    help: 'client key for etcd (mutual TLS)' },
  { name: 'replica-id', type: 'string', flag: 'value', arg: 'id', defaultText: 'hostname-pid', group: sy, section: 'Route store',
    help: "This replica's name in a shared store" },
  { name: 'activity-flush-interval', type: 'int', flag: 'value', arg: 'ms', default: 5000, group: sy, section: 'Route store', check: nonNegative,
    help: 'How often recorded route activity is written to the store (at least 10)' },

  // Dashboard
  { name: 'dashboard', type: 'bool', flag: 'negated', default: true, group: sy, section: 'Dashboard',
    help: 'Serve the dashboard at /dashboard/ on the API server (--no-dashboard: do not; in a file with a [dashboard] table: enabled = false)' },
  { name: 'dashboard-interval', type: 'int', flag: 'value', arg: 'ms', default: 1000, group: sy, section: 'Dashboard', check: range(10, 60000, ' ms'),
    help: "How often the dashboard's live figures update" },
  { name: 'dashboard.users', type: 'list', flag: 'none', default: [], secret: true, reloadable: true, group: sy, section: 'Dashboard', check: htpasswdLines,
    help: 'Dashboard users as htpasswd lines "user:bcrypt-hash" (file: users = [...] in [dashboard]; env: one per line)' },

  // Envoy and xDS
  { name: 'xds-port', type: 'int', flag: 'value', arg: 'n', defaultText: 'off', group: sy, section: 'Envoy and xDS', check: port,
    help: 'Serve the table to Envoy / proxyless gRPC over xDS v3 (ADS) on this port' },
  { name: 'xds-ip', type: 'string', flag: 'value', arg: 'ip', default: '127.0.0.1', group: sy, section: 'Envoy and xDS',
    help: 'IP of the xDS server' },
  { name: 'xds-ssl-key', type: 'string', flag: 'value', arg: 'keyfile', group: sy, section: 'Envoy and xDS',
    help: 'TLS key of the xDS server (with xds-ssl-cert)' },
  { name: 'xds-ssl-cert', type: 'string', flag: 'value', arg: 'certfile', group: sy, section: 'Envoy and xDS',
    help: 'TLS certificate of the xDS server' },
  { name: 'xds-ssl-client-ca', type: 'string', flag: 'value', arg: 'ca-file', group: sy, section: 'Envoy and xDS',
    help: 'Require xDS client certificates signed by this CA (mutual TLS)' },
  { name: 'envoy-listen-ip', type: 'string', flag: 'value', arg: 'ip', default: '0.0.0.0', group: sy, section: 'Envoy and xDS',
    help: "Address Envoy's HTTP listener binds, sent over LDS" },
  { name: 'envoy-listen-port', type: 'int', flag: 'value', arg: 'n', default: 8000, group: sy, section: 'Envoy and xDS', check: port,
    help: "Port of Envoy's HTTP listener, sent over LDS" },
  { name: 'envoy-access-log', type: 'string', flag: 'value', arg: 'path', default: '/dev/stdout', group: sy, section: 'Envoy and xDS',
    help: 'Envoy access log path on the Envoy host; "" for none' },
  { name: 'envoy-upstream-ca', type: 'string', flag: 'value', arg: 'ca-file', default: '/etc/ssl/certs/ca-certificates.crt', group: sy, section: 'Envoy and xDS',
    help: 'CA bundle on the Envoy host for https targets' },
  { name: 'xds-grpc-name', type: 'list', flag: 'repeat', arg: 'name', default: ['switchyard'], group: sy, section: 'Envoy and xDS',
    help: 'api_listener name for proxyless gRPC clients (xds:///NAME); repeatable' },
  { name: 'envoy-node-id', type: 'string', flag: 'value', arg: 'id', defaultText: 'envoy-<hostname>', group: sy, section: 'Envoy and xDS',
    help: 'envoy-bootstrap: node id' },
  { name: 'envoy-node-cluster', type: 'string', flag: 'value', arg: 'name', default: 'switchyard', group: sy, section: 'Envoy and xDS',
    help: 'envoy-bootstrap: node cluster' },
  { name: 'envoy-admin-ip', type: 'string', flag: 'value', arg: 'ip', default: '127.0.0.1', group: sy, section: 'Envoy and xDS',
    help: 'envoy-bootstrap: admin interface address' },
  { name: 'envoy-admin-port', type: 'int', flag: 'value', arg: 'n', default: 9901, group: sy, section: 'Envoy and xDS', check: port,
    help: 'envoy-bootstrap: admin interface port' },
  { name: 'envoy-xds-host', type: 'string', flag: 'value', arg: 'host', defaultText: 'xds-ip, or 127.0.0.1 if that is a wildcard', group: sy, section: 'Envoy and xDS',
    help: 'envoy-bootstrap: host Envoy dials for xDS' },
  { name: 'envoy-xds-ca', type: 'string', flag: 'value', arg: 'ca-file', group: sy, section: 'Envoy and xDS',
    help: 'envoy-bootstrap: CA (path on the Envoy host) that signed the xDS server certificate: connect with TLS' },
  { name: 'envoy-xds-cert', type: 'string', flag: 'value', arg: 'certfile', group: sy, section: 'Envoy and xDS',
    help: 'envoy-bootstrap: client certificate (path on the Envoy host) for mutual TLS' },
  { name: 'envoy-xds-key', type: 'string', flag: 'value', arg: 'keyfile', group: sy, section: 'Envoy and xDS',
    help: 'envoy-bootstrap: client key (path on the Envoy host) for mutual TLS' },
];

export const SETTINGS_BY_NAME: ReadonlyMap<string, Setting> = new Map(SETTINGS.map((s) => [s.name, s]));

/** SWITCHYARD_ + the name upper-cased, '-' and '.' as '_': `api-port` -> SWITCHYARD_API_PORT. */
export function envName(name: string): string {
  return 'SWITCHYARD_' + name.toUpperCase().replace(/[-.]/g, '_');
}

/** The environment variables of a setting, highest precedence first (SWITCHYARD_ name, then CHP's). */
export function envNames(s: Setting): string[] {
  return [envName(s.name), ...(s.envAliases ?? [])];
}

/** The config-file key and env suffix naming a file that holds a secret: `auth-token-file`. */
export function secretFileKey(name: string): string {
  return `${name}-file`;
}

/** Names of the settings a running process can change by reloading (everything else: restart). */
export const RELOADABLE: ReadonlySet<string> = new Set(SETTINGS.filter((s) => s.reloadable).map((s) => s.name));

/** The default as documented (text), or '' when unset. */
export function defaultText(s: Setting): string {
  if (s.defaultText !== undefined) return s.defaultText;
  if (s.default === undefined) return '';
  if (Array.isArray(s.default)) return s.default.length === 0 ? '' : s.default.join(', ');
  return String(s.default);
}

/** The value a setting takes when given nowhere (undefined: unset or derived in config.ts). */
export function defaultValue(name: string): SettingValue | undefined {
  return SETTINGS_BY_NAME.get(name)?.default;
}

/** Run a setting's own check on a value of its type. */
export function checkValue(s: Setting, value: SettingValue): string | undefined {
  return s.check ? (s.check as (v: SettingValue) => string | undefined)(value) : undefined;
}
