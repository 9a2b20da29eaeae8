// The dashboard's parts on their own: the SSE hub (event-stream.ts) and the session (cookie) module.

import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { test } from 'node:test';
import { createDashboardSession } from '../../src/api/dashboard-session.js';
import { createEventStreamHub } from '../../src/api/event-stream.js';
import { isSwitchyardError } from '../../src/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { listen0 } from '../helpers/servers.js';

const log = createLogger({ level: 'error', write: () => {} });

test('event stream hub: one serialisation per broadcast, active while a stream is open, bounded count', async (t) => {
  const active: boolean[] = [];
  const hub = createEventStreamHub({ log, maxStreams: 2, maxBacklog: 1 << 20, onActive: (a) => active.push(a) });
  const server = http.createServer((req, res) => {
    try {
      hub.admit();
    } catch (e) {
      res.writeHead(isSwitchyardError(e) ? 503 : 500).end();
      return;
    }
    hub.open(req, res, { 'x-test': '1' }, 'hello', '{"n":0}');
  });
  const port = await listen0(server);
  t.after(() => {
    hub.close();
    server.close();
  });
  const open = async (): Promise<{ res: http.IncomingMessage; text: () => string; req: http.ClientRequest }> => {
    const req = http.get(`http://127.0.0.1:${port}/`);
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => (text += d));
    return { res, text: () => text, req };
  };
  const a = await open();
  assert.equal(a.res.headers['content-type'], 'text/event-stream; charset=utf-8');
  assert.equal(a.res.headers['x-test'], '1');
  const b = await open();
  assert.equal(hub.size(), 2);
  assert.deepEqual(active, [true], 'active once, on the first stream');
  assert.equal((await open()).res.statusCode, 503, 'a third stream is refused');

  hub.broadcast('tick', { n: 1 });
  const want = 'event: hello\ndata: {"n":0}\n\nevent: tick\ndata: {"n":1}\n\n';
  for (const s of [a, b]) {
    const deadline = Date.now() + 5000;
    while (s.text() !== want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(s.text(), want);
  }

  a.req.destroy();
  b.req.destroy();
  const deadline = Date.now() + 5000;
  while (hub.size() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.equal(hub.size(), 0);
  assert.deepEqual(active, [true, false], 'inactive once the last stream closed');
});

test('session: the token or a signed cookie; a forged or expired cookie is refused; no token = off', async () => {
  const session = createDashboardSession({ authToken: 'tok', secureCookie: true, log });
  const req = (headers: http.IncomingHttpHeaders) => ({ headers }) as http.IncomingMessage;
  assert.doesNotThrow(() => session.requireAuth(req({ authorization: 'token tok' })));
  assert.throws(() => session.requireAuth(req({ authorization: 'token nope' })), /login required/);
  assert.throws(() => session.requireAuth(req({})), /login required/);
  // A cookie needs a valid HMAC of its expiry: a hand-made one is refused.
  const future = Math.floor(Date.now() / 1000) + 3600;
  assert.throws(() => session.requireAuth(req({ cookie: `switchyard_dashboard=${future}.AAAA` })), /login required/);
  const off = createDashboardSession({ authToken: undefined, secureCookie: false, log });
  assert.throws(() => off.requireAuth(req({ authorization: 'token tok' })), /dashboard disabled/);
});
