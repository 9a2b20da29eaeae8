// One Switchyard per public port, also with worker threads. Threads bind the port with
// SO_REUSEPORT, and Linux lets any later socket of the same user with SO_REUSEPORT join it: a
// second Switchyard (threads) started on the same port would silently take a share of the
// connections instead of failing with EADDRINUSE, as it does with processes or one worker. So the
// primary claims the port first: it binds a Linux abstract unix socket named after it and holds it
// for its life (the kernel frees it when the process ends, however it ends; no file to clean
// up). A second instance cannot bind the same name and stops with "port in use".
// The name has the port only, not the address: two Switchyards with threads on one port of two
// addresses refuse each other too (SO_REUSEPORT would let a wildcard and a specific bind overlap).

import { createServer, type Server } from 'node:net';
import { ErrorCode, SwitchyardError } from '../../errors.js';

export interface PortClaim {
  release(): void;
}

/** The abstract socket name of `port` (a leading NUL: abstract namespace, per network namespace). */
export function portClaimName(port: number): string {
  return `\0switchyard-proxy-${port}`;
}

export function claimProxyPort(port: number): Promise<PortClaim> {
  return new Promise((resolve, reject) => {
    const server: Server = createServer((socket) => socket.destroy());
    server.once('error', (e: NodeJS.ErrnoException) => {
      const msg =
        e.code === 'EADDRINUSE'
          ? `port ${port} is in use by another Switchyard (its data-plane threads hold it with SO_REUSEPORT, which would let this one share it silently)`
          : `cannot claim port ${port}: ${e.message}`;
      reject(new SwitchyardError(ErrorCode.LISTEN_FAILED, msg, { cause: e, details: { errno: e.code === 'EADDRINUSE' ? 'EADDRINUSE' : e.code } }));
    });
    server.listen({ path: portClaimName(port) }, () => {
      server.unref(); // held, but it keeps nothing alive
      resolve({ release: () => void server.close() });
    });
  });
}
