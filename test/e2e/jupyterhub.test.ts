// End to end with the real client: JupyterHub 3 (Debian's package) runs Switchyard as its proxy
// command, exactly as it runs configurable-http-proxy (c.ConfigurableHTTPProxy.command = ['switchyard']).
// A user logs in through the proxy, their notebook server starts, a kernel websocket executes code
// through the proxy, the server stops and its route disappears from Switchyard's table.
// The scenario is in test/helpers/jupyterhub.ts. The switchyard command is this build's
// dist/src/main.js, or SWITCHYARD_BIN (any executable, e.g. an installed package's bin/switchyard);
// test/e2e/package.test.ts runs the same scenario with the package installed from `npm pack`.

import { resolve } from 'node:path';
import { test } from 'node:test';
import { runJupyterHubScenario } from '../helpers/jupyterhub.js';
import { MAIN } from '../helpers/servers.js';

const SWITCHYARD = process.env.SWITCHYARD_BIN ? resolve(process.env.SWITCHYARD_BIN) : MAIN;

test(`JupyterHub 3 runs Switchyard (${SWITCHYARD}) as its proxy: login, spawn, kernel websocket, stop`, { timeout: 240_000 }, (t) =>
  runJupyterHubScenario(t, SWITCHYARD),
);
