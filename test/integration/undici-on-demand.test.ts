// undici is loaded by a data plane only when a request first needs it (upstream-agents.ts): loading
// its HTTP/1 client compiles llhttp's WebAssembly (~+12 MiB RSS per process), and a hub whose
// requests all take the fast path (fast-path.ts) never needs it. Checked in the real process
// (--workers 1: the data plane is the process we inspect) through its module cache, read with the
// inspector; and the request that loads it is answered as any other.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request, startBackend, startSwitchyardProcess, type Echo, type TestContextLike } from '../helpers/servers.js';
import { connectInspector, inspectorUrl, type Inspector } from '../helpers/inspector.js';

/** The undici files (relative to undici/) in the inspected process's CommonJS module cache. */
async function undiciLoaded(probe: Inspector): Promise<string[]> {
  const r = await probe.call<{ result: { value?: string }; exceptionDetails?: unknown }>('Runtime.evaluate', {
    expression: `JSON.stringify(Object.keys(require.cache).filter((k) => k.includes('/node_modules/undici/')).map((k) => k.slice(k.lastIndexOf('/node_modules/undici/') + 21)))`,
    includeCommandLineAPI: true,
    returnByValue: true,
  });
  if (r.exceptionDetails !== undefined || r.result.value === undefined) throw new Error(`inspector: ${JSON.stringify(r)}`);
  return JSON.parse(r.result.value) as string[];
}

async function start(t: TestContextLike) {
  const backend = await startBackend(t, 'U');
  const p = await startSwitchyardProcess(t, ['--workers', '1', '--default-target', backend.url], {}, 30_000, ['--inspect=127.0.0.1:0']);
  const probe = await connectInspector(t, await inspectorUrl(p.output));
  return { backend, p, probe };
}

/** A POST whose body has no length (chunked): the fast path hands it to node:http, forwarded by undici. */
const chunkedPost = (url: string) => request(url, { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: 'chunked body' });

test('a --workers 1 process loads no undici until a request needs it; the fast path never does', { timeout: 60_000 }, async (t) => {
  const { p, probe } = await start(t);
  assert.deepEqual(await undiciLoaded(probe), [], 'undici loaded at start');
  for (let i = 0; i < 3; i++) {
    const r = await request(`${p.proxyUrl}/fast/${i}`);
    assert.equal(r.status, 200);
    assert.equal(r.json<Echo>().url, `/fast/${i}`);
  }
  assert.deepEqual(await undiciLoaded(probe), [], 'undici loaded by fast-path GETs');

  const r = await chunkedPost(`${p.proxyUrl}/slow`);
  assert.equal(r.status, 200);
  const echo = r.json<Echo>();
  assert.deepEqual([echo.method, echo.url, echo.body], ['POST', '/slow', 'chunked body']);
  const loaded = await undiciLoaded(probe);
  assert.ok(loaded.includes('lib/dispatcher/pool.js') && loaded.includes('lib/core/connect.js'), `undici's Pool loaded for the request: ${loaded.join(' ')}`);
  assert.deepEqual(loaded.filter((f) => f === 'index.js' || f.startsWith('lib/web/') || f.startsWith('lib/mock/')), [], 'and still not its index');
  // The fast path and the undici path keep working side by side.
  assert.equal((await request(`${p.proxyUrl}/fast/again`)).status, 200);
  assert.equal((await chunkedPost(`${p.proxyUrl}/slow/again`)).json<Echo>().body, 'chunked body');
});

test('a fresh --workers 1 process whose first request needs undici answers it correctly', { timeout: 60_000 }, async (t) => {
  const { backend, p, probe } = await start(t);
  assert.deepEqual(await undiciLoaded(probe), []);
  const r = await chunkedPost(`${p.proxyUrl}/first?x=1`);
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-backend'], 'U');
  const echo = r.json<Echo>();
  assert.deepEqual([echo.method, echo.url, echo.body, echo.bodyLength], ['POST', '/first?x=1', 'chunked body', 12]);
  assert.equal(backend.requests.length, 1);
  assert.ok((await undiciLoaded(probe)).includes('lib/dispatcher/pool.js'));
});
