// Error responses from the proxy itself: 400 (hostile/malformed path), 404 (no route), 408
// (request body stalled), 502 (invalid upstream response), 503 (upstream down), 504 (upstream
// silent past --proxy-timeout), 500 (our bug), in CHP 5.3's three modes:
//  - --error-target URL: GET URL/<code>?url=<request url>; its body, Content-Type and
//    Content-Encoding are returned with <code>. If that fails, the built-in page is used.
//  - --error-path DIR: DIR/<code>.html, else DIR/error.html, as text/html.
//  - neither: Switchyard's own pages in assets/error (CHP likewise ships default pages).
// Websocket upgrades get a bare "HTTP/1.1 <code>" response and the socket is closed.

import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { STATUS_CODES, http, https } from '../../node-http.js';
import type { Logger } from '../../observability/logger.js';
import type { UpstreamAgents } from './upstream-agents.js';
import { parseTarget, type Upstream } from '../../routing/target.js';

const BUILTIN_DIR = fileURLToPath(new URL('../../../../assets/error/', import.meta.url));

/** An error response as bytes to write (the fast path writes it on the raw socket). */
export interface ErrorPage {
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Buffer;
}

export interface ErrorPages {
  web(req: IncomingMessage, res: ServerResponse, code: number): void;
  /** The same page as `web` answers for `url` (its headers and body), buffered; never rejects. */
  page(url: string, code: number): Promise<ErrorPage>;
  ws(socket: Duplex, code: number): void;
}

export interface ErrorPageOptions {
  readonly errorTarget: string | undefined;
  readonly errorPath: string | undefined;
  readonly agents: UpstreamAgents;
  readonly log: Logger;
}

function plain(res: ServerResponse, code: number): void {
  if (res.writableEnded || res.destroyed) return;
  try {
    if (!res.headersSent) res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(STATUS_CODES[code] ?? 'Error');
  } catch {
    res.destroy();
  }
}

export function createErrorPages(opts: ErrorPageOptions): ErrorPages {
  const { log } = opts;
  const dir = opts.errorPath ?? BUILTIN_DIR;
  let errorTarget: Upstream | undefined;
  if (opts.errorTarget) {
    const t = opts.errorTarget.endsWith('/') ? opts.errorTarget : opts.errorTarget + '/';
    errorTarget = parseTarget(t);
  }

  const fileBody = async (code: number): Promise<Buffer | undefined> => {
    for (const name of [`${code}.html`, 'error.html']) {
      try {
        return await readFile(join(dir, name));
      } catch {
        // try the next name
      }
    }
    return undefined;
  };

  const pageFromFile = async (code: number): Promise<ErrorPage> => {
    const body = await fileBody(code);
    if (body === undefined) {
      log.error('no error page file', { dir, code });
      return { headers: [['content-type', 'text/plain; charset=utf-8']], body: Buffer.from(STATUS_CODES[code] ?? 'Error') };
    }
    return { headers: [['content-type', 'text/html']], body };
  };

  /**
   * GET <error-target>/<code>?url=<url>: the one request both error-page forms make (the node:http
   * path streams its answer, the fast path buffers it). `onError` hears a failed request or a
   * timeout (10 s); the response's own errors are the caller's.
   */
  const requestErrorTarget = (t: Upstream, code: number, url: string, onResponse: (eres: IncomingMessage) => void, onError: (e: Error) => void): void => {
    const mod = t.protocol === 'https:' ? https() : http;
    const ereq = mod.request(
      {
        agent: t.protocol === 'https:' ? opts.agents.https : opts.agents.http,
        hostname: t.hostname || undefined,
        port: t.port || undefined,
        socketPath: t.socketPath,
        method: 'GET',
        path: `${t.pathname}${code}?url=${encodeURIComponent(url)}`,
        timeout: 10_000,
      },
      onResponse,
    );
    ereq.on('timeout', () => ereq.destroy(new Error('error target timed out')));
    ereq.on('error', onError);
    ereq.end();
  };

  /** The error target's headers that travel with its page. */
  const PAGE_HEADERS = ['content-type', 'content-encoding'] as const;

  const pageFromTarget = (url: string, code: number, t: Upstream): Promise<ErrorPage> =>
    new Promise((resolve) => {
      const fallBack = (e: Error): void => {
        log.error('failed to get custom error page', { target: opts.errorTarget, err: e });
        resolve(pageFromFile(code));
      };
      requestErrorTarget(t, code, url, (eres) => {
        const headers: [string, string][] = [];
        for (const k of PAGE_HEADERS) {
          const v = eres.headers[k];
          if (typeof v === 'string') headers.push([k, v]);
        }
        const chunks: Buffer[] = [];
        eres.on('data', (d: Buffer) => chunks.push(d));
        eres.on('end', () => resolve({ headers, body: Buffer.concat(chunks) }));
        eres.on('error', fallBack);
      }, fallBack);
    });

  const fromFile = async (res: ServerResponse, code: number): Promise<void> => {
    const body = await fileBody(code);
    if (body === undefined) {
      log.error('no error page file', { dir, code });
      plain(res, code);
      return;
    }
    if (res.writableEnded || res.destroyed) return;
    try {
      res.writeHead(code, { 'content-type': 'text/html' });
      res.end(body);
    } catch (e) {
      // Never an unhandled rejection: the connection is cut instead (its state was not ours to fix).
      log.error(`error page ${code} could not be written`, { err: e });
      res.destroy();
    }
  };

  const fromTarget = (req: IncomingMessage, res: ServerResponse, code: number, t: Upstream): void => {
    requestErrorTarget(
      t,
      code,
      req.url ?? '/',
      (eres) => {
        if (res.writableEnded || res.destroyed) {
          eres.resume();
          return;
        }
        const headers: Record<string, string> = {};
        for (const k of PAGE_HEADERS) {
          const v = eres.headers[k];
          if (typeof v === 'string') headers[k] = v;
        }
        try {
          res.writeHead(code, headers);
        } catch (e) {
          log.error(`error page ${code} could not be written`, { err: e });
          eres.resume();
          res.destroy();
          return;
        }
        eres.pipe(res);
        eres.on('error', () => res.destroy());
      },
      (e) => {
        log.error('failed to get custom error page', { target: opts.errorTarget, err: e });
        void fromFile(res, code);
      },
    );
  };

  return {
    page(url, code) {
      return errorTarget ? pageFromTarget(url, code, errorTarget) : pageFromFile(code);
    },
    web(req, res, code) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (errorTarget) fromTarget(req, res, code, errorTarget);
      else void fromFile(res, code);
    },
    ws(socket, code) {
      if (socket.writable) {
        socket.end(`HTTP/1.1 ${code} ${STATUS_CODES[code] ?? ''}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      }
      // end() flushes the response; destroy() after a grace period covers a peer that never closes.
      setTimeout(() => socket.destroy(), 1000).unref();
    },
  };
}
