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

import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Route } from '../../routing/table.js';
import type { RequestPath } from '../../routing/request-path.js';
import { reasonPhrase, upstreamPath, upstreamRequestHeaders, withoutHopByHop, type HeaderOptions } from './headers.js';
import type { ErrorPages } from './error-pages.js';
import { activityPulse } from './activity-pulse.js';
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

export function createTunneler(o: TunnelOptions) {
  /** `result(status)` is called once, with 101 when the tunnel is up or the status the client got. */
  return function tunnel(req: IncomingMessage, socket: Duplex, head: Buffer, route: Route, rp: RequestPath, result: (status: number) => void): void {
    const up = route.upstream;
    const isHttps = up.protocol === 'https:';
    const headers = upstreamRequestHeaders(req, up, o.headers, true);
    const preq = (isHttps ? https : http).request({
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
    preq.on('socket', (s: Socket) => {
      const onConnected = (): void => {
        connected = true;
        clearTimeout(connectTimer);
      };
      const connectTimer = setTimeout(() => {
        preq.destroy(codedError(`connect timed out after ${o.connectTimeout} ms`, 'UND_ERR_CONNECT_TIMEOUT'));
      }, o.connectTimeout);
      s.once(isHttps ? 'secureConnect' : 'connect', onConnected);
      s.once('close', () => clearTimeout(connectTimer));
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
        socket.write(headBlock(status, ures.statusMessage, [...withoutHopByHop(ures.rawHeaders), 'Connection', 'close']), 'latin1');
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

    preq.on('upgrade', (ures, usocket: Socket, uhead: Buffer) => {
      if (done) {
        usocket.destroy();
        return;
      }
      try {
        relayUpgrade(ures, usocket, uhead);
      } catch (e) {
        internal(e);
        usocket.destroy();
      }
    });

    const relayUpgrade = (ures: IncomingMessage, usocket: Socket, uhead: Buffer): void => {
      done = true;
      preq.setTimeout(0);
      socket.removeListener('close', clientGone);
      socket.removeListener('error', clientGone);
      o.stats.activeWebsockets++;
      o.recordActivity(route.path);
      usocket.setNoDelay(true);
      usocket.setTimeout(0);
      (socket as Socket).setNoDelay?.(true);

      const touch = activityPulse(o.recordActivity, route.path);
      let closed = false;
      const closeBoth = (): void => {
        if (closed) return;
        closed = true;
        o.stats.activeWebsockets--;
        socket.destroy();
        usocket.destroy();
      };
      socket.on('error', closeBoth);
      usocket.on('error', closeBoth);
      socket.on('close', closeBoth);
      usocket.on('close', closeBoth);
      socket.on('data', touch);
      usocket.on('data', touch);

      socket.write(headBlock(101, ures.statusMessage || 'Switching Protocols', ures.rawHeaders), 'latin1');
      if (uhead.length > 0) socket.write(uhead);
      if (head.length > 0) usocket.write(head);
      usocket.pipe(socket);
      socket.pipe(usocket);
      o.onTunnel(socket, usocket);
      result(101);
    };

    preq.end();
  };
}
