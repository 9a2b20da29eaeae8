// Pooled keep-alive upstream connections. Proxied requests go through undici: one Pool per
// origin (scheme://host:port, or unix socket path), created on first use and closed once idle
// (no connection, nothing queued) at a sweep, so a hub whose user servers come and go on new
// ports does not accumulate pools. node:http agents remain for the error-target fetches. Never
// the global agents or dispatcher: no module-level state.
//
// Why undici for the data path: its dispatch API hands the response head and body chunks straight
// to callbacks (no ClientRequest/IncomingMessage objects, no stream piping per request), which
// measured ~40% less CPU per proxied request than http.request + Agent on this machine.

import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { Pool as PoolClass, buildConnector as BuildConnector, Dispatcher } from 'undici';
import type { ClientTlsOptions } from '../../config/config.js';
import type { Upstream } from '../../routing/target.js';
import { guardUpstreamSocket } from './upstream-socket.js';
import { http, https } from '../../node-http.js';

// Only the two undici modules the data path uses (Pool and its connector), not undici's index:
// that also loads fetch, websocket, cache, mock agents and the request()/stream() API mixin, ~5 MiB
// of RSS and ~40 ms of start per process that a proxy never calls (it only dispatch()es).
// And only when a request first needs a pool, not at start: loading undici's HTTP/1 client
// compiles its llhttp WebAssembly parser at once (~+12 MiB of RSS per process: module code, the
// compiled WASM, the compiler's pages of the node binary), while requests the fast path takes
// (fast-path.ts: plain http targets, no chunked request body) never reach undici. The first
// request that does pays the load (a synchronous require, a few ms); undici's client waits for
// the compilation itself before it parses a response.
// test/unit/worker-imports.test.ts checks that neither is loaded before that request.
const requireUndici = createRequire(import.meta.url);
type Pool = PoolClass;
let undici: { Pool: typeof PoolClass; buildConnector: typeof BuildConnector } | undefined;
function loadUndici(): NonNullable<typeof undici> {
  undici ??= {
    Pool: requireUndici('undici/lib/dispatcher/pool.js') as typeof PoolClass,
    buildConnector: requireUndici('undici/lib/core/connect.js') as typeof BuildConnector,
  };
  return undici;
}

/** TLS options for connections to https targets (--insecure, --client-ssl-*). */
export interface UpstreamTls {
  readonly rejectUnauthorized: boolean;
  readonly key?: Buffer;
  readonly cert?: Buffer;
  readonly ca?: Buffer[];
}

export interface UpstreamAgents {
  readonly http: HttpAgent;
  /** Made on first use (it loads node:https and node:tls: node-http.ts). */
  readonly https: HttpsAgent;
  /** The same TLS options the pools use, for connections made outside them (websocket tunnels). */
  readonly tls: UpstreamTls;
  /** The undici dispatcher for `upstream` (its origin's pool, or its unix socket's). */
  dispatcher(upstream: Upstream): Dispatcher;
  poolCount(): number;
  /** --upstream-connect-timeout changed by a reload: applies to connections opened from now on. */
  setConnectTimeout(ms: number): void;
  destroy(): void;
}

/**
 * How much of a body a socket (client or upstream), and the request body's PassThrough, buffer
 * before saying "wait". Node's default (16 KiB; undici's upstream sockets: 64 KiB) is not more than
 * one 64 KiB socket read, so each chunk of a large body cost a backpressure round-trip (pause the
 * reader, 'drain', resume it). It is also the most a stream holds in user space for a slow reader
 * or a slow upstream (test: resilience.test.ts).
 */
export const BODY_HIGH_WATER_MARK = 256 * 1024;

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
  let httpsAgent: HttpsAgent | undefined;
  const undiciCommon = {
    keepAliveTimeout: idleMs,
    keepAliveMaxTimeout: idleMs,
    pipelining: 1,
    // Per-request timeouts are set by the forwarder (--proxy-timeout; none by default, as CHP).
    headersTimeout: 0,
    bodyTimeout: 0,
  };
  // Every pooled socket gets the status-line guard (upstream-socket.ts).
  const connector = (base: BuildConnector.connector): BuildConnector.connector => (options, callback) =>
    base(options, (err, socket) => {
      if (socket) guardUpstreamSocket(socket as Socket);
      (callback as (e: Error | null, s: unknown) => void)(err, socket);
    });
  let timeout = opts.connectTimeout ?? CONNECT_TIMEOUT_MS;
  // undici's connector hands options it does not know on to net.connect()/tls.connect() (its
  // types do not list them, hence the spread).
  const socketOptions = { highWaterMark: BODY_HIGH_WATER_MARK };
  // Pools keep this wrapper; a reload swaps what it calls, so new connections get the new timeout.
  // Built on the first connection (undici is loaded by then: loadUndici()).
  let tcpConnectNow: BuildConnector.connector | undefined;
  const tcpConnect: BuildConnector.connector = (options, callback) =>
    (tcpConnectNow ??= connector(loadUndici().buildConnector({ ...tls, ...socketOptions, timeout })))(options, callback);
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
    get https() {
      return (httpsAgent ??= new (https().Agent)({ ...common, ...tls }));
    },
    tls,
    dispatcher(upstream) {
      let pool = pools.get(upstream.poolKey);
      if (pool === undefined) {
        const { Pool, buildConnector } = loadUndici();
        pool =
          upstream.socketPath === undefined
            ? new Pool(upstream.poolKey, { ...undiciCommon, connect: tcpConnect })
            : new Pool('http://localhost', { ...undiciCommon, connect: connector(buildConnector({ ...socketOptions, socketPath: upstream.socketPath, timeout })) });
        pools.set(upstream.poolKey, pool);
      }
      return pool;
    },
    /** A reload's --upstream-connect-timeout: for connections opened from now on. */
    setConnectTimeout(ms: number) {
      if (ms === timeout) return;
      timeout = ms;
      tcpConnectNow = undefined; // rebuilt with the new timeout on the next connection
    },
    /** Open pools (tests, diagnostics). */
    poolCount: () => pools.size,
    destroy() {
      httpAgent.destroy();
      httpsAgent?.destroy();
      clearInterval(sweep);
      for (const p of pools.values()) void p.destroy().catch(() => {});
      pools.clear();
    },
  };
}
