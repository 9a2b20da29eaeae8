// Node's http, https and tls modules, as every Switchyard module gets them (eslint forbids importing
// their values directly: eslint.config.js). Two start-up costs are avoided here, paid by each
// process and each data-plane worker thread (bench/README.md, "Start-up: where the time went"):
// - node:http is loaded with require(), not an ESM import. An ESM import of a built-in module builds
//   its ESM facade, which reads every export once; on Node 22+ node:http has lazy getters
//   (WebSocket, CloseEvent, MessageEvent) that load Node's bundled undici, fetch and http2 with
//   them: ~20-30 ms and several MiB per thread, for exports Switchyard never reads.
// - node:https and node:tls (~20 ms: tls loads the crypto bindings and its secure-context code) are
//   loaded on first use: a proxy or API without TLS (and without https targets) never needs them.
//   The first use is synchronous (a require) and happens once per thread.
// test/unit/worker-imports.test.ts checks what a worker and the primary load at start.

import { createRequire } from 'node:module';
import type * as Http from 'node:http';
import type * as Https from 'node:https';
import type * as Tls from 'node:tls';

const load = createRequire(import.meta.url);

export const http = load('node:http') as typeof Http;
export const STATUS_CODES: typeof Http.STATUS_CODES = http.STATUS_CODES;

let httpsModule: typeof Https | undefined;
let tlsModule: typeof Tls | undefined;

/** node:https, loaded on the first call. */
export function https(): typeof Https {
  return (httpsModule ??= load('node:https') as typeof Https);
}

/** node:tls, loaded on the first call. */
export function tls(): typeof Tls {
  return (tlsModule ??= load('node:tls') as typeof Tls);
}
