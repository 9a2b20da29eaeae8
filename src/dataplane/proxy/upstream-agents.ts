// Pooled keep-alive upstream connections. Proxied requests go through undici: one Pool per
// origin (scheme://host:port, or unix socket path), created on first use and closed once idle
// (no connection, nothing queued) at a sweep, so a hub whose user servers come and go on new
// ports does not accumulate pools. node:http agents remain for the error-target fetches. Never
// the global agents or dispatcher: no module-level state.
//
// Why undici for the data path: its dispatch API hands the response head and body chunks straight
// to callbacks (no ClientRequest/IncomingMessage objects, no stream piping per request), which
// measured ~40% less CPU per proxied request than http.request + Agent on this machine.

import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { Pool, buildConnector, type Dispatcher } from 'undici';
import type { ClientTlsOptions } from '../../config/config.js';
import type { Upstream } from '../../routing/target.js';
import { guardUpstreamSocket } from './upstream-socket.js';

/** TLS options for connections to https targets (--insecure, --client-ssl-*). */
export interface UpstreamTls {
  readonly rejectUnauthorized: boolean;
  readonly key?: Buffer;
  readonly cert?: Buffer;
  readonly ca?: Buffer[];
}

export interface UpstreamAgents {
  readonly http: http.Agent;
  readonly https: https.Agent;
  /** The same TLS options the pools use, for connections made outside them (websocket tunnels). */
  readonly tls: UpstreamTls;
  /** The undici dispatcher for `upstream` (its origin's pool, or its unix socket's). */
  dispatcher(upstream: Upstream): Dispatcher;
  poolCount(): number;
  /** --upstream-connect-timeout changed by a reload: applies to connections opened from now on. */
  setConnectTimeout(ms: number): void;
  destroy(): void;
}

// Close pooled sockets idle longer than typical upstream keep-alive timeouts (Node's own server
// default is 5 s), so we rarely reuse a socket the upstream is closing.
const IDLE_MS = 4_000;
const SWEEP_MS = 30_000;
/** Default --upstream-connect-timeout: TCP connect plus TLS handshake (undici's own default). */
export const CONNECT_TIMEOUT_MS = 10_000;

export function createUpstreamAgents(opts: {
  insecure: boolean;
  clientSsl: ClientTlsOptions | undefined;
  /** Longest TCP connect + TLS handshake to an upstream (fails with UND_ERR_CONNECT_TIMEOUT). */
  connectTimeout?: number;
  /** Tests: shorter idle and sweep periods. */
  idleMs?: number;
  sweepMs?: number;
}): UpstreamAgents {
  const idleMs = opts.idleMs ?? IDLE_MS;
  const common = {
    keepAlive: true,
    keepAliveMsecs: 30_000,
    maxSockets: Infinity,
    maxFreeSockets: 512,
    scheduling: 'lifo' as const,
    timeout: IDLE_MS,
  };
  const tls: UpstreamTls = {
    rejectUnauthorized: !opts.insecure,
    ...(opts.clientSsl?.key ? { key: opts.clientSsl.key } : {}),
    ...(opts.clientSsl?.cert ? { cert: opts.clientSsl.cert } : {}),
    ...(opts.clientSsl?.ca ? { ca: opts.clientSsl.ca } : {}),
  };
  const httpAgent = new http.Agent(common);
  const httpsAgent = new https.Agent({ ...common, ...tls });
  const undiciCommon = {
    keepAliveTimeout: idleMs,
    keepAliveMaxTimeout: idleMs,
    pipelining: 1,
    // Per-request timeouts are set by the forwarder (--proxy-timeout; none by default, as CHP).
    headersTimeout: 0,
    bodyTimeout: 0,
  };
  // Every pooled socket gets the status-line guard (upstream-socket.ts).
  const connector = (base: buildConnector.connector): buildConnector.connector => (options, callback) =>
    base(options, (err, socket) => {
      if (socket) guardUpstreamSocket(socket as Socket);
      (callback as (e: Error | null, s: unknown) => void)(err, socket);
    });
  let timeout = opts.connectTimeout ?? CONNECT_TIMEOUT_MS;
  // Pools keep this wrapper; a reload swaps what it calls, so new connections get the new timeout.
  let tcpConnectNow = connector(buildConnector({ ...tls, timeout }));
  const tcpConnect: buildConnector.connector = (options, callback) => tcpConnectNow(options, callback);
  const pools = new Map<string, Pool>();
  const sweep = setInterval(() => {
    for (const [key, pool] of pools) {
      const st = pool.stats;
      if (st.connected === 0 && st.queued === 0 && st.running === 0 && st.pending === 0) {
        pools.delete(key);
        void pool.close().catch(() => {});
      }
    }
  }, opts.sweepMs ?? SWEEP_MS);
  sweep.unref();
  return {
    http: httpAgent,
    https: httpsAgent,
    tls,
    dispatcher(upstream) {
      let pool = pools.get(upstream.poolKey);
      if (pool === undefined) {
        pool =
          upstream.socketPath === undefined
            ? new Pool(upstream.poolKey, { ...undiciCommon, connect: tcpConnect })
            : new Pool('http://localhost', { ...undiciCommon, connect: connector(buildConnector({ socketPath: upstream.socketPath, timeout })) });
        pools.set(upstream.poolKey, pool);
      }
      return pool;
    },
    /** A reload's --upstream-connect-timeout: for connections opened from now on. */
    setConnectTimeout(ms: number) {
      if (ms === timeout) return;
      timeout = ms;
      tcpConnectNow = connector(buildConnector({ ...tls, timeout }));
    },
    /** Open pools (tests, diagnostics). */
    poolCount: () => pools.size,
    destroy() {
      httpAgent.destroy();
      httpsAgent.destroy();
      clearInterval(sweep);
      for (const p of pools.values()) void p.destroy().catch(() => {});
      pools.clear();
    },
  };
}
