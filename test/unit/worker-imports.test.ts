// A data-plane worker loads no store module (and so neither etcd3 nor smol-toml), no API and no
// composition root: checked on the compiled import graph of what a worker process runs
// (dist/src/main.js, then dist/src/worker.js). Type-only imports are erased by tsc and do not
// appear in the compiled files; dynamic import() is not followed (none is on the worker's path).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

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

test('a worker process loads no store module, no etcd3/smol-toml, no API and no app', () => {
  const { files, packages } = closure(['main.js', 'worker.js']);
  assert.ok(files.has('control/route-watcher.js'), 'the worker runs the shared route watcher');
  assert.ok(files.has('control/activity.js'), 'and the shared activity batcher');
  const forbidden = [...files].filter((f) => f.startsWith('store/') || f.startsWith('api/') || f === 'app.js' || f.startsWith('dataplane/envoy/'));
  assert.deepEqual(forbidden, [], 'modules a worker must not load');
  for (const p of ['etcd3', 'smol-toml', '@grpc/grpc-js', '@grpc/grpc-js-xds', 'protobufjs']) assert.equal(packages.has(p), false, `${p} loaded by a worker`);
});

test('the primary does reach the stores (the walk sees what it should)', () => {
  const { files, packages } = closure(['main.js', 'app.js']);
  assert.ok(files.has('store/create-store.js') && files.has('store/file-store.js'));
  assert.ok(packages.has('smol-toml'));
});
