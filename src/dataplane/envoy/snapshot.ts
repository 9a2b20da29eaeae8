// A snapshot: every resource of one table, encoded once into google.protobuf.Any and shared by
// every connected client. Versions are content hashes per type, so two replicas holding the same
// table serve the same version strings (a client may reconnect to any replica and see no change).

import { createHash } from 'node:crypto';
import { PUSH_ORDER, TYPE, toAny, type TypeUrl } from './protos.js';
import type { EnvoyResources, Resource, Untranslatable } from './translate.js';

export interface EncodedResource {
  readonly name: string;
  readonly any: { readonly type_url: string; readonly value: Buffer };
}

export interface TypeSnapshot {
  readonly version: string;
  readonly resources: ReadonlyMap<string, EncodedResource>;
}

export interface Snapshot {
  readonly types: ReadonlyMap<TypeUrl, TypeSnapshot>;
  /** Clusters the route configuration references (make-before-break bookkeeping). */
  readonly referencedClusters: ReadonlySet<string>;
  readonly untranslatable: readonly Untranslatable[];
  /** The routing table version it was built from (local, for logs and status only). */
  readonly tableVersion: number;
}

function encodeType(typeUrl: TypeUrl, list: readonly Resource[], nameOf: (r: Resource) => string): TypeSnapshot {
  const resources = new Map<string, EncodedResource>();
  const h = createHash('sha256');
  for (const r of list) {
    const name = nameOf(r);
    const any = toAny(typeUrl, r);
    resources.set(name, { name, any: { type_url: any.type_url, value: any.value } });
    h.update(name).update('\0').update(any.value).update('\0');
  }
  return { version: h.digest('hex').slice(0, 16), resources };
}

export function buildSnapshot(res: EnvoyResources, tableVersion: number): Snapshot {
  const byName = (r: Resource): string => String(r.name);
  const types = new Map<TypeUrl, TypeSnapshot>([
    [TYPE.cluster, encodeType(TYPE.cluster, res.clusters, byName)],
    [TYPE.endpoint, encodeType(TYPE.endpoint, res.endpoints, (r) => String(r.cluster_name))],
    [TYPE.listener, encodeType(TYPE.listener, res.listeners, byName)],
    [TYPE.route, encodeType(TYPE.route, res.routes, byName)],
  ]);
  return {
    types,
    referencedClusters: new Set(res.clusters.map(byName)),
    untranslatable: res.untranslatable,
    tableVersion,
  };
}

export { PUSH_ORDER };
