// The guide's TLS setup (docs/jupyterhub.md, "TLS"), end to end: JupyterHub 3 loads
// docs/examples/jupyterhub/jupyterhub_config_tls.py (its certificate paths replaced by the test
// certificate's) and starts Switchyard with --ssl-cert/--ssl-key (read from /proc); a user logs in
// through the proxy over https trusting only that certificate, her server spawns and answers over
// https, a kernel websocket runs code over wss, the server stops. The scenario is
// test/helpers/jupyterhub.ts, as for test/e2e/jupyterhub.test.ts.

import { test } from 'node:test';
import { runJupyterHubScenario } from '../helpers/jupyterhub.js';
import { MAIN } from '../helpers/servers.js';
import { testCert } from '../helpers/tls.js';

test('JupyterHub 3 with the guide\'s TLS config: Switchyard gets --ssl-cert/--ssl-key; login, spawn, kernel over https/wss', { timeout: 240_000 }, (t) =>
  runJupyterHubScenario(t, MAIN, undefined, { tls: testCert() }),
);
