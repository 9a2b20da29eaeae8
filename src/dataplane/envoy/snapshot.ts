// A snapshot: every resource of one table, encoded once into google.protobuf.Any and shared by
// every connected client. Versions are content hashes per type, so two replicas holding the same
// table serve the same version strings (a client may reconnect to any replica and see no change).

import { createHash } from 'node:crypto';
import protobuf from 'protobufjs';
import type { Route, RoutingTable } from '../../routing/table.js';
import { TYPE, messageType, toAny, type TypeUrl } from './protos.js';
import {
  ROUTE_CONFIG_NAME,
  clusterFor,
  listenerResources,
  planTable,
  routeEntries,
  type EnvoyResources,
  type Resource,
  type TranslateOptions,
  type Untranslatable,
} from './translate.js';

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
  return typeSnapshot(list.map((r) => {
    const any = toAny(typeUrl, r);
    return { name: nameOf(r), any: { type_url: any.type_url, value: any.value } };
  }));
}

/** Resources in their fixed order -> the type's snapshot, versioned by a hash of names and bytes. */
function typeSnapshot(list: readonly EncodedResource[]): TypeSnapshot {
  const resources = new Map<string, EncodedResource>();
  const h = createHash('sha256');
  for (const r of list) {
    resources.set(r.name, r);
    h.update(r.name).update('\0').update(r.any.value).update('\0');
  }
  return { version: h.digest('hex').slice(0, 16), resources };
}

/**
 * Builds snapshots table after table, re-encoding only what changed: clusters and endpoints are
 * encoded once per target origin, route entries once per Route object (tables share unchanged
 * Route objects), and the one RouteConfiguration is assembled from those bytes. The result
 * decodes to exactly what buildSnapshot(translateTable(...)) gives (tested).
 */
export function createSnapshotBuilder(o: TranslateOptions): (table: RoutingTable) => Snapshot {
  const RouteMsg = messageType('envoy.config.route.v3.Route');
  const entryCache = new WeakMap<Route, Uint8Array[]>();
  let clusterCache = new Map<string, { cluster: EncodedResource; endpoint: EncodedResource | undefined }>();
  let listenerCache: { key: string; list: EncodedResource[] } | undefined;
  const enc = (type: TypeUrl, name: string, r: Resource): EncodedResource => ({ name, any: toAny(type, r) });

  return (table) => {
    const plan = planTable(table, o);
    const next = new Map<string, { cluster: EncodedResource; endpoint: EncodedResource | undefined }>();
    for (const [name, route] of plan.clusterOf) {
      let c = clusterCache.get(name);
      if (!c) {
        const r = clusterFor(name, route, o);
        c = { cluster: enc(TYPE.cluster, name, r.cluster), endpoint: r.endpoint ? enc(TYPE.endpoint, name, r.endpoint) : undefined };
      }
      next.set(name, c);
    }
    clusterCache = next;
    const lkey = plan.hostKeys.join('\0');
    if (!listenerCache || listenerCache.key !== lkey) {
      listenerCache = { key: lkey, list: listenerResources(plan, o).map((l) => enc(TYPE.listener, String(l.name), l)) };
    }
    // RouteConfiguration { name = 1; repeated VirtualHost virtual_hosts = 2 }
    // VirtualHost { name = 1; repeated string domains = 2; repeated Route routes = 3 }
    const rc = protobuf.Writer.create();
    rc.uint32((1 << 3) | 2).string(ROUTE_CONFIG_NAME);
    for (const vh of plan.virtualHosts) {
      const w = protobuf.Writer.create();
      w.uint32((1 << 3) | 2).string(vh.name);
      for (const d of vh.domains) w.uint32((2 << 3) | 2).string(d);
      for (const e of vh.routes) {
        let bytes = entryCache.get(e.route);
        if (!bytes) {
          bytes = routeEntries(e, o).map((r) => RouteMsg.encode(RouteMsg.fromObject(r)).finish());
          entryCache.set(e.route, bytes);
        }
        for (const b of bytes) w.uint32((3 << 3) | 2).bytes(b);
      }
      rc.uint32((2 << 3) | 2).bytes(w.finish());
    }
    const routeConfig: EncodedResource = { name: ROUTE_CONFIG_NAME, any: { type_url: TYPE.route, value: Buffer.from(rc.finish()) } };
    const clusters = [...next.values()];
    return {
      types: new Map<TypeUrl, TypeSnapshot>([
        [TYPE.cluster, typeSnapshot(clusters.map((c) => c.cluster))],
        [TYPE.endpoint, typeSnapshot(clusters.flatMap((c) => (c.endpoint ? [c.endpoint] : [])))],
        [TYPE.listener, typeSnapshot(listenerCache.list)],
        [TYPE.route, typeSnapshot([routeConfig])],
      ]),
      referencedClusters: new Set(next.keys()),
      untranslatable: plan.untranslatable,
      tableVersion: table.version,
    };
  };
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

