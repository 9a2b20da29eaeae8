// Command-line flags: every configurable-http-proxy 5.3 flag with CHP's meaning and defaults, plus
// Switchyard's own. Parsed by a small table-driven parser (no dependency) that follows commander's
// conventions as CHP uses them: "--flag value" and "--flag=value", "--no-x" negations, repeatable
// --custom-header, unknown flags are an error.

import { ErrorCode, SwitchyardError } from '../errors.js';

export type FlagKind = 'string' | 'int' | 'bool' | 'negated' | 'repeat';

export interface FlagSpec {
  /** Flag name without dashes, e.g. "api-port" or, for negated flags, "x-forward" (given as --no-x-forward). */
  readonly name: string;
  readonly kind: FlagKind;
  readonly arg?: string;
  readonly help: string;
  readonly group: 'chp' | 'switchyard';
}

export const FLAGS: readonly FlagSpec[] = [
  { name: 'ip', kind: 'string', arg: 'ip-address', help: 'Public-facing IP of the proxy (default: all interfaces)', group: 'chp' },
  { name: 'port', kind: 'int', arg: 'n', help: 'Public-facing port of the proxy (default: 8000)', group: 'chp' },
  { name: 'socket', kind: 'string', arg: 'path', help: 'Unix socket for the proxy, instead of --ip/--port', group: 'chp' },
  { name: 'ssl-key', kind: 'string', arg: 'keyfile', help: 'SSL key to use, if any (passphrase: CONFIGPROXY_SSL_KEY_PASSPHRASE)', group: 'chp' },
  { name: 'ssl-cert', kind: 'string', arg: 'certfile', help: 'SSL certificate to use, if any', group: 'chp' },
  { name: 'ssl-ca', kind: 'string', arg: 'ca-file', help: 'SSL certificate authority, if any', group: 'chp' },
  { name: 'ssl-request-cert', kind: 'bool', help: 'Request SSL certs to authenticate clients', group: 'chp' },
  { name: 'ssl-reject-unauthorized', kind: 'bool', help: 'Reject unauthorized SSL connections (with --ssl-request-cert)', group: 'chp' },
  { name: 'ssl-protocol', kind: 'string', arg: 'ssl-protocol', help: 'Set specific SSL protocol, e.g. TLSv1_2', group: 'chp' },
  { name: 'ssl-ciphers', kind: 'string', arg: 'ciphers', help: '":"-separated ssl cipher list. Default excludes RC4', group: 'chp' },
  { name: 'ssl-allow-rc4', kind: 'bool', help: 'Allow RC4 cipher for SSL (disabled by default)', group: 'chp' },
  { name: 'ssl-dhparam', kind: 'string', arg: 'dhparam-file', help: 'SSL Diffie-Hellman parameters pem file, if any', group: 'chp' },
  { name: 'api-ip', kind: 'string', arg: 'ip', help: 'Inward-facing IP for API requests (default: localhost)', group: 'chp' },
  { name: 'api-port', kind: 'int', arg: 'n', help: 'Inward-facing port for API requests (default: --port + 1)', group: 'chp' },
  { name: 'api-socket', kind: 'string', arg: 'path', help: 'Unix socket for the API, instead of --api-ip/--api-port', group: 'chp' },
  { name: 'api-ssl-key', kind: 'string', arg: 'keyfile', help: 'SSL key for the API (passphrase: CONFIGPROXY_API_SSL_KEY_PASSPHRASE)', group: 'chp' },
  { name: 'api-ssl-cert', kind: 'string', arg: 'certfile', help: 'SSL certificate for the API', group: 'chp' },
  { name: 'api-ssl-ca', kind: 'string', arg: 'ca-file', help: 'SSL certificate authority for the API', group: 'chp' },
  { name: 'api-ssl-request-cert', kind: 'bool', help: 'Request SSL certs to authenticate API clients', group: 'chp' },
  { name: 'api-ssl-reject-unauthorized', kind: 'bool', help: 'Reject unauthorized API clients (with --api-ssl-request-cert)', group: 'chp' },
  { name: 'client-ssl-key', kind: 'string', arg: 'keyfile', help: 'SSL key the proxy presents to https targets', group: 'chp' },
  { name: 'client-ssl-cert', kind: 'string', arg: 'certfile', help: 'SSL certificate the proxy presents to https targets', group: 'chp' },
  { name: 'client-ssl-ca', kind: 'string', arg: 'ca-file', help: 'CA that https targets are verified against', group: 'chp' },
  { name: 'client-ssl-request-cert', kind: 'bool', help: 'Accepted for CHP compatibility (CHP sets it on a client context, where it has no effect)', group: 'chp' },
  { name: 'client-ssl-reject-unauthorized', kind: 'bool', help: 'Verify https targets against --client-ssl-ca (the default unless --insecure)', group: 'chp' },
  { name: 'default-target', kind: 'string', arg: 'host', help: 'Default proxy target (proto://host[:port])', group: 'chp' },
  { name: 'error-target', kind: 'string', arg: 'host', help: 'Alternate server for error pages: GET <target>/<code>?url=<path>', group: 'chp' },
  { name: 'error-path', kind: 'string', arg: 'path', help: 'Directory with <code>.html / error.html error pages', group: 'chp' },
  { name: 'redirect-port', kind: 'int', arg: 'redirect-port', help: 'Redirect HTTP requests on this port to the server on HTTPS', group: 'chp' },
  { name: 'redirect-to', kind: 'int', arg: 'port', help: 'Redirect HTTP requests from --redirect-port to this port', group: 'chp' },
  { name: 'pid-file', kind: 'string', arg: 'pid-file', help: 'Write our PID to a file (removed on exit)', group: 'chp' },
  { name: 'x-forward', kind: 'negated', help: "Don't add 'X-forward-' headers to proxied requests", group: 'chp' },
  { name: 'prepend-path', kind: 'negated', help: 'Avoid prepending target paths to proxied requests', group: 'chp' },
  { name: 'include-prefix', kind: 'negated', help: "Don't include the routing prefix in proxied requests", group: 'chp' },
  { name: 'auto-rewrite', kind: 'bool', help: 'Rewrite the Location header host/port in redirect responses', group: 'chp' },
  { name: 'change-origin', kind: 'bool', help: 'Changes the origin of the host header to the target URL', group: 'chp' },
  { name: 'protocol-rewrite', kind: 'string', arg: 'proto', help: 'Rewrite the Location header protocol in redirect responses', group: 'chp' },
  { name: 'custom-header', kind: 'repeat', arg: 'header', help: 'Custom header "k:v" added to proxied requests (repeatable)', group: 'chp' },
  { name: 'insecure', kind: 'bool', help: 'Disable SSL cert verification of https targets', group: 'chp' },
  { name: 'host-routing', kind: 'bool', help: 'Use host routing (host as first level of path)', group: 'chp' },
  { name: 'metrics-ip', kind: 'string', arg: 'ip', help: 'IP for metrics server (default: all interfaces)', group: 'chp' },
  { name: 'metrics-port', kind: 'int', arg: 'n', help: 'Port of metrics server. Defaults to no metrics server', group: 'chp' },
  { name: 'metrics-socket', kind: 'string', arg: 'path', help: 'Unix socket for the metrics server', group: 'chp' },
  { name: 'log-level', kind: 'string', arg: 'loglevel', help: 'Log level (debug, info, warn, error) (default: info)', group: 'chp' },
  { name: 'timeout', kind: 'int', arg: 'n', help: 'Timeout (in millis) when proxy drops connection for a request', group: 'chp' },
  { name: 'proxy-timeout', kind: 'int', arg: 'n', help: 'Timeout (in millis) when proxy receives no response from target', group: 'chp' },
  { name: 'storage-backend', kind: 'string', arg: 'storage-class', help: 'CHP: a JS storage class. Switchyard accepts a --store spec here; JS classes are not supported', group: 'chp' },
  { name: 'keep-alive-timeout', kind: 'int', arg: 'timeout', help: 'Timeout (in millis) for idle keep-alive client connections (default: 5000)', group: 'chp' },
  { name: 'store', kind: 'string', arg: 'spec', help: 'Route store: memory (default), file:PATH (TOML, or JSON if PATH ends in .json), etcd://host:port[,host:port...]', group: 'switchyard' },
  { name: 'store-prefix', kind: 'string', arg: 'prefix', help: 'Key prefix in etcd (default: /switchyard/)', group: 'switchyard' },
  { name: 'etcd-username', kind: 'string', arg: 'user', help: 'etcd user (password from env SWITCHYARD_ETCD_PASSWORD, never a flag)', group: 'switchyard' },
  { name: 'etcd-ca', kind: 'string', arg: 'ca-file', help: 'CA for etcd over TLS (enables TLS)', group: 'switchyard' },
  { name: 'etcd-cert', kind: 'string', arg: 'certfile', help: 'client certificate for etcd (mutual TLS)', group: 'switchyard' },
  { name: 'etcd-key', kind: 'string', arg: 'keyfile', help: 'client key for etcd (mutual TLS)', group: 'switchyard' },
  { name: 'replica-id', kind: 'string', arg: 'id', help: 'This replica\'s name in a shared store (default: hostname-pid)', group: 'switchyard' },
  { name: 'log-format', kind: 'string', arg: 'format', help: 'Log format: text (default) or json', group: 'switchyard' },
  { name: 'workers', kind: 'int', arg: 'n', help: 'Data-plane processes sharing the public port (default 0: one per core; 1: in the main process)', group: 'switchyard' },
  { name: 'request-body-timeout', kind: 'int', arg: 'ms', help: 'Longest pause in a request body before the proxy answers 408 and closes (default: 60000; 0: none)', group: 'switchyard' },
  { name: 'upstream-connect-timeout', kind: 'int', arg: 'ms', help: 'Longest TCP connect + TLS handshake to a target before 503 (default: 10000)', group: 'switchyard' },
  { name: 'drain-timeout', kind: 'int', arg: 'ms', help: 'On SIGTERM, wait at most this long for in-flight requests (default: 10000)', group: 'switchyard' },
  { name: 'activity-flush-interval', kind: 'int', arg: 'ms', help: 'How often recorded route activity is written to the store (default: 5000)', group: 'switchyard' },
  { name: 'api-max-body', kind: 'int', arg: 'bytes', help: 'Largest accepted API request body; larger gets 413 (default: 1048576)', group: 'switchyard' },
  { name: 'access-log', kind: 'string', arg: 'dest', help: 'Access log: one line per proxied request/websocket to "-" (stdout) or a file (default: off)', group: 'switchyard' },
  { name: 'access-log-format', kind: 'string', arg: 'format', help: 'Access log format: json (default) or combined', group: 'switchyard' },
  { name: 'metrics-route-labels', kind: 'bool', help: 'Also export per-route series (switchyard_route_*; one series set per route: mind cardinality)', group: 'switchyard' },
  { name: 'dashboard', kind: 'negated', help: 'Do not serve the dashboard at /dashboard/ on the API server', group: 'switchyard' },
  { name: 'dashboard-interval', kind: 'int', arg: 'ms', help: 'How often the dashboard\'s live figures update (default: 1000)', group: 'switchyard' },
  { name: 'xds-port', kind: 'int', arg: 'n', help: 'Serve the table to Envoy / proxyless gRPC over xDS v3 (ADS) on this port (default: off)', group: 'switchyard' },
  { name: 'xds-ip', kind: 'string', arg: 'ip', help: 'IP of the xDS server (default: 127.0.0.1)', group: 'switchyard' },
  { name: 'xds-ssl-key', kind: 'string', arg: 'keyfile', help: 'TLS key of the xDS server (with --xds-ssl-cert)', group: 'switchyard' },
  { name: 'xds-ssl-cert', kind: 'string', arg: 'certfile', help: 'TLS certificate of the xDS server', group: 'switchyard' },
  { name: 'xds-ssl-client-ca', kind: 'string', arg: 'ca-file', help: 'Require xDS client certificates signed by this CA (mutual TLS)', group: 'switchyard' },
  { name: 'envoy-listen-ip', kind: 'string', arg: 'ip', help: 'Address Envoy\'s HTTP listener binds, sent over LDS (default: 0.0.0.0)', group: 'switchyard' },
  { name: 'envoy-listen-port', kind: 'int', arg: 'n', help: 'Port of Envoy\'s HTTP listener, sent over LDS (default: 8000)', group: 'switchyard' },
  { name: 'envoy-access-log', kind: 'string', arg: 'path', help: 'Envoy access log path on the Envoy host; "" for none (default: /dev/stdout)', group: 'switchyard' },
  { name: 'envoy-upstream-ca', kind: 'string', arg: 'ca-file', help: 'CA bundle on the Envoy host for https targets (default: /etc/ssl/certs/ca-certificates.crt)', group: 'switchyard' },
  { name: 'xds-grpc-name', kind: 'repeat', arg: 'name', help: 'api_listener name for proxyless gRPC clients (xds:///NAME); repeatable (default: switchyard)', group: 'switchyard' },
  // ACME (automatic HTTPS; config/acme-config.ts). The EAB HMAC key comes from SWITCHYARD_ACME_EAB_HMAC, never a flag.
  { name: 'acme-domain', kind: 'repeat', arg: 'name', help: 'Obtain and renew a certificate for this name over ACME; turns TLS on for --port (repeatable)', group: 'switchyard' },
  { name: 'acme-email', kind: 'string', arg: 'addr', help: 'Contact address of the ACME account', group: 'switchyard' },
  { name: 'acme-directory', kind: 'string', arg: 'url', help: 'ACME directory URL, or letsencrypt-staging (default: Let\'s Encrypt production)', group: 'switchyard' },
  { name: 'acme-directory-ca', kind: 'string', arg: 'ca-file', help: 'PEM trusted for the ACME server\'s own HTTPS (private CAs, test servers)', group: 'switchyard' },
  { name: 'acme-challenge', kind: 'string', arg: 'type', help: 'http-01 (default; needs port 80 via --redirect-port) or tls-alpn-01 (on --port, 443)', group: 'switchyard' },
  { name: 'acme-eab-kid', kind: 'string', arg: 'kid', help: 'External account binding key id (HMAC key from env SWITCHYARD_ACME_EAB_HMAC)', group: 'switchyard' },
  { name: 'acme-on-demand', kind: 'bool', help: 'Order a certificate at the first handshake for a name that has a host route (off by default)', group: 'switchyard' },
  { name: 'acme-ask', kind: 'string', arg: 'url', help: 'On-demand: also allow names for which GET URL?domain=NAME answers 2xx', group: 'switchyard' },
  { name: 'acme-check-interval', kind: 'int', arg: 'ms', help: 'How often certificates are checked for renewal (default: 600000)', group: 'switchyard' },
  { name: 'envoy-node-id', kind: 'string', arg: 'id', help: 'envoy-bootstrap: node id (default: envoy-<hostname>)', group: 'switchyard' },
  { name: 'envoy-node-cluster', kind: 'string', arg: 'name', help: 'envoy-bootstrap: node cluster (default: switchyard)', group: 'switchyard' },
  { name: 'envoy-admin-ip', kind: 'string', arg: 'ip', help: 'envoy-bootstrap: admin interface address (default: 127.0.0.1)', group: 'switchyard' },
  { name: 'envoy-admin-port', kind: 'int', arg: 'n', help: 'envoy-bootstrap: admin interface port (default: 9901)', group: 'switchyard' },
  { name: 'envoy-xds-host', kind: 'string', arg: 'host', help: 'envoy-bootstrap: host Envoy dials for xDS (default: --xds-ip, or 127.0.0.1 if that is a wildcard)', group: 'switchyard' },
  { name: 'envoy-xds-ca', kind: 'string', arg: 'ca-file', help: 'envoy-bootstrap: CA (path on the Envoy host) that signed the xDS server certificate: connect with TLS', group: 'switchyard' },
  { name: 'envoy-xds-cert', kind: 'string', arg: 'certfile', help: 'envoy-bootstrap: client certificate (path on the Envoy host) for mutual TLS', group: 'switchyard' },
  { name: 'envoy-xds-key', kind: 'string', arg: 'keyfile', help: 'envoy-bootstrap: client key (path on the Envoy host) for mutual TLS', group: 'switchyard' },
];

export type FlagValue = string | number | boolean | string[];
export interface ParsedArgs {
  readonly values: Readonly<Record<string, FlagValue>>;
  readonly help: boolean;
  readonly version: boolean;
  readonly command: string | undefined;
}

const byName = new Map(FLAGS.map((f) => [f.name, f]));

function invalid(msg: string): SwitchyardError {
  return new SwitchyardError(ErrorCode.CONFIG_INVALID, msg);
}

export function parseArgv(argv: readonly string[]): ParsedArgs {
  const values: Record<string, FlagValue> = {};
  let help = false;
  let version = false;
  let command: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    if (arg === '-V' || arg === '--version') {
      version = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      if (command === undefined && i === 0) {
        command = arg;
        continue;
      }
      throw invalid(`unexpected argument '${arg}'`);
    }
    const eq = arg.indexOf('=');
    let name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    const spec = byName.get(name);
    if (spec === undefined && name.startsWith('no-')) {
      const neg = byName.get(name.slice(3));
      if (neg?.kind === 'negated') {
        if (inline !== undefined) throw invalid(`option '--${name}' takes no value`);
        values[neg.name] = false;
        continue;
      }
    }
    if (spec === undefined || spec.kind === 'negated') throw invalid(`unknown option '--${name}' (see --help)`);
    name = spec.name;
    if (spec.kind === 'bool') {
      if (inline !== undefined) throw invalid(`option '--${name}' takes no value`);
      values[name] = true;
      continue;
    }
    let raw = inline;
    if (raw === undefined) {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) {
        throw invalid(`option '--${name} <${spec.arg ?? 'value'}>' argument missing`);
      }
      raw = next;
      i++;
    }
    if (spec.kind === 'int') {
      if (!/^-?\d+$/.test(raw.trim())) throw invalid(`option '--${name}' expects an integer, got '${raw}'`);
      values[name] = Number.parseInt(raw, 10);
    } else if (spec.kind === 'repeat') {
      const prev = values[name];
      values[name] = Array.isArray(prev) ? [...prev, raw] : [raw];
    } else {
      values[name] = raw;
    }
  }
  return { values, help, version, command };
}

export function helpText(version: string): string {
  const lines = [
    `Usage: switchyard [options]`,
    `       switchyard envoy-bootstrap [options]   print an Envoy bootstrap (YAML) for this control plane`,
    '',
    `Switchyard ${version}: a drop-in replacement for configurable-http-proxy.`,
    '',
    'Environment: CONFIGPROXY_AUTH_TOKEN (REST API token), CONFIGPROXY_SSL_KEY_PASSPHRASE,',
    '             CONFIGPROXY_API_SSL_KEY_PASSPHRASE, SWITCHYARD_ETCD_PASSWORD',
    '',
    'Options (configurable-http-proxy compatible):',
  ];
  const fmt = (f: FlagSpec): string => {
    const left =
      f.kind === 'negated' ? `--no-${f.name}` : f.kind === 'bool' ? `--${f.name}` : `--${f.name} <${f.arg ?? 'value'}>`;
    return `  ${left.padEnd(38)} ${f.help}`;
  };
  for (const f of FLAGS) if (f.group === 'chp') lines.push(fmt(f));
  lines.push('', 'Switchyard options:');
  for (const f of FLAGS) if (f.group === 'switchyard') lines.push(fmt(f));
  lines.push('  -V, --version'.padEnd(41) + 'output the version number', '  -h, --help'.padEnd(41) + 'display help for command');
  return lines.join('\n') + '\n';
}
