// Config: flags + env, validated once, frozen. The only place that reads process.env or files
// named by flags; everything downstream takes plain values.

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { ErrorCode, SwitchyardError } from '../errors.js';
import { LOG_LEVELS, type LogLevel } from '../observability/logger.js';
import { parseTarget } from '../routing/target.js';
import { checkStoreSpec, type StoreOptions } from './store-spec.js';
import type { FlagValue, ParsedArgs } from './flags.js';
import { buildAcmeConfig, type AcmeConfig } from './acme-config.js';

export type ListenTarget =
  | { readonly kind: 'tcp'; readonly port: number; readonly host: string | undefined }
  | { readonly kind: 'unix'; readonly path: string };

export interface TlsServerOptions {
  readonly key?: Buffer;
  readonly cert?: Buffer;
  readonly ca?: Buffer | Buffer[];
  readonly passphrase?: string;
  readonly dhparam?: Buffer;
  readonly secureProtocol?: string;
  readonly ciphers: string;
  readonly honorCipherOrder: true;
  readonly requestCert: boolean;
  readonly rejectUnauthorized: boolean;
}

export interface ClientTlsOptions {
  readonly key?: Buffer;
  readonly cert?: Buffer;
  readonly ca?: Buffer[];
}

export type { StoreOptions } from './store-spec.js';

export interface Config {
  readonly proxyListen: ListenTarget;
  readonly apiListen: ListenTarget;
  readonly metricsListen: ListenTarget | undefined;
  readonly ssl: TlsServerOptions | undefined;
  readonly apiSsl: TlsServerOptions | undefined;
  readonly clientSsl: ClientTlsOptions | undefined;
  readonly redirectPort: number | undefined;
  readonly redirectTo: number | undefined;
  readonly defaultTarget: string | undefined;
  readonly errorTarget: string | undefined;
  readonly errorPath: string | undefined;
  readonly pidFile: string | undefined;
  readonly xForward: boolean;
  readonly prependPath: boolean;
  readonly includePrefix: boolean;
  readonly autoRewrite: boolean;
  readonly changeOrigin: boolean;
  readonly protocolRewrite: string | undefined;
  readonly customHeaders: readonly (readonly [string, string])[];
  readonly insecure: boolean;
  readonly hostRouting: boolean;
  readonly logLevel: LogLevel;
  readonly logFormat: 'text' | 'json';
  readonly timeout: number | undefined;
  readonly proxyTimeout: number | undefined;
  readonly keepAliveTimeout: number;
  /** --request-body-timeout: longest pause in a client's request body (ms), 0 = none. */
  readonly requestBodyTimeout: number;
  /** --upstream-connect-timeout: TCP connect + TLS handshake to a target (ms). */
  readonly upstreamConnectTimeout: number;
  readonly authToken: string | undefined;
  readonly store: string;
  readonly storeOptions: StoreOptions;
  readonly drainTimeout: number;
  /** Data-plane worker processes; 1 = the proxy runs in the main process. */
  readonly workers: number;
  readonly activityFlushInterval: number;
  readonly apiMaxBody: number;
  /** The xDS control plane (--xds-port); undefined when off. */
  readonly xds: XdsConfig | undefined;
  /** --access-log: destination ('-' = stdout, else a file) and format; undefined when off. */
  readonly accessLog: { readonly dest: string; readonly format: 'json' | 'combined' } | undefined;
  /** --metrics-route-labels: per-route Prometheus series. */
  readonly metricsRouteLabels: boolean;
  /** The dashboard on the API server (/dashboard/), and how often its live figures update. */
  readonly dashboard: boolean;
  readonly dashboardIntervalMs: number;
  /** Automatic HTTPS (--acme-*); undefined when off. With it, the public port serves TLS. */
  readonly acme: AcmeConfig | undefined;
  /** Options of `switchyard envoy-bootstrap` (paths are on the Envoy host, not read here). */
  readonly envoyBootstrap: EnvoyBootstrapConfig;
}

export interface XdsConfig {
  readonly host: string;
  readonly port: number;
  readonly tls: { readonly key: Buffer; readonly cert: Buffer; readonly clientCa: Buffer | undefined } | undefined;
  readonly listenerAddress: string;
  readonly listenerPort: number;
  readonly accessLogPath: string;
  readonly upstreamCaFile: string;
  readonly grpcListenerNames: readonly string[];
}

export interface EnvoyBootstrapConfig {
  readonly xdsHost: string;
  readonly xdsPort: number;
  readonly nodeId: string | undefined;
  readonly nodeCluster: string;
  readonly adminIp: string;
  readonly adminPort: number;
  readonly ca: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
}

// OpenSSL cipher names, CHP's default order: modern AEAD suites first, no RC4 unless asked.
function defaultCiphers(allowRc4: boolean): string {
  return [
    'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-AES256-GCM-SHA384', 'DHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-SHA256',
    'DHE-RSA-AES128-SHA256', 'ECDHE-RSA-AES256-SHA384', 'DHE-RSA-AES256-SHA384', 'ECDHE-RSA-AES256-SHA256',
    'DHE-RSA-AES256-SHA256', 'HIGH', allowRc4 ? 'RC4' : '!RC4', '!aNULL', '!eNULL', '!EXPORT', '!DES', '!RC4',
    '!MD5', '!PSK', '!SRP', '!CAMELLIA',
  ].join(':');
}

function invalid(msg: string): SwitchyardError {
  return new SwitchyardError(ErrorCode.CONFIG_INVALID, msg);
}

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Visible ASCII, space and tab, and obs-text; never CR, LF or NUL (header injection).
// eslint-disable-next-line no-control-regex
const HEADER_VALUE_BAD = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** CHP's "k:v" custom header syntax, validated against header injection. */
export function parseCustomHeader(raw: string): [string, string] {
  const value = raw.trim();
  const colon = value.indexOf(':');
  if (colon <= 0) throw invalid(`A colon was expected in custom header: ${raw}`);
  const name = value.slice(0, colon).trim();
  const v = value.slice(colon + 1).trim();
  if (!HEADER_NAME.test(name)) throw invalid(`custom header name is not a valid HTTP token: ${JSON.stringify(name)}`);
  if (HEADER_VALUE_BAD.test(v)) throw invalid(`custom header value for '${name}' contains control characters`);
  return [name, v];
}

function readFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw invalid(`cannot read --${flag} file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** Split a PEM bundle into one buffer per certificate (Node wants an array for several CAs). */
function readCaBundle(flag: string, path: string): Buffer[] {
  const text = readFile(flag, path).toString('utf8');
  const certs = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
  if (!certs) throw invalid(`--${flag} file ${path} contains no PEM certificate`);
  return certs.map((c) => Buffer.from(c + '\n'));
}

function port(flag: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 65535) throw invalid(`--${flag} must be a port number (0-65535), got ${v}`);
  return v;
}

function positive(flag: string, v: number | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (v < 0) throw invalid(`--${flag} must not be negative, got ${v}`);
  return v;
}

export function buildConfig(args: ParsedArgs, env: NodeJS.ProcessEnv): Config {
  const v = args.values;
  const str = (k: string): string | undefined => v[k] as string | undefined;
  const int = (k: string): number | undefined => v[k] as number | undefined;
  const bool = (k: string): boolean => v[k] === true;
  const negated = (k: string): boolean => v[k] !== false;
  const has = (k: string): boolean => v[k] !== undefined;

  if (has('socket') && (has('port') || has('ip'))) throw invalid("option '--socket <path>' cannot be used with option '--port' or '--ip'");
  if (has('api-socket') && (has('api-port') || has('api-ip'))) {
    throw invalid("option '--api-socket <path>' cannot be used with option '--api-port' or '--api-ip'");
  }
  if (has('metrics-socket') && (has('metrics-port') || has('metrics-ip'))) {
    throw invalid("option '--metrics-socket <path>' cannot be used with option '--metrics-port' or '--metrics-ip'");
  }

  let ip = str('ip');
  if (ip === '*') ip = '';
  const proxyPort = port('port', int('port') ?? 8000);
  const proxyListen: ListenTarget = has('socket')
    ? { kind: 'unix', path: str('socket')! }
    : { kind: 'tcp', port: proxyPort, host: ip || undefined };
  const apiListen: ListenTarget = has('api-socket')
    ? { kind: 'unix', path: str('api-socket')! }
    : {
        kind: 'tcp',
        port: port('api-port', int('api-port') ?? (proxyListen.kind === 'tcp' ? proxyPort + 1 : 8001)),
        host: str('api-ip') ?? 'localhost',
      };
  let metricsListen: ListenTarget | undefined;
  if (has('metrics-socket')) metricsListen = { kind: 'unix', path: str('metrics-socket')! };
  else if (has('metrics-port')) {
    metricsListen = { kind: 'tcp', port: port('metrics-port', int('metrics-port')!), host: str('metrics-ip') || undefined };
  }

  const logLevel = (str('log-level') ?? 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw invalid(`--log-level must be one of ${LOG_LEVELS.join(', ')}; got '${logLevel}'`);
  }
  const logFormat = str('log-format') ?? 'text';
  if (logFormat !== 'text' && logFormat !== 'json') throw invalid(`--log-format must be text or json; got '${logFormat}'`);

  const ciphers = str('ssl-ciphers') ?? defaultCiphers(bool('ssl-allow-rc4'));
  const secureProtocol = has('ssl-protocol') ? `${str('ssl-protocol')}_method` : undefined;
  const dhparam = has('ssl-dhparam') ? readFile('ssl-dhparam', str('ssl-dhparam')!) : undefined;

  let ssl: TlsServerOptions | undefined;
  if (has('ssl-key') || has('ssl-cert')) {
    ssl = {
      ...(has('ssl-key') ? { key: readFile('ssl-key', str('ssl-key')!) } : {}),
      ...(has('ssl-key') && env.CONFIGPROXY_SSL_KEY_PASSPHRASE ? { passphrase: env.CONFIGPROXY_SSL_KEY_PASSPHRASE } : {}),
      ...(has('ssl-cert') ? { cert: readFile('ssl-cert', str('ssl-cert')!) } : {}),
      ...(has('ssl-ca') ? { ca: readFile('ssl-ca', str('ssl-ca')!) } : {}),
      ...(dhparam ? { dhparam } : {}),
      ...(secureProtocol ? { secureProtocol } : {}),
      ciphers,
      honorCipherOrder: true,
      requestCert: bool('ssl-request-cert'),
      rejectUnauthorized: bool('ssl-reject-unauthorized'),
    };
  }
  let apiSsl: TlsServerOptions | undefined;
  if (has('api-ssl-key') || has('api-ssl-cert')) {
    apiSsl = {
      ...(has('api-ssl-key') ? { key: readFile('api-ssl-key', str('api-ssl-key')!) } : {}),
      ...(has('api-ssl-key') && env.CONFIGPROXY_API_SSL_KEY_PASSPHRASE
        ? { passphrase: env.CONFIGPROXY_API_SSL_KEY_PASSPHRASE }
        : {}),
      ...(has('api-ssl-cert') ? { cert: readFile('api-ssl-cert', str('api-ssl-cert')!) } : {}),
      ...(has('api-ssl-ca') ? { ca: readCaBundle('api-ssl-ca', str('api-ssl-ca')!) } : {}),
      ...(dhparam ? { dhparam } : {}),
      ...(secureProtocol ? { secureProtocol } : {}),
      ciphers,
      honorCipherOrder: true,
      requestCert: bool('api-ssl-request-cert'),
      rejectUnauthorized: bool('api-ssl-reject-unauthorized'),
    };
  }
  let clientSsl: ClientTlsOptions | undefined;
  if (has('client-ssl-key') || has('client-ssl-cert') || has('client-ssl-ca')) {
    clientSsl = {
      ...(has('client-ssl-key') ? { key: readFile('client-ssl-key', str('client-ssl-key')!) } : {}),
      ...(has('client-ssl-cert') ? { cert: readFile('client-ssl-cert', str('client-ssl-cert')!) } : {}),
      ...(has('client-ssl-ca') ? { ca: readCaBundle('client-ssl-ca', str('client-ssl-ca')!) } : {}),
    };
  }

  const acme = buildAcmeConfig(v, env);
  if (acme && ssl) throw invalid('--acme-* and --ssl-key/--ssl-cert are exclusive: ACME provides the certificates');
  if (acme && proxyListen.kind !== 'tcp') throw invalid('--acme-* needs a TCP --port (not --socket)');
  const redirectPort = int('redirect-port');
  if (redirectPort !== undefined) port('redirect-port', redirectPort);
  if (!ssl && !acme && redirectPort !== undefined) throw invalid('HTTPS redirection specified but certificates not provided.');
  if (has('error-target') && has('error-path')) throw invalid('Cannot specify both error-target and error-path. Pick one.');

  const checkTarget = (flag: string): string | undefined => {
    const t = str(flag);
    if (t === undefined) return undefined;
    try {
      parseTarget(t);
    } catch (e) {
      throw invalid(`--${flag}: ${(e as Error).message}`);
    }
    return t;
  };

  const customHeaders = ((v['custom-header'] as string[] | undefined) ?? []).map(parseCustomHeader);

  let store = str('store') ?? 'memory';
  if (has('storage-backend')) {
    if (has('store')) throw invalid('use either --store or --storage-backend, not both');
    store = str('storage-backend')!;
  }
  checkStoreSpec(store);
  let etcdAuth: StoreOptions['etcdAuth'];
  if (has('etcd-username')) {
    const password = env.SWITCHYARD_ETCD_PASSWORD;
    if (!password) throw invalid('--etcd-username needs the password in the environment variable SWITCHYARD_ETCD_PASSWORD');
    etcdAuth = { username: str('etcd-username')!, password };
  }
  let etcdTls: StoreOptions['etcdTls'];
  if (has('etcd-ca') || has('etcd-cert') || has('etcd-key')) {
    if (has('etcd-cert') !== has('etcd-key')) throw invalid('--etcd-cert and --etcd-key go together');
    etcdTls = {
      ...(has('etcd-ca') ? { ca: readFile('etcd-ca', str('etcd-ca')!) } : {}),
      ...(has('etcd-cert') ? { cert: readFile('etcd-cert', str('etcd-cert')!) } : {}),
      ...(has('etcd-key') ? { key: readFile('etcd-key', str('etcd-key')!) } : {}),
    };
  }
  const storeOptions: StoreOptions = { prefix: str('store-prefix') ?? '/switchyard/', replicaId: str('replica-id'), etcdAuth, etcdTls };

  const xdsIp = str('xds-ip') ?? '127.0.0.1';
  const xdsPort = int('xds-port') === undefined ? undefined : port('xds-port', int('xds-port')!);
  if ((has('xds-ssl-key') || has('xds-ssl-cert') || has('xds-ssl-client-ca')) && !(has('xds-ssl-key') && has('xds-ssl-cert'))) {
    throw invalid('--xds-ssl-key and --xds-ssl-cert go together (and --xds-ssl-client-ca needs both)');
  }
  const xds: XdsConfig | undefined =
    xdsPort === undefined
      ? undefined
      : {
          host: xdsIp,
          port: xdsPort,
          tls: has('xds-ssl-key')
            ? {
                key: readFile('xds-ssl-key', str('xds-ssl-key')!),
                cert: readFile('xds-ssl-cert', str('xds-ssl-cert')!),
                clientCa: has('xds-ssl-client-ca') ? readFile('xds-ssl-client-ca', str('xds-ssl-client-ca')!) : undefined,
              }
            : undefined,
          listenerAddress: str('envoy-listen-ip') ?? '0.0.0.0',
          listenerPort: int('envoy-listen-port') === undefined ? 8000 : port('envoy-listen-port', int('envoy-listen-port')!),
          accessLogPath: str('envoy-access-log') ?? '/dev/stdout',
          upstreamCaFile: str('envoy-upstream-ca') ?? '/etc/ssl/certs/ca-certificates.crt',
          grpcListenerNames: (v['xds-grpc-name'] as string[] | undefined) ?? ['switchyard'],
        };
  if (has('envoy-xds-cert') !== has('envoy-xds-key')) throw invalid('--envoy-xds-cert and --envoy-xds-key go together');
  if (has('envoy-xds-cert') && !has('envoy-xds-ca')) throw invalid('--envoy-xds-cert needs --envoy-xds-ca (mutual TLS is TLS first)');
  const envoyBootstrap: EnvoyBootstrapConfig = {
    xdsHost: str('envoy-xds-host') ?? (xdsIp === '0.0.0.0' || xdsIp === '::' ? '127.0.0.1' : xdsIp),
    xdsPort: xdsPort ?? 18000,
    nodeId: str('envoy-node-id'),
    nodeCluster: str('envoy-node-cluster') ?? 'switchyard',
    adminIp: str('envoy-admin-ip') ?? '127.0.0.1',
    adminPort: int('envoy-admin-port') === undefined ? 9901 : port('envoy-admin-port', int('envoy-admin-port')!),
    ca: str('envoy-xds-ca'),
    cert: str('envoy-xds-cert'),
    key: str('envoy-xds-key'),
  };

  const protocolRewrite = str('protocol-rewrite');
  const accessFormat = str('access-log-format') ?? 'json';
  if (accessFormat !== 'json' && accessFormat !== 'combined') {
    throw invalid(`--access-log-format must be json or combined, got '${accessFormat}'`);
  }
  if (has('access-log-format') && !has('access-log')) throw invalid('--access-log-format needs --access-log <dest>');
  if (has('access-log') && str('access-log')!.trim() === '') throw invalid('--access-log needs a destination: "-" (stdout) or a file path');
  const dashboardInterval = positive('dashboard-interval', int('dashboard-interval')) ?? 1000;
  if (dashboardInterval < 10 || dashboardInterval > 60_000) throw invalid(`--dashboard-interval must be 10..60000 ms, got ${dashboardInterval}`);
  const config: Config = {
    proxyListen,
    apiListen,
    metricsListen,
    ssl,
    apiSsl,
    clientSsl,
    redirectPort,
    redirectTo: int('redirect-to') === undefined ? undefined : port('redirect-to', int('redirect-to')!),
    defaultTarget: checkTarget('default-target'),
    errorTarget: checkTarget('error-target'),
    errorPath: str('error-path'),
    pidFile: str('pid-file'),
    xForward: negated('x-forward'),
    prependPath: negated('prepend-path'),
    includePrefix: negated('include-prefix'),
    autoRewrite: bool('auto-rewrite'),
    changeOrigin: bool('change-origin'),
    protocolRewrite: protocolRewrite === undefined ? undefined : protocolRewrite.replace(/:$/, ''),
    customHeaders,
    insecure: bool('insecure'),
    hostRouting: bool('host-routing'),
    logLevel: logLevel as LogLevel,
    logFormat,
    timeout: positive('timeout', int('timeout')) || undefined,
    proxyTimeout: positive('proxy-timeout', int('proxy-timeout')) || undefined,
    keepAliveTimeout: positive('keep-alive-timeout', int('keep-alive-timeout')) || 5000,
    requestBodyTimeout: positive('request-body-timeout', int('request-body-timeout')) ?? 60_000,
    upstreamConnectTimeout: positive('upstream-connect-timeout', int('upstream-connect-timeout')) || 10_000,
    authToken: env.CONFIGPROXY_AUTH_TOKEN || undefined,
    store,
    storeOptions,
    drainTimeout: positive('drain-timeout', int('drain-timeout')) ?? 10_000,
    workers: workerCount(int('workers')),
    activityFlushInterval: Math.max(10, positive('activity-flush-interval', int('activity-flush-interval')) ?? 5000),
    apiMaxBody: Math.max(1024, positive('api-max-body', int('api-max-body')) ?? 1 << 20),
    xds,
    envoyBootstrap,
    acme,
    accessLog: has('access-log') ? { dest: str('access-log')!, format: accessFormat } : undefined,
    metricsRouteLabels: bool('metrics-route-labels'),
    dashboard: negated('dashboard'),
    dashboardIntervalMs: dashboardInterval,
  };
  return deepFreeze(config);
}

function workerCount(n: number | undefined): number {
  // Default: one data-plane process per core (0 means the same). 1 keeps the proxy in the main
  // process: no IPC hop for route changes, the cheapest choice on a one-core machine.
  if (n === undefined) n = 0;
  if (n < 0 || n > 256) throw invalid(`--workers must be between 0 and 256, got ${n}`);
  return n === 0 ? availableParallelism() : n;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Buffer.isBuffer(o) && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const value of Object.values(o as Record<string, unknown>)) deepFreeze(value);
  }
  return o;
}

export type { FlagValue };
