// Pure translation of a routing table into Envoy v3 resources (plain objects with proto field
// names; encoding into Any happens in snapshot.ts). No I/O, no clock: the same table and options
// always give the same resources, which is what lets every replica serve the same version.
//
// Mapping (CHP semantics -> Envoy):
//  - A route key matches whole segments: "/user/mary" matches "/user/mary" and "/user/mary/..."
//    but not "/user/maryann". Envoy gets two route entries per key, `path: P` and `prefix: P/`
//    (supported by Envoy and by proxyless gRPC alike), ordered deepest key first, so first match
//    is longest match. The key "/" is `prefix: /`.
//  - One virtual host per routing host (--host-routing: the first key segment), domains
//    [host, host:*], and a "*" default virtual host for everything else.
//  - The path sent upstream follows CHP's --prepend-path / --include-prefix exactly, through
//    `prefix_rewrite` only where it changes the path.
//  - A Cluster per distinct target origin: EDS (with a ClusterLoadAssignment) for IP targets,
//    LOGICAL_DNS for host names; https targets get an UpstreamTlsContext with SNI and CA check.
//  - Request paths are read as Switchyard's own proxy reads them (HCM_PATH_RULES): dot segments
//    resolved, "//" not merged, %2F kept inside its segment.
//  - Targets Envoy cannot express are reported and left out (the rest of the snapshot stands):
//    http+unix sockets (a path on the control plane's host means nothing to a remote Envoy) and
//    targets with a query string (CHP appends it to every request; Envoy cannot add one).

import { isIP } from 'node:net';
import type { Route, RoutingTable } from '../../routing/table.js';
import { pathSegments } from '../../routing/route-path.js';

export const ROUTE_CONFIG_NAME = 'switchyard';
export const SOCKET_LISTENER_NAME = 'switchyard_http';

export interface TranslateOptions {
  /** CHP --prepend-path (default true). */
  readonly prependPath: boolean;
  /** CHP --include-prefix (default true). */
  readonly includePrefix: boolean;
  readonly hostRouting: boolean;
  /** Where Envoy's socket listener binds. */
  readonly listenerAddress: string;
  readonly listenerPort: number;
  /** api_listener names for proxyless gRPC (`xds:///<name>`); every routing host gets one too. */
  readonly grpcListenerNames: readonly string[];
  /** CA bundle path on the Envoy host, for https targets. */
  readonly upstreamCaFile: string;
  /** CHP --proxy-timeout in ms: Envoy's per-route idle timeout. Unset: none. */
  readonly proxyTimeoutMs?: number | undefined;
  /** CHP --timeout in ms: Envoy's stream idle timeout. Unset: none (websockets may idle). */
  readonly streamIdleTimeoutMs?: number | undefined;
  /** Access log path on the Envoy host ('' for none). */
  readonly accessLogPath: string;
}

export interface Untranslatable {
  readonly path: string;
  readonly target: string;
  readonly reason: string;
}

/** A resource as a plain object in proto field names. */
export type Resource = Record<string, unknown> & { readonly name?: string; readonly cluster_name?: string };

export interface EnvoyResources {
  readonly clusters: Resource[];
  readonly endpoints: Resource[];
  readonly listeners: Resource[];
  readonly routes: Resource[];
  readonly untranslatable: Untranslatable[];
}

const ANY = (type: string, value: Record<string, unknown>): Record<string, unknown> => ({ '@type': `type.googleapis.com/${type}`, ...value });
const ADS_SOURCE = { ads: {}, resource_api_version: 'V3' };
const HCM_TYPE = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
// Envoy access log lines as JSON with the same facts Switchyard's own access log records.
const ACCESS_LOG_FIELDS = {
  fields: Object.fromEntries(
    Object.entries({
      time: '%START_TIME%',
      method: '%REQ(:METHOD)%',
      path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
      host: '%REQ(:AUTHORITY)%',
      route: '%ROUTE_NAME%',
      upstream: '%UPSTREAM_HOST%',
      cluster: '%UPSTREAM_CLUSTER%',
      status: '%RESPONSE_CODE%',
      flags: '%RESPONSE_FLAGS%',
      bytes_received: '%BYTES_RECEIVED%',
      bytes_sent: '%BYTES_SENT%',
      duration_ms: '%DURATION%',
      client: '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%',
    }).map(([k, v]) => [k, { string_value: v }]),
  ),
};
/**
 * The socket listener's path handling (docs/envoy.md, "Path normalisation"). Field names and enum
 * values as in Envoy's http_connection_manager.proto (v3).
 */
export const HCM_PATH_RULES = {
  normalize_path: { value: true },
  merge_slashes: false,
  path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
} as const;
const duration = (ms: number): Record<string, number> => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });

/** Percent-encode a decoded key segment the way clients send it on the wire (RFC 3986 pchar). */
function encodeSegment(seg: string): string {
  return encodeURIComponent(seg).replace(/%(21|24|26|27|28|29|2A|2B|2C|3B|3D|3A|40)/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
}

function joinPath(base: string, rest: string): string {
  if (rest === '') return base;
  if (base.endsWith('/')) return rest.startsWith('/') ? base + rest.slice(1) : base + rest;
  return rest.startsWith('/') ? base + rest : `${base}/${rest}`;
}

function clusterName(route: Route): string {
  const u = route.upstream;
  return `${u.protocol.slice(0, -1)}_${u.hostname}_${u.port}`;
}

function why(route: Route): string | undefined {
  if (route.upstream.socketPath !== undefined) return 'unix-socket targets are local to the control plane: Envoy cannot reach them';
  if (route.upstream.search !== '') return 'a target with a query string cannot be expressed in Envoy (it would append the query to every request)';
  return undefined;
}

interface VhostRoutes {
  readonly host: string | undefined;
  readonly entries: { depth: number; path: string; route: Route }[];
}

/** Virtual hosts in their final order, each with its routes in match order (deepest first). */
export interface RoutePlan {
  readonly virtualHosts: { name: string; domains: string[]; routes: { path: string; route: Route }[] }[];
  /** Cluster name -> a route that uses it (for the target's origin), in name order. */
  readonly clusterOf: Map<string, Route>;
  readonly hostKeys: string[];
  readonly untranslatable: Untranslatable[];
}

export function planTable(table: RoutingTable, o: Pick<TranslateOptions, 'hostRouting'>): RoutePlan {
  const untranslatable: Untranslatable[] = [];
  const vhosts = new Map<string, VhostRoutes>();
  const clusterOf = new Map<string, Route>();
  for (const route of table.routes()) {
    const reason = why(route);
    if (reason) {
      untranslatable.push({ path: route.path, target: route.upstream.target, reason });
      continue;
    }
    const segs = pathSegments(route.path);
    let host: string | undefined;
    let pathSegs = segs;
    if (o.hostRouting && segs.length > 0) {
      host = segs[0]!.toLowerCase();
      pathSegs = segs.slice(1);
    }
    const key = host ?? '*';
    let vh = vhosts.get(key);
    if (!vh) vhosts.set(key, (vh = { host, entries: [] }));
    vh.entries.push({ depth: pathSegs.length, path: '/' + pathSegs.map(encodeSegment).join('/'), route });
    const cn = clusterName(route);
    if (!clusterOf.has(cn)) clusterOf.set(cn, route);
  }
  // Named hosts first (sorted), "*" last: Envoy picks the most specific domain anyway, but a
  // stable order keeps the encoding, and so the version, deterministic.
  const hostKeys = [...vhosts.keys()].filter((k) => k !== '*').sort();
  const virtualHosts = [...hostKeys, '*'].map((k) => {
    const vh = vhosts.get(k);
    const entries = vh ? [...vh.entries].sort((a, b) => b.depth - a.depth || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)) : [];
    return { name: k === '*' ? 'default' : `host:${k}`, domains: k === '*' ? ['*'] : [k, `${k}:*`], routes: entries };
  });
  const sorted = new Map([...clusterOf.keys()].sort().map((n) => [n, clusterOf.get(n)!] as const));
  return { virtualHosts, clusterOf: sorted, hostKeys, untranslatable };
}

/** The Envoy route entries (RouteConfiguration.virtual_hosts[].routes[]) for one table route. */
export function routeEntries(e: { path: string; route: Route }, o: TranslateOptions): Record<string, unknown>[] {
  const cluster = clusterName(e.route);
  const base = o.prependPath ? e.route.upstream.pathname : '/';
  const action = (rewrite: string | undefined, matched: string): Record<string, unknown> => ({
    cluster,
    timeout: { seconds: 0 },
    ...(o.proxyTimeoutMs !== undefined ? { idle_timeout: duration(o.proxyTimeoutMs) } : {}),
    ...(rewrite !== undefined && rewrite !== matched ? { prefix_rewrite: rewrite } : {}),
  });
  if (e.path === '/') {
    // Root key: everything; only the target path may change it.
    return [{ name: `${e.route.path} (prefix)`, match: { prefix: '/' }, route: action(joinPath(base, '/'), '/') }];
  }
  const exactTo = o.includePrefix ? joinPath(base, e.path) : base;
  const prefixTo = o.includePrefix ? joinPath(base, e.path + '/') : joinPath(base, '/');
  return [
    { name: `${e.route.path} (exact)`, match: { path: e.path }, route: action(exactTo, e.path) },
    { name: `${e.route.path} (prefix)`, match: { prefix: e.path + '/' }, route: action(prefixTo, e.path + '/') },
  ];
}

export function translateTable(table: RoutingTable, o: TranslateOptions): EnvoyResources {
  const plan = planTable(table, o);
  const routes: Resource[] = [
    {
      name: ROUTE_CONFIG_NAME,
      virtual_hosts: plan.virtualHosts.map((vh) => ({ name: vh.name, domains: vh.domains, routes: vh.routes.flatMap((e) => routeEntries(e, o)) })),
    },
  ];
  const { clusters, endpoints } = clusterResources(plan, o);
  return { clusters, endpoints, listeners: listenerResources(plan, o), routes, untranslatable: plan.untranslatable };
}

/** Cluster (and, for IP targets, ClusterLoadAssignment) for one cluster name. */
export function clusterFor(name: string, route: Route, o: TranslateOptions): { cluster: Resource; endpoint: Resource | undefined } {
  const u = route.upstream;
  const ip = isIP(u.hostname) !== 0;
  const lbEndpoints = [{ endpoint: { address: { socket_address: { address: u.hostname, port_value: u.port } } }, load_balancing_weight: { value: 1 } }];
  const assignment = { cluster_name: name, endpoints: [{ locality: {}, load_balancing_weight: { value: 1 }, lb_endpoints: lbEndpoints }] };
  const cluster: Record<string, unknown> = {
    name,
    connect_timeout: { seconds: 5 },
    lb_policy: 'ROUND_ROBIN',
    ...(ip
      ? { type: 'EDS', eds_cluster_config: { eds_config: ADS_SOURCE } }
      : { type: 'LOGICAL_DNS', dns_lookup_family: 'V4_PREFERRED', load_assignment: assignment }),
  };
  if (u.protocol === 'https:') {
    cluster.transport_socket = {
      name: 'envoy.transport_sockets.tls',
      typed_config: ANY('envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', {
        ...(ip ? {} : { sni: u.hostname }),
        common_tls_context: { validation_context: { trusted_ca: { filename: o.upstreamCaFile } } },
      }),
    };
  }
  return { cluster, endpoint: ip ? assignment : undefined };
}

function clusterResources(plan: RoutePlan, o: TranslateOptions): { clusters: Resource[]; endpoints: Resource[] } {
  const clusters: Resource[] = [];
  const endpoints: Resource[] = [];
  for (const [name, route] of plan.clusterOf) {
    const r = clusterFor(name, route, o);
    clusters.push(r.cluster);
    if (r.endpoint) endpoints.push(r.endpoint);
  }
  return { clusters, endpoints };
}

export function listenerResources(plan: Pick<RoutePlan, 'hostKeys'>, o: TranslateOptions): Resource[] {
  const router = { name: 'envoy.filters.http.router', typed_config: ANY('envoy.extensions.filters.http.router.v3.Router', {}) };
  const rds = { rds: { route_config_name: ROUTE_CONFIG_NAME, config_source: ADS_SOURCE } };
  const listeners: Resource[] = [
    {
      name: SOCKET_LISTENER_NAME,
      address: { socket_address: { address: o.listenerAddress, port_value: o.listenerPort } },
      filter_chains: [
        {
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: ANY(HCM_TYPE, {
                stat_prefix: 'switchyard',
                codec_type: 'AUTO',
                ...rds,
                http_filters: [router],
                // CHP proxies websockets on every route and sets X-Forwarded-For.
                upgrade_configs: [{ upgrade_type: 'websocket' }],
                use_remote_address: { value: true },
                // Paths as Switchyard's own proxy reads them (routing/request-path.ts), so a fleet
                // of Envoys routes every request where a Switchyard replica would, and sends the
                // same path upstream: dot segments (also %2E) resolved before routing and in the
                // upstream :path; "//" kept (Switchyard does not merge slashes: an empty segment
                // is a segment); %2F and %5C stay escaped inside their segment, never split it.
                ...HCM_PATH_RULES,
                // CHP has no idle limit unless --timeout: Envoy's default (5 min) would cut idle websockets.
                stream_idle_timeout: o.streamIdleTimeoutMs !== undefined ? duration(o.streamIdleTimeoutMs) : { seconds: 0 },
                ...(o.accessLogPath
                  ? {
                      access_log: [
                        {
                          name: 'envoy.access_loggers.file',
                          typed_config: ANY('envoy.extensions.access_loggers.file.v3.FileAccessLog', {
                            path: o.accessLogPath,
                            log_format: { json_format: ACCESS_LOG_FIELDS },
                          }),
                        },
                      ],
                    }
                  : {}),
              }),
            },
          ],
        },
      ],
    },
  ];
  const apiNames = new Set(o.grpcListenerNames);
  for (const k of plan.hostKeys) apiNames.add(k);
  // No path rules here: proxyless gRPC clients send method paths (/pkg.Service/Method), which have
  // no dot segments, slashes to merge or escapes, and gRPC does not implement those HCM fields.
  for (const name of [...apiNames].sort()) {
    listeners.push({
      name,
      api_listener: { api_listener: ANY(HCM_TYPE, { stat_prefix: 'switchyard_grpc', ...rds, http_filters: [router] }) },
    });
  }
  return listeners;
}
