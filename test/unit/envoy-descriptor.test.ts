// The committed Envoy descriptor (assets/envoy/envoy-v3.json) against its source: the .proto files
// of the pinned @grpc/grpc-js-xds, parsed by scripts/gen-envoy-descriptor.mjs. The runtime loads
// only the descriptor, so these tests are what keeps it honest: it must be byte for byte what the
// generator makes from the installed packages, and the Root it loads to must carry everything the
// .proto files say (fields, validate.rules, deprecated enum values) — not only what toJSON keeps.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type protobuf from 'protobufjs';
import { envoyRoot } from '../../src/dataplane/envoy/protos.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const SCRIPT = join(REPO, 'scripts/gen-envoy-descriptor.mjs');
const DESCRIPTOR = join(REPO, 'assets/envoy/envoy-v3.json');
const PROTOS_JS = join(REPO, 'dist/src/dataplane/envoy/protos.js');

interface Generator {
  loadFromProtos(): protobuf.Root;
}

const runCheck = (out?: string) =>
  spawnSync(process.execPath, [SCRIPT, '--check', ...(out ? ['--out', out] : [])], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });

test('the committed descriptor is exactly what the generator makes from the pinned packages', () => {
  const r = runCheck();
  assert.equal(r.status, 0, `${r.stderr}`);
});

test('--check fails, naming the fix, when the descriptor drifts from the .proto files', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'swy-desc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cases: { desc: string; edit: (text: string) => string }[] = [
    { desc: 'a validate rule changed', edit: (s) => s.replace('"(validate.rules).string.min_len": 1', '"(validate.rules).string.min_len": 2') },
    { desc: 'a field number changed', edit: (s) => s.replace(/"id": 1\b/, '"id": 99') },
    { desc: 'another source version', edit: (s) => s.replace(/"@grpc\/grpc-js-xds": "[^"]+"/, '"@grpc/grpc-js-xds": "0.0.0"') },
  ];
  for (const c of cases) {
    const copy = join(dir, 'envoy-v3.json');
    copyFileSync(DESCRIPTOR, copy);
    const edited = c.edit(readFileSync(copy, 'utf8'));
    assert.notEqual(edited, readFileSync(DESCRIPTOR, 'utf8'), `${c.desc}: the edit applies`);
    writeFileSync(copy, edited);
    const r = runCheck(copy);
    assert.equal(r.status, 1, c.desc);
    assert.match(r.stderr, /npm run gen:envoy-descriptor/, c.desc);
  }
});

test('the Root loaded from the descriptor carries everything the .proto files declare', async () => {
  const gen = (await import(new URL('../../../scripts/gen-envoy-descriptor.mjs', import.meta.url).href)) as Generator;
  const parsed = gen.loadFromProtos();
  const loaded = envoyRoot();
  assert.equal(JSON.stringify(loaded.toJSON()), JSON.stringify(parsed.toJSON()), 'same types, fields, options');

  // What toJSON does not cover, compared object by object (written apart from the generator's own
  // side table, so a gap in both would still show here).
  const j = (v: unknown) => JSON.stringify(v ?? null);
  let types = 0;
  let withRules = 0;
  let deprecatedValues = 0;
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      const other = loaded.lookup(obj.fullName);
      assert.ok(other, `${obj.fullName} present`);
      assert.equal(j(other.parsedOptions), j(obj.parsedOptions), `${obj.fullName} parsedOptions`);
      if ('fieldsArray' in obj) {
        types++;
        const t = obj as protobuf.Type;
        const u = other as protobuf.Type;
        for (const f of t.fieldsArray) {
          const g = u.fields[f.name];
          assert.ok(g, `${f.fullName} present`);
          assert.equal(j(g.parsedOptions), j(f.parsedOptions), `${f.fullName} parsedOptions`);
          assert.equal(g.resolvedType?.fullName, f.resolvedType?.fullName, `${f.fullName} resolves to the same type`);
          if (j(f.parsedOptions).includes('(validate.rules)')) withRules++;
        }
        for (const o of t.oneofsArray) {
          const p = u.oneofs[o.name];
          assert.ok(p, `${o.fullName} present`);
          assert.equal(j(p.parsedOptions), j(o.parsedOptions), `${o.fullName} parsedOptions`);
        }
      }
      if ('values' in obj && !('fieldsArray' in obj)) {
        const e = obj as protobuf.Enum;
        assert.equal(j((other as protobuf.Enum).valuesOptions), j(e.valuesOptions), `${e.fullName} valuesOptions`);
        deprecatedValues += Object.values(e.valuesOptions ?? {}).filter((v) => v.deprecated).length;
      }
      if ('nestedArray' in obj) visit(obj as protobuf.Namespace);
    }
  };
  visit(parsed);
  // The comparison saw the closure, not an empty tree.
  assert.ok(types > 400, `${types} message types`);
  assert.ok(withRules > 300, `${withRules} fields with validate.rules`);
  assert.ok(deprecatedValues > 0, `${deprecatedValues} deprecated enum values`);
});

test('at run time the protos come from the descriptor: no .proto parser, nothing from @grpc/grpc-js-xds', () => {
  const script = `
    import { createRequire } from 'node:module';
    const { envoyRoot, messageType } = await import(${JSON.stringify(PROTOS_JS)});
    envoyRoot();
    messageType('envoy.service.discovery.v3.DiscoveryRequest');
    const loaded = Object.keys(createRequire(${JSON.stringify(PROTOS_JS)}).cache);
    process.stdout.write(JSON.stringify(loaded.filter((p) => /grpc-js-xds|[\\\\/]protobufjs[\\\\/]src[\\\\/](parse|tokenize)\\.js$/.test(p))));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), []);
});
