// Pooled keep-alive upstream connections: one Agent per scheme (unix sockets share the http one;
// the agent keys pools by socket path). Never the global agents: no module-level state.

import http from 'node:http';
import https from 'node:https';
import type { ClientTlsOptions } from '../../config/config.js';

export interface UpstreamAgents {
  readonly http: http.Agent;
  readonly https: https.Agent;
  destroy(): void;
}

export function createUpstreamAgents(opts: { insecure: boolean; clientSsl: ClientTlsOptions | undefined }): UpstreamAgents {
  const common = {
    keepAlive: true,
    keepAliveMsecs: 30_000,
    maxSockets: Infinity,
    maxFreeSockets: 512,
    scheduling: 'lifo' as const,
    // Close pooled sockets idle longer than typical upstream keep-alive timeouts (Node's own
    // server default is 5 s), so we rarely reuse a socket the upstream is closing.
    timeout: 4_000,
  };
  const httpAgent = new http.Agent(common);
  const httpsAgent = new https.Agent({
    ...common,
    rejectUnauthorized: !opts.insecure,
    ...(opts.clientSsl?.key ? { key: opts.clientSsl.key } : {}),
    ...(opts.clientSsl?.cert ? { cert: opts.clientSsl.cert } : {}),
    ...(opts.clientSsl?.ca ? { ca: opts.clientSsl.ca } : {}),
  });
  return {
    http: httpAgent,
    https: httpsAgent,
    destroy() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}
