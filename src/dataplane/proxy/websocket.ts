// Websocket (and any HTTP/1.1 Upgrade) tunnelling.
//
// Contract: the upgrade request goes to the routed upstream with the client's end-to-end headers
// plus Upgrade/Connection; a 101 answer is relayed verbatim (status line and headers, including
// Sec-WebSocket-Accept/Protocol/Extensions), then bytes are piped both ways with backpressure, so
// frames, binary data and close codes pass untouched. A non-101 answer is relayed with its body and
// the connection closed: re-framed for the client (its hop-by-hop headers — Transfer-Encoding,
// Connection and what it names — dropped, Node's client has de-chunked the body, which is then
// delimited by the close). Either side closing or failing closes the other. Failures before an
// answer map as in forward.ts: 503 (cannot connect, reset), 504 (--proxy-timeout), 502 (invalid).
// Reason phrases are forwarded only as plain visible ASCII, heads are written as latin1 (the
// bytes the upstream sent).
//
// Memory: an open tunnel holds its two sockets and one small WsPair, nothing else. The relay's
// listeners are module-level functions that find their pair through a symbol on the socket (no
// per-tunnel closures, no stream.pipe state), and nothing long-lived refers to the handshake's
// objects (the client's IncomingMessage, the ClientRequest, its Agent and the upstream's
// IncomingMessage, their header objects, the timers' closures): they are garbage once the 101 is
// relayed. With 10,000 idle websockets this was about 7 KiB of live heap per websocket (16 KiB
// RSS -> 9 KiB; bench/README.md, "Idle websockets' memory").

import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { http, https } from '../../node-http.js';
import type { Route } from '../../routing/table.js';
import type { RequestPath } from '../../routing/request-path.js';
import { reasonPhrase, responseTransferCodings, upstreamPath, upstreamRequestHeaders, withoutHopByHop, type HeaderOptions } from './headers.js';
import type { ErrorPages } from './error-pages.js';
import { ACTIVITY_EVERY_MS } from './activity-pulse.js';
import type { Logger } from '../../observability/logger.js';
import type { ProxyStats } from '../../observability/metrics.js';
import type { UpstreamTls } from './upstream-agents.js';
import { STATUS_FOR, classifyUpstreamError, codedError } from './forward.js';

export interface TunnelOptions {
  readonly headers: HeaderOptions;
  readonly prependPath: boolean;
  readonly includePrefix: boolean;
  readonly proxyTimeout: number | undefined;
  /** TLS options for https targets (upstream-agents.ts: the pools use the same). */
  readonly tls: UpstreamTls;
  /** --upstream-connect-timeout (ms). */
  readonly connectTimeout: number;
  readonly errors: ErrorPages;
  readonly stats: ProxyStats;
  readonly log: Logger;
  readonly recordActivity: (path: string) => void;
  readonly onTunnel: (client: Duplex, upstream: Duplex) => void;
}

function headBlock(status: number, reason: string | undefined, raw: readonly string[]): string {
  let s = `HTTP/1.1 ${status} ${reasonPhrase(status, reason ?? '')}\r\n`;
  for (let i = 0; i + 1 < raw.length; i += 2) s += raw[i] + ': ' + raw[i + 1] + '\r\n';
  return s + '\r\n';
}

/** One open tunnel: both sockets point at it through PAIR; the relay's handlers are shared. */
class WsPair {
  /** Last time activity was recorded (ms): recorded at most once per ACTIVITY_EVERY_MS. */
  last = Date.now();
  closed = false;
  constructor(
    readonly client: Duplex,
    readonly upstream: Duplex,
    readonly routePath: string,
    readonly record: (path: string) => void,
    readonly stats: ProxyStats,
  ) {}
}

const PAIR = Symbol('switchyard.wsPair');
type PairedSocket = Duplex & { [PAIR]?: WsPair };

function pairOf(s: Duplex): WsPair {
  return (s as PairedSocket)[PAIR]!;
}

// The relay, as stream.pipe does it each way (write, pause the source while the other side's
// buffer is full, resume on its 'drain', end the other side's writing on 'end': half-close), plus
// the activity pulse; either side closing or failing closes both, once.
function relayData(this: Duplex, chunk: Buffer): void {
  const p = pairOf(this);
  const now = Date.now();
  if (now - p.last >= ACTIVITY_EVERY_MS) {
    p.last = now;
    p.record(p.routePath);
  }
  if (!(this === p.client ? p.upstream : p.client).write(chunk)) this.pause();
}

function relayDrain(this: Duplex): void {
  const p = pairOf(this);
  if (!p.closed) (this === p.client ? p.upstream : p.client).resume();
}

function relayEnd(this: Duplex): void {
  const p = pairOf(this);
  if (!p.closed) (this === p.client ? p.upstream : p.client).end();
}

function relayClose(this: Duplex): void {
  const p = pairOf(this);
  if (p.closed) return;
  p.closed = true;
  p.stats.activeWebsockets--;
  p.client.destroy();
  p.upstream.destroy();
}

function startRelay(p: WsPair): void {
  for (const s of [p.client, p.upstream]) {
    (s as PairedSocket)[PAIR] = p;
    s.on('error', relayClose);
    s.on('close', relayClose);
    s.on('end', relayEnd);
    s.on('drain', relayDrain);
    s.on('data', relayData);
    // As pipe does: flowing even if someone paused it before ('data' alone would not resume it).
    s.resume();
  }
}

export function createTunneler(o: TunnelOptions) {
  /** `result(status)` is called once, with 101 when the tunnel is up or the status the client got. */
  return function tunnel(req: IncomingMessage, socket: Duplex, head: Buffer, route: Route, rp: RequestPath, result: (status: number) => void): void {
    const up = route.upstream;
    const isHttps = up.protocol === 'https:';
    const headers = upstreamRequestHeaders(req, up, o.headers, true);
    const preq = (isHttps ? https() : http).request({
      // No pool: an upgraded connection never returns to one.
      agent: false,
      hostname: up.socketPath === undefined ? up.hostname : undefined,
      port: up.socketPath === undefined ? up.port : undefined,
      socketPath: up.socketPath,
      method: req.method,
      path: upstreamPath(up, rp.path, rp.query, route.pathDepth, o.prependPath, o.includePrefix),
      headers,
      ...(isHttps ? o.tls : {}),
    });
    // Everything below refers to the handshake's objects; none of it is reachable from the
    // sockets once the tunnel is up (see the memory note at the top).
    let done = false;
    const clientGone = (): void => {
      if (!done) {
        done = true;
        preq.destroy();
      }
    };
    socket.on('error', clientGone);
    socket.on('close', clientGone);

    if (o.proxyTimeout !== undefined) {
      preq.setTimeout(o.proxyTimeout, () => {
        preq.destroy(codedError(`no upgrade response within ${o.proxyTimeout} ms`, 'SWY_PROXY_TIMEOUT'));
      });
    }
    let connected = false;
    let connectTimer: NodeJS.Timeout | undefined;
    // Cleared when the request is over (answered, upgraded, failed): no listener on the upstream
    // socket, which outlives the handshake.
    preq.once('close', () => clearTimeout(connectTimer));
    preq.on('socket', (s: Socket) => {
      connectTimer = setTimeout(() => {
        preq.destroy(codedError(`connect timed out after ${o.connectTimeout} ms`, 'UND_ERR_CONNECT_TIMEOUT'));
      }, o.connectTimeout);
      s.once(isHttps ? 'secureConnect' : 'connect', () => {
        connected = true;
        clearTimeout(connectTimer);
      });
    });

    preq.on('error', (e: NodeJS.ErrnoException) => {
      if (done) return;
      done = true;
      const [kind, code] = classifyUpstreamError(e, connected);
      const status = STATUS_FOR[kind];
      o.stats.countUpstreamError(kind, code);
      if (kind === 'timeout') o.stats.countTimeout('upstream');
      else if (kind === 'connect' && code === 'ETIMEDOUT') o.stats.countTimeout('upstream_connect');
      result(status);
      o.log.error(`${status} ${req.method} ${(req.url ?? '').split('?', 1)[0]} ${e.message}`, {
        route: route.path,
        target: up.target,
        code,
        kind: 'ws',
      });
      o.errors.ws(socket, status);
    });

    // The upstream refused to upgrade: relay its answer, re-framed, then close.
    preq.on('response', (ures) => {
      if (done) {
        ures.resume();
        return;
      }
      done = true;
      const status = ures.statusCode ?? 502;
      result(status);
      try {
        // The body goes on until the close, chunked framing removed by Node's client; other
        // transfer codings the upstream applied are not: the client is told of them (headers.ts).
        const te = ures.headers['transfer-encoding'];
        const codings = te !== undefined && status !== 204 && status !== 304 ? responseTransferCodings(te)?.codings : undefined;
        const coded = codings !== undefined ? ['Transfer-Encoding', codings] : [];
        socket.write(headBlock(status, ures.statusMessage, [...withoutHopByHop(ures.rawHeaders), ...coded, 'Connection', 'close']), 'latin1');
        ures.pipe(socket);
        ures.on('error', () => socket.destroy());
      } catch (e) {
        internal(e);
        ures.destroy();
      }
    });

    // Last resort (a bug of ours): logged with its stack and counted; the client connection is cut.
    const internal = (e: unknown): void => {
      o.stats.internalErrors++;
      o.log.error(`internal error relaying ${req.method} ${(req.url ?? '').split('?', 1)[0]} (websocket)`, { err: e });
      socket.destroy();
    };

    preq.on('upgrade', (ures: IncomingMessage, usocket: Socket, uhead: Buffer) => {
      if (done) {
        usocket.destroy();
        return;
      }
      done = true;
      try {
        preq.setTimeout(0);
        socket.removeListener('close', clientGone);
        socket.removeListener('error', clientGone);
        o.stats.activeWebsockets++;
        o.recordActivity(route.path);
        usocket.setNoDelay(true);
        usocket.setTimeout(0);
        (socket as Socket).setNoDelay?.(true);
        startRelay(new WsPair(socket, usocket, route.path, o.recordActivity, o.stats));
        socket.write(headBlock(101, ures.statusMessage || 'Switching Protocols', ures.rawHeaders), 'latin1');
        if (uhead.length > 0) socket.write(uhead);
        if (head.length > 0) usocket.write(head);
        o.onTunnel(socket, usocket);
        result(101);
      } catch (e) {
        internal(e);
        usocket.destroy();
      }
    });

    preq.end();
  };
}
