import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import { createFileStore } from '../../src/store/file-store.js';
import type { WatchEvent } from '../../src/store/route-store.js';
import { runStoreContract } from '../contract/store-contract.js';
import { waitFor } from '../helpers/servers.js';
import { processTempDir, tempDir } from '../helpers/temp.js';

const silent = createLogger({ level: 'error', write: () => {} });

/** A file store closed in t.after even when an assertion fails first; close() may also be called earlier. */
function fileStore(t: TestContext, opts: Parameters<typeof createFileStore>[0]): ReturnType<typeof createFileStore> {
  const s = createFileStore(opts);
  const closeStore = s.close.bind(s);
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= closeStore());
  t.after(close);
  return Object.assign(s, { close });
}

for (const ext of ['toml', 'json']) {
  runStoreContract(`file store (${ext})`, {
    async create() {
      const s = createFileStore({ path: join(processTempDir('swy-fs-'), `routes.${ext}`), log: silent });
      await s.start();
      return s;
    },
  });
}

test('file store: routes and activity survive a restart; the file is readable TOML', async (t) => {
  const path = join(tempDir(t, 'swy-fs-'), 'routes.toml');
  const s1 = fileStore(t, { path, log: silent });
  await s1.start();
  await s1.put('/user/mary', { target: 'http://10.0.1.5:12345', jupyterhub: true });
  await s1.put('/user/a b', { target: 'http://10.0.1.6:1' });
  await s1.writeActivity(new Map([['/user/mary', 1_700_000_000_000]]));
  await s1.close();
  const text = readFileSync(path, 'utf8');
  assert.match(text, /\[routes\."\/user\/mary"\]\s*\ntarget = "http:\/\/10\.0\.1\.5:12345"\s*\njupyterhub = true/);
  assert.deepEqual(readdirSync(join(path, '..')).filter((f) => f.endsWith('.tmp')), [], 'no temp files left');
  const s2 = fileStore(t, { path, log: silent });
  await s2.start();
  const snap = await s2.snapshot();
  assert.deepEqual([...snap.routes.keys()].sort(), ['/user/a b', '/user/mary']);
  assert.equal((await s2.readActivity()).get('/user/mary'), 1_700_000_000_000);
  await s2.close();
});

/** A started file store holding /a, with its invalid-route reports and watch events collected. */
async function watchedStore(t: TestContext, name: string) {
  const path = join(tempDir(t, 'swy-fs-'), name);
  const invalid: string[] = [];
  const s = fileStore(t, { path, log: silent, onInvalid: (r) => invalid.push(r), debounceMs: 20 });
  await s.start();
  await s.put('/a', { target: 'http://127.0.0.1:1' });
  const events: WatchEvent[] = [];
  s.watch((await s.snapshot()).revision, (e) => events.push(e));
  return { path, s, invalid, events };
}

test('file store: hand edits take effect; a broken edit keeps the last good table and says where', async (t) => {
  const { path, s, invalid, events } = await watchedStore(t, 'routes.toml');

  writeFileSync(path, '[routes."/a"]\ntarget = "http://127.0.0.1:1"\n[routes."/b"]\ntarget = "http://127.0.0.1:2"\n');
  await waitFor(() => events.some((e) => e.type === 'reset' && e.snapshot.routes.has('/b')), 5000, 'hand edit applied');

  writeFileSync(path, '[routes."/a"]\ntarget = "http://127.0.0.1:1"\n[routes."/c"\ntarget = \n');
  await waitFor(() => /line 3/.test(s.health().lastError ?? ''), 5000, 'parse error noticed'); // by its reason: a read between truncate and write finds the file empty
  assert.match(s.health().lastError!, /line 3/);
  assert.equal(s.health().connected, false);
  assert.deepEqual([...(await s.snapshot()).routes.keys()].sort(), ['/a', '/b'], 'last good table kept');

  writeFileSync(path, '[routes."/ok"]\ntarget = "http://127.0.0.1:3"\n[routes."/bad"]\nnottarget = 1\n[routes."/x/../y"]\ntarget = "http://h"\n');
  await waitFor(async () => (await s.snapshot()).routes.has('/ok'), 5000, 'good entries loaded');
  assert.equal(s.health().lastError, undefined);
  assert.deepEqual([...(await s.snapshot()).routes.keys()], ['/ok'], 'bad entries skipped, the rest live');
  assert.ok(invalid.some((r) => /"\/bad" skipped: it needs a string "target"/.test(r)));
  assert.ok(invalid.some((r) => /"\/x\/\.\.\/y" skipped/.test(r)));
  await s.close();
});

for (const ext of ['toml', 'json'] as const) {
  test(`file store (${ext}): a file emptied in place keeps the last good table and says so; an empty routes table removes every route`, async (t) => {
    const { path, s, invalid, events } = await watchedStore(t, `routes.${ext}`);
    // Truncated (a writer that has not written yet), then whitespace only: both refused.
    for (const text of ['', ' \n']) {
      const before = invalid.length;
      writeFileSync(path, text);
      await waitFor(() => invalid.length > before, 5000, `the empty file (${JSON.stringify(text)}) noticed`);
      assert.match(s.health().lastError!, /is empty \(being written\?\)/);
      assert.equal(s.health().connected, false);
      assert.deepEqual([...(await s.snapshot()).routes.keys()], ['/a'], 'last good table kept');
    }
    assert.deepEqual(events.filter((e) => e.type === 'reset'), [], 'no table change');
    // The write completes: taken as usual.
    writeFileSync(path, ext === 'json' ? '{"routes": {"/b": {"target": "http://127.0.0.1:2"}}}' : '[routes."/b"]\ntarget = "http://127.0.0.1:2"\n');
    await waitFor(async () => (await s.snapshot()).routes.has('/b'), 5000, 'the finished write');
    assert.equal(s.health().lastError, undefined);
    // Removing every route by hand: a file that says so.
    writeFileSync(path, ext === 'json' ? '{"routes": {}}' : '[routes]\n');
    await waitFor(async () => (await s.snapshot()).routes.size === 0, 5000, 'an empty routes table');
    assert.equal(s.health().connected, true);
  });
}

test('file store: refuses to start on a broken file instead of overwriting it', async (t) => {
  const path = join(tempDir(t, 'swy-fs-'), 'routes.toml');
  writeFileSync(path, 'this is = = not toml');
  const s = fileStore(t, { path, log: silent });
  await assert.rejects(s.start(), /routes\.toml: does not parse as TOML \(line 1/);
  assert.equal(readFileSync(path, 'utf8'), 'this is = = not toml');
});

test('file store: concurrent writes all land', async (t) => {
  const path = join(tempDir(t, 'swy-fs-'), 'routes.json');
  const s = fileStore(t, { path, log: silent });
  await s.start();
  await Promise.all(Array.from({ length: 50 }, (_, i) => s.put(`/r${i}`, { target: `http://127.0.0.1:${i + 1}` })));
  assert.equal((await s.snapshot()).routes.size, 50);
  assert.equal(Object.keys((JSON.parse(readFileSync(path, 'utf8')) as { routes: object }).routes).length, 50);
  await s.close();
});

test('file store: its own writes in quick succession never come back as a hand edit (no reset)', async (t) => {
  // The watch event of one write's rename can be handled while the next write is in flight: the
  // file then holds the earlier write, which must not be taken for a hand edit (a reset to an
  // older table: a route being added vanishes for a moment, a deleted one comes back).
  const dir = tempDir(t, 'swy-fs-');
  const s = fileStore(t, { path: join(dir, 'routes.toml'), log: silent, debounceMs: 0 });
  await s.start();
  const events: WatchEvent[] = [];
  const un = s.watch((await s.snapshot()).revision, (e) => events.push(e));
  t.after(un);
  let last = 0;
  for (let i = 0; i < 150; i++) {
    last = await s.put(`/r${i % 10}`, { target: `http://127.0.0.1:${1000 + i}` });
    if (i % 3 === 2) last = (await s.delete(`/r${(i + 5) % 10}`)) ?? last;
  }
  await waitFor(() => events.some((e) => e.type === 'changes' && e.revision === last), 5000, 'the last write delivered');
  // Let the watch events of the last renames be handled too: a hand edit afterwards is a barrier.
  writeFileSync(join(dir, 'routes.toml'), '[routes."/hand"]\ntarget = "http://127.0.0.1:9"\n');
  await waitFor(() => events.some((e) => e.type === 'reset'), 5000, 'the hand edit');
  const resets = events.filter((e) => e.type === 'reset');
  assert.equal(resets.length, 1, 'only the hand edit is a reset');
  assert.deepEqual([...(resets[0] as Extract<WatchEvent, { type: 'reset' }>).snapshot.routes.keys()], ['/hand']);
});
