// --redirect-port: a plain-HTTP listener that sends every request to the HTTPS proxy with a 301,
// as CHP does (the port is appended unless it is 443; no Host header is a 400). With ACME,
// HTTP-01 challenges are answered first (the CA validates on port 80).

import { http } from '../../node-http.js';
import { closeServer, listenOn } from '../../net.js';
import type { Http01Responder } from '../../tls/http01-responder.js';

export function createRedirectServer(opts: { port: number; host: string | undefined; httpsPort: number; http01?: Http01Responder }) {
  const server = http.createServer((req, res) => {
    if (opts.http01?.(req, res)) return;
    const hostHeader = req.headers.host;
    if (hostHeader === undefined || hostHeader === '') {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(
        `This server is HTTPS-only on port ${opts.httpsPort}, but an HTTP request was made and the host could not be determined from the request.`,
      );
      return;
    }
    let host = hostHeader.startsWith('[') ? hostHeader.slice(0, hostHeader.indexOf(']') + 1) : hostHeader.split(':')[0]!;
    if (opts.httpsPort !== 443) host += ':' + opts.httpsPort;
    res.writeHead(301, { location: `https://${host}${req.url ?? '/'}` });
    res.end();
  });
  return {
    server,
    start: () => listenOn(server, { kind: 'tcp', port: opts.port, host: opts.host }),
    close: () => closeServer(server, 1000),
  };
}
