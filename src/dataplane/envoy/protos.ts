// Envoy's v3 API as protobuf types, loaded from the .proto files that ship inside
// @grpc/grpc-js-xds (pinned in package.json): envoy-api, xds/udpa, googleapis and
// protoc-gen-validate. One protobufjs Root serves the ADS server (request/response codecs), the
// translation (encoding resources into Any) and the tests (decoding, validate.rules checks).
//
// Loaded lazily, once per process, and only when the xDS server or `envoy-bootstrap` is used:
// parsing the closure of these files takes a few hundred milliseconds and ~20 MB.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';
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

const FILES = [
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

let root: protobuf.Root | undefined;

/** Directory of the pinned proto tree (node_modules/@grpc/grpc-js-xds/deps). */
export function protoDepsDir(): string {
  const pkg = createRequire(import.meta.url).resolve('@grpc/grpc-js-xds/package.json');
  return join(dirname(pkg), 'deps');
}

export function envoyRoot(): protobuf.Root {
  if (root) return root;
  const deps = protoDepsDir();
  const includes = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(deps, d));
  // google/protobuf/descriptor.proto (for custom options such as validate.rules) ships with protobufjs.
  includes.push(dirname(createRequire(import.meta.url).resolve('protobufjs/package.json')));
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    for (const inc of includes) {
      const p = join(inc, target);
      if (existsSync(p)) return p;
    }
    return target;
  };
  r.loadSync(FILES, { keepCase: true, alternateCommentMode: false });
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
