// A data-plane worker loads no store module (and so neither etcd3 nor smol-toml), no API and no
// composition root: checked on the compiled import graph of what a worker process runs
// (dist/src/main.js, then dist/src/worker.js; a worker thread: dist/src/worker-thread.js). Type-only imports are erased by tsc and do not
// appear in the compiled files; dynamic import() is not followed (none is on the worker's path).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');
const STATIC_IMPORT = /(?:^|\n)\s*(?:import|export)\s+(?:[^;'"]*?\sfrom\s*)?['"]([^'"]+)['"]/g;

/** Every module statically reachable from `entries`: local files (relative to dist/src) and packages. */
function closure(entries: string[]): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const todo = entries.map((e) => resolve(SRC, e));
  while (todo.length > 0) {
    const file = todo.pop()!;
    const rel = relative(SRC, file);
    if (files.has(rel)) continue;
    files.add(rel);
    for (const m of readFileSync(file, 'utf8').matchAll(STATIC_IMPORT)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) todo.push(resolve(dirname(file), spec));
      else if (!spec.startsWith('node:')) packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  }
  return { files, packages };
}

for (const [what, entry] of [['process', 'main.js'], ['thread', 'worker-thread.js']] as const) test(`a worker ${what} loads no store module, no etcd3/smol-toml, no API and no app`, () => {
  const { files, packages } = closure([entry, 'worker.js']);
  assert.ok(files.has('control/route-watcher.js'), 'the worker runs the shared route watcher');
  assert.ok(files.has('control/activity.js'), 'and the shared activity batcher');
  const forbidden = [...files].filter((f) => f.startsWith('store/') || f.startsWith('api/') || f === 'app.js' || f.startsWith('dataplane/envoy/'));
  assert.deepEqual(forbidden, [], 'modules a worker must not load');
  for (const p of ['etcd3', 'smol-toml', '@grpc/grpc-js', '@grpc/grpc-js-xds', 'protobufjs']) assert.equal(packages.has(p), false, `${p} loaded by a worker`);
});

test('the primary reaches the stores (the walk sees what it should), but loads the file and etcd stores only when used', () => {
  const { files, packages } = closure(['main.js', 'app.js']);
  assert.ok(files.has('store/create-store.js') && files.has('store/memory-store.js'));
  assert.equal(files.has('store/file-store.js'), false, 'file-store.js is imported by createStore only for a file: store');
  assert.equal(files.has('store/etcd-store.js'), false, 'etcd-store.js is imported by createStore only for an etcd:// store');
  assert.equal(packages.has('smol-toml'), false);
  // What createStore imports for those stores does reach them.
  const file = closure(['store/file-store.js']);
  assert.ok(file.packages.has('smol-toml'));
});

/**
 * The CommonJS package files a fresh process holds after importing `entries` (dist/src paths),
 * relative to node_modules: what the static walk above cannot see (packages loaded through
 * createRequire, and the packages' own require()s).
 */
function packagesLoadedBy(entries: string[]): string[] {
  const script = [
    "import { createRequire } from 'node:module';",
    ...entries.map((e) => `await import(${JSON.stringify(pathToFileURL(resolve(SRC, e)).href)});`),
    'const cache = createRequire(import.meta.url).cache;',
    "process.stdout.write(JSON.stringify(Object.keys(cache).filter((k) => k.includes('/node_modules/')).map((k) => k.slice(k.lastIndexOf('/node_modules/') + 14))));",
  ].join('\n');
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  return JSON.parse(out) as string[];
}

test('a worker loads only the prom-client parts it uses, and no undici until a request needs it', () => {
  const loaded = packagesLoadedBy(['worker.js', 'dataplane/proxy/proxy-server.js']);
  assert.ok(loaded.includes('prom-client/lib/histogram.js'), 'a data plane counts through prom-client');
  const unused = loaded.filter((f) => f.startsWith('undici/') || f === 'prom-client/index.js' || f === 'prom-client/lib/pushgateway.js' || f.startsWith('@opentelemetry/'));
  assert.deepEqual(unused, [], 'package modules a worker does not load at start (undici: on the first pool, upstream-agents.ts)');
});

test('creating the upstream agents loads no undici; the first dispatcher loads its Pool and connector only', () => {
  const script = [
    "import { createRequire } from 'node:module';",
    `const { createUpstreamAgents } = await import(${JSON.stringify(pathToFileURL(resolve(SRC, 'dataplane/proxy/upstream-agents.js')).href)});`,
    'const cache = createRequire(import.meta.url).cache;',
    "const undici = () => Object.keys(cache).filter((k) => k.includes('/node_modules/undici/')).map((k) => k.slice(k.lastIndexOf('/node_modules/undici/') + 21));",
    'const agents = createUpstreamAgents({ insecure: false, clientSsl: undefined });',
    'agents.setConnectTimeout(5000);',
    'const before = undici();',
    "agents.dispatcher({ poolKey: 'http://127.0.0.1:1' });",
    'const after = undici();',
    'agents.destroy();',
    'process.stdout.write(JSON.stringify({ before, after }));',
  ].join('\n');
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  const { before, after } = JSON.parse(out) as { before: string[]; after: string[] };
  assert.deepEqual(before, []);
  assert.ok(after.includes('lib/dispatcher/pool.js') && after.includes('lib/core/connect.js'), after.join(' '));
  assert.deepEqual(after.filter((f) => f === 'index.js' || f.startsWith('lib/web/') || f.startsWith('lib/mock/')), []);
});

test('a primary with workers loads no undici (the proxy module is imported only without workers)', () => {
  const loaded = packagesLoadedBy(['app.js']);
  assert.deepEqual(loaded.filter((f) => f.startsWith('undici/')), []);
  assert.ok(loaded.includes('prom-client/lib/registry.js'), 'the walk sees the packages the primary does load');
  assert.deepEqual(loaded.filter((f) => f === 'prom-client/index.js' || f.startsWith('@opentelemetry/')), []);
});

/** The Node built-in modules a fresh process has loaded after importing `entries` (dist/src paths). */
function builtinsLoadedBy(entries: string[]): string[] {
  const script = [
    ...entries.map((e) => `await import(${JSON.stringify(pathToFileURL(resolve(SRC, e)).href)});`),
    "process.stdout.write(JSON.stringify(process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13))));",
  ].join('\n');
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  return JSON.parse(out) as string[];
}

// node-http.ts: an ESM import of node:http would load Node's bundled undici (its lazy WebSocket
// getters, read by the ESM facade: ~20-30 ms per thread on Node 22+), and node:https/node:tls cost
// ~20 ms more; a plain-HTTP proxy and API need neither at start.
for (const [what, entries] of [
  // (main.js and worker-thread.js run when imported: what they import instead.)
  ['a data-plane worker', ['dataplane/proxy/worker-channel.js', 'observability/logger.js', 'worker.js', 'dataplane/proxy/proxy-server.js']],
  ['the primary', ['config/load.js', 'dataplane/proxy/prefork.js', 'app.js', 'dataplane/proxy/worker-pool.js']],
  ['the primary with --workers 1', ['config/load.js', 'app.js', 'dataplane/proxy/proxy-server.js']],
] as const) {
  test(`${what} loads node:http without Node's bundled undici, and no node:https or node:tls at start`, () => {
    const loaded = builtinsLoadedBy([...entries]);
    assert.ok(loaded.includes('http') && loaded.includes('net'), 'the walk sees the built-ins that are loaded');
    assert.deepEqual(loaded.filter((m) => m.startsWith('internal/deps/undici') || m === 'https' || m === 'tls' || m === 'http2'), []);
  });
}
