#!/usr/bin/env node
// Generates assets/envoy/envoy-v3.json: the Envoy v3 API types the xDS control plane and
// `switchyard envoy-bootstrap` use, as a protobufjs JSON descriptor, so that the runtime loads it
// with Root.fromJSON and neither parses .proto files nor needs @grpc/grpc-js-xds (a
// devDependency: it bundles the pinned .proto trees and is the tests' real xDS client).
//
// Source: the .proto files inside the pinned @grpc/grpc-js-xds (deps/envoy-api, xds (udpa),
// googleapis, protoc-gen-validate), parsed with the pinned protobufjs. The file is committed (so a
// plain `tsc` build and `npm pack` need nothing else) and test/unit/envoy-descriptor.test.ts fails
// when it drifts from what this script makes from the installed packages. After upgrading either
// package: `npm run gen:envoy-descriptor` and commit the result.
//
// protobufjs's toJSON drops two things Root.fromJSON cannot take back: parsedOptions (custom
// options such as (validate.rules) as structured values, on fields, oneofs, messages, enums) and
// Enum.valuesOptions (e.g. deprecated enum values). They go in a side table, keyed by
// "<kind> <full name>", that src/dataplane/envoy/protos.ts puts back after loading.
//
//   node scripts/gen-envoy-descriptor.mjs            write the descriptor
//   node scripts/gen-envoy-descriptor.mjs --check    exit 1 if the committed file differs
//   --out FILE                                       another file than assets/envoy/envoy-v3.json

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { URL, fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

export const DEFAULT_OUT = fileURLToPath(new URL('../assets/envoy/envoy-v3.json', import.meta.url));

/** The roots of the closure: every type the control plane encodes, decodes or validates. */
export const FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/cluster/v3/cds.proto',
  'envoy/service/endpoint/v3/eds.proto',
  'envoy/service/listener/v3/lds.proto',
  'envoy/service/route/v3/rds.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
];

const require = createRequire(import.meta.url);
const pkgDir = (name) => dirname(require.resolve(`${name}/package.json`));
const versionOf = (name) => JSON.parse(readFileSync(join(pkgDir(name), 'package.json'), 'utf8')).version;

/** Parse FILES (and their imports) from the pinned proto trees. */
export function loadFromProtos() {
  const deps = join(pkgDir('@grpc/grpc-js-xds'), 'deps');
  const includes = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(deps, d));
  // google/protobuf/*.proto (descriptor.proto for custom options, the well-known types) ship with protobufjs.
  includes.push(pkgDir('protobufjs'));
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const inc of includes) {
      const p = join(inc, target);
      if (existsSync(p)) return p;
    }
    return target;
  };
  root.loadSync(FILES, { keepCase: true, alternateCommentMode: false });
  root.resolveAll();
  return root;
}

/**
 * Every reflection object under `ns`, depth first in declaration order: nested namespaces, types,
 * enums and services, and each type's own fields and oneofs (not extension fields copied into the
 * extended type at resolve time: they are visited where they are declared).
 * protos.ts walks the loaded Root the same way; keep the two in step.
 */
export function walk(ns, visit) {
  for (const obj of ns.nestedArray) {
    visit(obj);
    if (obj instanceof protobuf.Type) {
      for (const f of obj.fieldsArray) if (!f.declaringField) visit(f);
      for (const o of obj.oneofsArray) visit(o);
    }
    if (obj.nestedArray) walk(obj, visit);
  }
}

/** What toJSON/fromJSON lose: "<kind> <full name>" -> { parsedOptions?, valuesOptions? }. */
export function sideTable(root) {
  const side = {};
  walk(root, (obj) => {
    const e = {};
    if (obj.parsedOptions && obj.parsedOptions.length > 0 && !(obj instanceof protobuf.Method)) e.parsedOptions = obj.parsedOptions;
    if (obj instanceof protobuf.Enum && obj.valuesOptions) e.valuesOptions = obj.valuesOptions;
    if (Object.keys(e).length > 0) side[`${obj.constructor.className} ${obj.fullName}`] = e;
  });
  return side;
}

/** The descriptor file's text (deterministic: same packages, same bytes). */
export function render(root = loadFromProtos()) {
  const descriptor = {
    generated: 'by scripts/gen-envoy-descriptor.mjs; do not edit (npm run gen:envoy-descriptor)',
    source: { '@grpc/grpc-js-xds': versionOf('@grpc/grpc-js-xds'), protobufjs: versionOf('protobufjs') },
    files: FILES,
    sideTable: sideTable(root),
    root: root.toJSON(),
  };
  return JSON.stringify(descriptor, null, 1) + '\n';
}

function main(argv) {
  const check = argv.includes('--check');
  const i = argv.indexOf('--out');
  const out = i >= 0 ? argv[i + 1] : DEFAULT_OUT;
  const text = render();
  if (!check) {
    writeFileSync(out, text);
    return 0;
  }
  const current = existsSync(out) ? readFileSync(out, 'utf8') : '';
  if (current === text) return 0;
  process.stderr.write(
    `${out} differs from what scripts/gen-envoy-descriptor.mjs makes from @grpc/grpc-js-xds@${versionOf('@grpc/grpc-js-xds')} ` +
      `and protobufjs@${versionOf('protobufjs')}: run \`npm run gen:envoy-descriptor\` and commit the result\n`,
  );
  return 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = main(process.argv.slice(2));
