// Listening and graceful closing, shared by every server the process runs.

import cluster from 'node:cluster';
import { existsSync, unlinkSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Server as NetServer } from 'node:net';
import type { ListenTarget } from './config/config.js';
import { ErrorCode, SwitchyardError } from './errors.js';

/** A bind failure as the error type every module boundary uses; the OS error stays its cause. */
export function listenFailed(e: Error): SwitchyardError {
  return new SwitchyardError(ErrorCode.LISTEN_FAILED, e.message, { cause: e, details: { errno: (e as NodeJS.ErrnoException).code } });
}

/** How a TCP listen differs from its target's: another port (a worker thread's), SO_REUSEPORT. */
export interface ListenOptions {
  readonly port?: number;
  readonly reusePort?: boolean;
}

/** Listen on a TCP port or unix socket; rejects with SWY_LISTEN_FAILED caused by the OS error (EADDRINUSE...). */
export function listenOn(server: NetServer, target: ListenTarget, options: ListenOptions = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(listenFailed(e));
    server.once('error', onError);
    const done = (): void => {
      server.removeListener('error', onError);
      resolve();
    };
    if (target.kind === 'unix') {
      // A stale socket file from a crashed run would make listen fail with EADDRINUSE.
      // (Not in a cluster worker: the primary owns the socket and cleared it before forking.)
      if (!cluster.isWorker && existsSync(target.path)) unlinkSync(target.path);
      server.listen(target.path, done);
    } else {
      const port = options.port ?? target.port;
      server.listen({ port, ...(target.host !== undefined ? { host: target.host } : {}), ...(options.reusePort ? { reusePort: true } : {}) }, done);
    }
  });
}

/**
 * Stop accepting, close idle keep-alive connections, wait for in-flight requests for at most
 * `drainMs`, then destroy what is left (`onForce` first, e.g. for upgraded sockets).
 */
export async function closeServer(server: Server, drainMs: number, onForce?: () => void): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const idle = setInterval(() => server.closeIdleConnections(), 100);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, drainMs);
  });
  await Promise.race([closed, timeout]);
  clearInterval(idle);
  clearTimeout(timer);
  onForce?.();
  server.closeAllConnections();
  await closed;
}
