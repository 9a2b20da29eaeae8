// Whether data-plane workers can be threads here. A worker thread has no node:cluster to share the
// primary's listening socket: each thread opens its own on the public port with SO_REUSEPORT (the
// kernel spreads new connections over them), which needs Linux (its SO_REUSEPORT balances
// connections; other systems' differ or lack it), Node's `reusePort` listen option (Node 22.12,
// 23.1 and later; older versions ignore it, and the second thread fails with EADDRINUSE), and a TCP
// listener (a unix socket has no SO_REUSEPORT).

import type { ListenTarget } from './config.js';

export type WorkerMode = 'threads' | 'processes';

/** Whether this Node has net's `reusePort` listen option. */
export function nodeHasReusePort(version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

/** Why worker threads cannot serve `listen` here, or undefined when they can. */
export function threadsUnsupported(listen: ListenTarget, platform: string = process.platform, version: string = process.versions.node): string | undefined {
  if (platform !== 'linux') return `SO_REUSEPORT load balancing needs Linux (this is ${platform})`;
  if (!nodeHasReusePort(version)) return `Node ${version} has no reusePort listen option (Node 22.12, 23.1 or later)`;
  if (listen.kind === 'unix') return 'the proxy listens on a unix socket (--socket), which cannot be shared with SO_REUSEPORT';
  return undefined;
}
