// Config: the settings (schema.ts) from flags, environment and config file (load.ts), validated
// once, frozen. With load.ts, the only place that reads process.env or files named by settings;
// everything downstream takes plain values.

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { ErrorCode, SwitchyardError } from '../errors.js';
import type { LogLevel } from '../observability/logger.js';
import type { StoreOptions } from './store-spec.js';
import type { FlagValue, ParsedArgs } from './flags.js';
import { threadsUnsupported, type WorkerMode } from './worker-mode.js';
import { buildAcmeConfig, type AcmeConfig } from './acme-config.js';
import { SETTINGS, SETTINGS_BY_NAME, checkValue, defaultValue, envNames, splitCustomHeader, type SettingValue } from './schema.js';

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
  /** The HTTP/1.1 fast path on plain listeners (dataplane/proxy/fast-path.ts); false: node:http only. */
  readonly fastPath: boolean;
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
  /** What data-plane workers are when workers > 1 (`worker-mode`, resolved: auto is decided here). */
  readonly workerMode: WorkerMode;
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
  /** [dashboard] users: htpasswd lines "user:hash" (shape checked here; the hash by the dashboard). */
  readonly dashboardUsers: readonly string[];
  /** Options of `switchyard envoy-bootstrap` (paths are on the Envoy host, not read here). */
  readonly envoyBootstrap: EnvoyBootstrapConfig;
  /** Automatic HTTPS (acme-*); undefined when off. With it, the public port serves TLS. */
  readonly acme: AcmeConfig | undefined;
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

/** A configuration error about one setting: `key` is the setting's name, `reason` reads after "key: ". */
function invalid(key: string, reason: string): SwitchyardError {
  return new SwitchyardError(ErrorCode.CONFIG_INVALID, `--${key}: ${reason}`, { details: { key, reason } });
}

/** CHP's "k:v" custom header syntax, validated against header injection. */
export function parseCustomHeader(raw: string): [string, string] {
  const r = splitCustomHeader(raw);
  if (typeof r === 'string') throw invalid('custom-header', r);
  return r;
}

function readFile(key: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw invalid(key, `cannot read file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** Split a PEM bundle into one buffer per certificate (Node wants an array for several CAs). */
function readCaBundle(key: string, path: string): Buffer[] {
  const text = readFile(key, path).toString('utf8');
  const certs = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
  if (!certs) throw invalid(key, `file ${path} contains no PEM certificate`);
  return certs.map((c) => Buffer.from(c + '\n'));
}

/** Settings by name, as given (only those given); secrets included (`auth-token`, ...). */
export type SettingValues = Readonly<Record<string, SettingValue>>;

/**
 * Flags (parseArgv) and CHP's environment, no config file: the secrets come from their environment
 * variables (SWITCHYARD_ name first, then CHP's). Throws SWY_CONFIG_INVALID. The full loader with
 * the config file, `_FILE` secrets and located errors is load.ts's loadConfig.
 */
export function buildConfig(args: Pick<ParsedArgs, 'values'>, env: NodeJS.ProcessEnv): Config {
  const values: Record<string, SettingValue> = {};
  for (const s of SETTINGS) {
    if (!s.secret) continue;
    const name = envNames(s).find((n) => env[n]);
    if (name !== undefined) values[s.name] = s.type === 'list' ? env[name]!.split('\n').map((l) => l.trim()).filter(Boolean) : env[name]!;
  }
  return configFromValues({ ...values, ...args.values });
}

/**
 * Validate the settings (each value's own check, then the rules across settings), read the files
 * they name (keys, certificates), apply defaults, and return one frozen Config. Throws
 * SWY_CONFIG_INVALID whose details name the setting (`key`) and the `reason`.
 */
export function configFromValues(v: SettingValues): Config {
  for (const [name, value] of Object.entries(v)) {
    const s = SETTINGS_BY_NAME.get(name);
    if (!s) throw invalid(name, 'unknown setting');
    const reason = checkValue(s, value);
    if (reason !== undefined) throw invalid(name, reason);
  }
  const has = (k: string): boolean => v[k] !== undefined;
  const str = (k: string): string | undefined => (v[k] ?? defaultValue(k)) as string | undefined;
  const int = (k: string): number | undefined => (v[k] ?? defaultValue(k)) as number | undefined;
  const bool = (k: string): boolean => (v[k] ?? defaultValue(k)) === true;
  const list = (k: string): readonly string[] => (v[k] ?? defaultValue(k) ?? []) as readonly string[];

  const exclusive = (socket: string, port: string, ip: string): void => {
    if (has(socket) && (has(port) || has(ip))) throw invalid(socket, `cannot be used with ${port} or ${ip}`);
  };
  exclusive('socket', 'port', 'ip');
  exclusive('api-socket', 'api-port', 'api-ip');
  exclusive('metrics-socket', 'metrics-port', 'metrics-ip');

  let ip = str('ip');
  if (ip === '*') ip = '';
  const proxyPort = int('port')!;
  const proxyListen: ListenTarget = has('socket')
    ? { kind: 'unix', path: str('socket')! }
    : { kind: 'tcp', port: proxyPort, host: ip || undefined };
  const apiListen: ListenTarget = has('api-socket')
    ? { kind: 'unix', path: str('api-socket')! }
    : { kind: 'tcp', port: int('api-port') ?? (proxyListen.kind === 'tcp' ? proxyPort + 1 : 8001), host: str('api-ip') };
  if (apiListen.kind === 'tcp' && apiListen.port > 65535) throw invalid('port', `the API port defaults to port + 1 = ${apiListen.port}: set api-port`);
  let metricsListen: ListenTarget | undefined;
  if (has('metrics-socket')) metricsListen = { kind: 'unix', path: str('metrics-socket')! };
  else if (has('metrics-port')) metricsListen = { kind: 'tcp', port: int('metrics-port')!, host: str('metrics-ip') || undefined };

  const logLevel = str('log-level')!.toLowerCase() as LogLevel;
  const logFormat = str('log-format') as 'text' | 'json';

  const ciphers = str('ssl-ciphers') ?? defaultCiphers(bool('ssl-allow-rc4'));
  const secureProtocol = has('ssl-protocol') ? `${str('ssl-protocol')}_method` : undefined;
  const dhparam = has('ssl-dhparam') ? readFile('ssl-dhparam', str('ssl-dhparam')!) : undefined;

  let ssl: TlsServerOptions | undefined;
  if (has('ssl-key') || has('ssl-cert')) {
    ssl = {
      ...(has('ssl-key') ? { key: readFile('ssl-key', str('ssl-key')!) } : {}),
      ...(has('ssl-key') && str('ssl-key-passphrase') ? { passphrase: str('ssl-key-passphrase') } : {}),
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
      ...(has('api-ssl-key') && str('api-ssl-key-passphrase') ? { passphrase: str('api-ssl-key-passphrase') } : {}),
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

  const acme = buildAcmeConfig(v);
  if (acme && ssl) throw invalid('acme-domain', 'ACME and ssl-key/ssl-cert are exclusive: ACME provides the certificates');
  if (acme && proxyListen.kind !== 'tcp') throw invalid('acme-domain', 'ACME needs a TCP port (not socket)');
  const redirectPort = int('redirect-port');
  if (!ssl && !acme && redirectPort !== undefined) throw invalid('redirect-port', 'HTTPS redirection specified but certificates not provided.');
  if (has('error-target') && has('error-path')) throw invalid('error-path', 'Cannot specify both error-target and error-path. Pick one.');

  const customHeaders = list('custom-header').map(parseCustomHeader);

  let store = str('store')!;
  if (has('storage-backend')) {
    if (has('store')) throw invalid('storage-backend', 'use either store or storage-backend, not both');
    store = str('storage-backend')!;
  }
  let etcdAuth: StoreOptions['etcdAuth'];
  if (has('etcd-username')) {
    const password = str('etcd-password');
    if (!password) {
      throw invalid('etcd-username', 'needs the etcd password (SWITCHYARD_ETCD_PASSWORD, SWITCHYARD_ETCD_PASSWORD_FILE, or etcd-password / etcd-password-file in the config file)');
    }
    etcdAuth = { username: str('etcd-username')!, password };
  }
  let etcdTls: StoreOptions['etcdTls'];
  if (has('etcd-ca') || has('etcd-cert') || has('etcd-key')) {
    if (has('etcd-cert') !== has('etcd-key')) throw invalid(has('etcd-cert') ? 'etcd-cert' : 'etcd-key', 'etcd-cert and etcd-key go together');
    etcdTls = {
      ...(has('etcd-ca') ? { ca: readFile('etcd-ca', str('etcd-ca')!) } : {}),
      ...(has('etcd-cert') ? { cert: readFile('etcd-cert', str('etcd-cert')!) } : {}),
      ...(has('etcd-key') ? { key: readFile('etcd-key', str('etcd-key')!) } : {}),
    };
  }
  const storeOptions: StoreOptions = { prefix: str('store-prefix')!, replicaId: str('replica-id'), etcdAuth, etcdTls };

  const xdsIp = str('xds-ip')!;
  const xdsPort = int('xds-port');
  if ((has('xds-ssl-key') || has('xds-ssl-cert') || has('xds-ssl-client-ca')) && !(has('xds-ssl-key') && has('xds-ssl-cert'))) {
    throw invalid(has('xds-ssl-key') ? 'xds-ssl-key' : has('xds-ssl-cert') ? 'xds-ssl-cert' : 'xds-ssl-client-ca',
      'xds-ssl-key and xds-ssl-cert go together (and xds-ssl-client-ca needs both)');
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
          listenerAddress: str('envoy-listen-ip')!,
          listenerPort: int('envoy-listen-port')!,
          accessLogPath: str('envoy-access-log')!,
          upstreamCaFile: str('envoy-upstream-ca')!,
          grpcListenerNames: list('xds-grpc-name'),
        };
  if (has('envoy-xds-cert') !== has('envoy-xds-key')) throw invalid(has('envoy-xds-cert') ? 'envoy-xds-cert' : 'envoy-xds-key', 'envoy-xds-cert and envoy-xds-key go together');
  if (has('envoy-xds-cert') && !has('envoy-xds-ca')) throw invalid('envoy-xds-cert', 'needs envoy-xds-ca (mutual TLS is TLS first)');
  const envoyBootstrap: EnvoyBootstrapConfig = {
    xdsHost: str('envoy-xds-host') ?? (xdsIp === '0.0.0.0' || xdsIp === '::' ? '127.0.0.1' : xdsIp),
    xdsPort: xdsPort ?? 18000,
    nodeId: str('envoy-node-id'),
    nodeCluster: str('envoy-node-cluster')!,
    adminIp: str('envoy-admin-ip')!,
    adminPort: int('envoy-admin-port')!,
    ca: str('envoy-xds-ca'),
    cert: str('envoy-xds-cert'),
    key: str('envoy-xds-key'),
  };

  const protocolRewrite = str('protocol-rewrite');
  const accessFormat = str('access-log-format') as 'json' | 'combined';
  if (has('access-log-format') && !has('access-log')) throw invalid('access-log-format', 'needs --access-log <dest>');
  const workers = workerCount(int('workers')!);
  const config: Config = {
    proxyListen,
    apiListen,
    metricsListen,
    ssl,
    apiSsl,
    clientSsl,
    redirectPort,
    redirectTo: int('redirect-to'),
    defaultTarget: str('default-target'),
    errorTarget: str('error-target'),
    errorPath: str('error-path'),
    pidFile: str('pid-file'),
    xForward: bool('x-forward'),
    fastPath: bool('fast-path'),
    prependPath: bool('prepend-path'),
    includePrefix: bool('include-prefix'),
    autoRewrite: bool('auto-rewrite'),
    changeOrigin: bool('change-origin'),
    protocolRewrite: protocolRewrite === undefined ? undefined : protocolRewrite.replace(/:$/, ''),
    customHeaders,
    insecure: bool('insecure'),
    hostRouting: bool('host-routing'),
    logLevel,
    logFormat,
    timeout: int('timeout') || undefined,
    proxyTimeout: int('proxy-timeout') || undefined,
    keepAliveTimeout: int('keep-alive-timeout') || 5000,
    requestBodyTimeout: int('request-body-timeout')!,
    upstreamConnectTimeout: int('upstream-connect-timeout') || 10_000,
    authToken: str('auth-token') || undefined,
    store,
    storeOptions,
    drainTimeout: int('drain-timeout')!,
    workers,
    workerMode: resolveWorkerMode(str('worker-mode') as 'auto' | WorkerMode, proxyListen, workers, (reason) => invalid('worker-mode', reason)),
    activityFlushInterval: Math.max(10, int('activity-flush-interval')!),
    apiMaxBody: Math.max(1024, int('api-max-body')!),
    xds,
    envoyBootstrap,
    acme,
    accessLog: has('access-log') ? { dest: str('access-log')!, format: accessFormat } : undefined,
    metricsRouteLabels: bool('metrics-route-labels'),
    dashboard: bool('dashboard'),
    dashboardIntervalMs: int('dashboard-interval')!,
    dashboardUsers: list('dashboard.users'),
  };
  return deepFreeze(config);
}

/**
 * `worker-mode` resolved: `auto` is threads where the runtime can give each thread its own
 * listening socket on the public port (SO_REUSEPORT, worker-mode.ts), else processes; `threads`
 * where it cannot is a configuration error naming why.
 */
function resolveWorkerMode(asked: 'auto' | WorkerMode, listen: ListenTarget, workers: number, error: (reason: string) => Error): WorkerMode {
  if (asked === 'processes') return 'processes';
  const why = threadsUnsupported(listen);
  if (why === undefined) return 'threads';
  // (One worker runs in the main process: neither mode applies, nothing to refuse.)
  if (asked === 'threads' && workers > 1) throw error(`threads are not available here: ${why} (use --worker-mode processes or auto)`);
  return 'processes';
}

function workerCount(n: number): number {
  // Default: one data-plane process per core (0 means the same). 1 keeps the proxy in the main
  // process: no IPC hop for route changes, the cheapest choice on a one-core machine.
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
