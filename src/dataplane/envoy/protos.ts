// Envoy's v3 API as protobuf types. One protobufjs Root serves the ADS server (request/response
// codecs), the translation (encoding resources into Any), `switchyard envoy-bootstrap` and the
// tests (decoding, validate.rules checks).
//
// The Root comes from assets/envoy/envoy-v3.json, a JSON descriptor generated from the .proto files
// of the pinned @grpc/grpc-js-xds (a devDependency) by scripts/gen-envoy-descriptor.mjs and checked
// against them by test/unit/envoy-descriptor.test.ts. So nothing parses .proto at run time and the
// production install does not carry grpc-js-xds's dependency tree. protobufjs's light build (no
// parser) is enough for Root.fromJSON.
//
// Loaded lazily, once per process, and only when the xDS server or `envoy-bootstrap` is used.

import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs/light.js';
import { ErrorCode, SwitchyardError } from '../../errors.js';

/** Type URLs of the resources this control plane serves, in make-before-break push order. */
export const TYPE = {
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
} as const;
export type TypeUrl = (typeof TYPE)[keyof typeof TYPE];
export const PUSH_ORDER: readonly TypeUrl[] = [TYPE.cluster, TYPE.endpoint, TYPE.listener, TYPE.route];
/** Short names used in logs, metrics labels and status. */
export const SHORT: Record<TypeUrl, string> = { [TYPE.cluster]: 'cds', [TYPE.endpoint]: 'eds', [TYPE.listener]: 'lds', [TYPE.route]: 'rds' };

/** dist/src/dataplane/envoy/protos.js -> assets/envoy/envoy-v3.json (shipped in the package). */
const DESCRIPTOR = new URL('../../../../assets/envoy/envoy-v3.json', import.meta.url);

interface Descriptor {
  readonly root: protobuf.INamespace;
  /** What protobufjs's toJSON drops: "<kind> <full name>" -> parsedOptions / Enum.valuesOptions. */
  readonly sideTable: Record<string, { parsedOptions?: Record<string, unknown>[]; valuesOptions?: Record<string, Record<string, unknown>> }>;
}

/** Same walk as scripts/gen-envoy-descriptor.mjs `walk` (which writes the side table). */
function walk(ns: protobuf.NamespaceBase, visit: (obj: protobuf.ReflectionObject) => void): void {
  for (const obj of ns.nestedArray) {
    visit(obj);
    if (obj instanceof protobuf.Type) {
      for (const f of obj.fieldsArray) if (!f.declaringField) visit(f);
      for (const o of obj.oneofsArray) visit(o);
    }
    if (obj instanceof protobuf.Namespace) walk(obj, visit);
  }
}

let root: protobuf.Root | undefined;

export function envoyRoot(): protobuf.Root {
  if (root) return root;
  const d = JSON.parse(readFileSync(DESCRIPTOR, 'utf8')) as Descriptor;
  const r = protobuf.Root.fromJSON(d.root);
  walk(r, (obj) => {
    const e = d.sideTable[`${(obj.constructor as unknown as { className: string }).className} ${obj.fullName}`];
    // (protobufjs types parsedOptions as an object; at run time it is an array of {name: value}.)
    if (e?.parsedOptions) (obj as { parsedOptions?: unknown }).parsedOptions = e.parsedOptions;
    if (e?.valuesOptions && obj instanceof protobuf.Enum) obj.valuesOptions = e.valuesOptions as typeof obj.valuesOptions;
  });
  r.resolveAll();
  root = r;
  return r;
}

export function messageType(name: string): protobuf.Type {
  return envoyRoot().lookupType(name.replace(/^type\.googleapis\.com\//, ''));
}

/** Encode a plain object (proto field names, snake_case) as a google.protobuf.Any. */
export function toAny(typeUrl: string, value: Record<string, unknown>): { type_url: string; value: Buffer } {
  const t = messageType(typeUrl);
  const msg = t.fromObject(value);
  const err = t.verify(msg);
  // A resource that fails its own schema is a translation bug, never bad input.
  if (err) throw new SwitchyardError(ErrorCode.INTERNAL, `${t.fullName}: ${err}`, { details: { typeUrl } });
  return { type_url: typeUrl, value: Buffer.from(t.encode(msg).finish()) };
}

/** Options for turning decoded messages into plain objects (tests, status, logs). */
export const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, defaults: false, oneofs: false };
