// The xDS v3 control plane: state-of-the-world ADS (envoy.service.discovery.v3.
// AggregatedDiscoveryService) plus the per-type CDS/EDS/LDS/RDS streams, over @grpc/grpc-js.
//
// Protocol contract (per stream, per type URL):
//  - A request with no response_nonce subscribes (or re-subscribes after a reconnect) and is
//    always answered with the current resources.
//  - A request whose response_nonce is not the last nonce we sent for that type is stale: ignored.
//  - A request carrying our last nonce is an ACK (no error_detail: the client now runs
//    version_info) or a NACK (error_detail set: logged, counted, kept visible in status; the client
//    keeps its last good config and we do not resend the same version).
//  - At most one response per type is unacknowledged: a newer snapshot waits for the ACK/NACK.
//    So a client that never ACKs gets nothing more and costs nothing, and others are unaffected.
//  - Pushes go in make-before-break order: clusters, endpoints, listeners, routes. Clusters that
//    the client's last ACKed route configuration still references are kept (with their endpoints)
//    until a route configuration without them is ACKed, so no route ever points at a missing cluster.
//  - LDS and CDS without names (or with "*") are wildcard; RDS/EDS are by name.

import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import type { Logger } from '../../observability/logger.js';
import { PUSH_ORDER, SHORT, TO_OBJECT, TYPE, messageType, type TypeUrl } from './protos.js';
import { listenFailed } from '../../net.js';
import type { EncodedResource, Snapshot } from './snapshot.js';

export interface XdsMetricsSink {
  push(type: TypeUrl): void;
  ack(type: TypeUrl): void;
  nack(type: TypeUrl): void;
  clients(n: number): void;
}

interface NodeInfo {
  id: string;
  cluster: string;
  userAgent: string;
}

interface TypeState {
  /** null: wildcard. */
  names: Set<string> | null;
  sentNonce: string | undefined;
  sentKey: string | undefined;
  sentVersion: string | undefined;
  sentSnapshot: Snapshot | undefined;
  pending: boolean;
  ackedVersion: string | undefined;
  acks: number;
  nacks: number;
  lastNack: { version: string | undefined; message: string; at: string } | undefined;
}

export interface XdsClientStatus {
  readonly stream: number;
  readonly node: NodeInfo;
  readonly service: string;
  readonly connectedAt: string;
  readonly types: Record<string, {
    subscribed: string[] | '*';
    sentVersion?: string | undefined;
    ackedVersion?: string | undefined;
    waitingForAck: boolean;
    acks: number;
    nacks: number;
    lastNack?: { version: string | undefined; message: string; at: string } | undefined;
  }>;
}

export interface XdsServer {
  start(): Promise<void>;
  close(): Promise<void>;
  /** Publish a new snapshot: every stream gets what changed for it, in push order. */
  setSnapshot(s: Snapshot): void;
  snapshot(): Snapshot;
  clients(): XdsClientStatus[];
  port(): number | undefined;
}

export interface XdsServerOptions {
  readonly host: string;
  readonly port: number;
  readonly initial: Snapshot;
  readonly log: Logger;
  readonly metrics?: XdsMetricsSink;
  /** TLS for the control plane; with clientCa, client certificates are required. */
  readonly tls?: { key: Buffer; cert: Buffer; clientCa?: Buffer | undefined } | undefined;
  /** Shown to clients in DiscoveryResponse.control_plane.identifier. */
  readonly identifier: string;
}

interface DiscoveryRequest {
  version_info?: string;
  node?: { id?: string; cluster?: string; user_agent_name?: string };
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

const WILDCARD_TYPES = new Set<string>([TYPE.cluster, TYPE.listener]);

export function createXdsServer(o: XdsServerOptions): XdsServer {
  const Req = messageType('envoy.service.discovery.v3.DiscoveryRequest');
  const Res = messageType('envoy.service.discovery.v3.DiscoveryResponse');
  const serialize = (obj: object): Buffer => Buffer.from(Res.encode(Res.fromObject(obj)).finish());
  const deserialize = (buf: Buffer): DiscoveryRequest => Req.toObject(Req.decode(buf), TO_OBJECT) as DiscoveryRequest;
  const method = (path: string): grpc.MethodDefinition<DiscoveryRequest, object> => ({
    path,
    requestStream: true,
    responseStream: true,
    requestSerialize: (r: DiscoveryRequest) => Buffer.from(Req.encode(Req.fromObject(r)).finish()),
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: (b: Buffer) => Res.toObject(Res.decode(b), TO_OBJECT),
  });

  let current = o.initial;
  let nextStream = 1;
  const streams = new Set<Stream>();
  const server = new grpc.Server({ 'grpc.max_send_message_length': 256 * 1024 * 1024, 'grpc.keepalive_time_ms': 30_000 });
  let boundPort: number | undefined;

  class Stream {
    readonly id = nextStream++;
    readonly connectedAt = new Date().toISOString();
    node: NodeInfo = { id: '', cluster: '', userAgent: '' };
    readonly types = new Map<TypeUrl, TypeState>();
    /** The snapshot whose route configuration this client last ACKed. */
    routeAcked: Snapshot | undefined;
    nonce = 0;
    closed = false;

    constructor(
      readonly call: grpc.ServerDuplexStream<DiscoveryRequest, object>,
      readonly service: string,
      readonly fixedType: TypeUrl | undefined,
    ) {}

    onRequest(req: DiscoveryRequest): void {
      if (req.node?.id !== undefined || req.node?.cluster !== undefined) {
        this.node = { id: req.node.id ?? '', cluster: req.node.cluster ?? '', userAgent: req.node.user_agent_name ?? '' };
      }
      const type = (req.type_url || this.fixedType) as TypeUrl | undefined;
      if (!type || !(type in SHORT) || (this.fixedType && type !== this.fixedType)) {
        o.log.warn(`xDS: stream ${this.id} (node ${JSON.stringify(this.node.id)}) asked for unsupported type ${JSON.stringify(req.type_url)}; ignored`);
        return;
      }
      let ts = this.types.get(type);
      if (!ts) {
        ts = { names: null, sentNonce: undefined, sentKey: undefined, sentVersion: undefined, sentSnapshot: undefined, pending: false, ackedVersion: undefined, acks: 0, nacks: 0, lastNack: undefined };
        this.types.set(type, ts);
      }
      const nonce = req.response_nonce ?? '';
      if (nonce !== '') {
        if (nonce !== ts.sentNonce) return; // stale: a response we have since superseded
        ts.pending = false;
        if (req.error_detail && (req.error_detail.message || req.error_detail.code)) {
          ts.nacks++;
          ts.lastNack = { version: ts.sentVersion, message: String(req.error_detail.message ?? ''), at: new Date().toISOString() };
          o.metrics?.nack(type);
          o.log.warn(`xDS NACK from node ${JSON.stringify(this.node.id)} (stream ${this.id}) for ${SHORT[type]} version ${ts.sentVersion}: ${ts.lastNack.message}; it keeps version ${JSON.stringify(req.version_info ?? '')}`);
        } else {
          ts.acks++;
          ts.ackedVersion = req.version_info ?? ts.sentVersion;
          o.metrics?.ack(type);
          if (type === TYPE.route) this.routeAcked = ts.sentSnapshot;
        }
      } else if (ts.sentNonce !== undefined) {
        // A fresh subscription on a stream that had one: answer it again.
        ts.sentKey = undefined;
        ts.pending = false;
      }
      const names = (req.resource_names ?? []).filter((n) => n !== '');
      ts.names = names.length === 0 && WILDCARD_TYPES.has(type) ? null : names.includes('*') ? null : new Set(names);
      this.pushAll();
    }

    pushAll(): void {
      for (const t of PUSH_ORDER) {
        const ts = this.types.get(t);
        if (ts) this.maybeSend(t, ts);
      }
    }

    /** Resources of `type` this client should have now: current, plus clusters it still routes to. */
    view(type: TypeUrl): { version: string; resources: ReadonlyMap<string, EncodedResource> } {
      const cur = current.types.get(type)!;
      const old = this.routeAcked;
      if ((type !== TYPE.cluster && type !== TYPE.endpoint) || !old || old === current) return cur;
      const keep = [...old.referencedClusters].filter((c) => !current.referencedClusters.has(c));
      if (keep.length === 0) return cur;
      const merged = new Map(cur.resources);
      const oldType = old.types.get(type)!;
      for (const c of keep) {
        const r = oldType.resources.get(c);
        if (r) merged.set(c, r);
      }
      const h = createHash('sha256').update(cur.version).update(keep.sort().join('\0')).digest('hex').slice(0, 8);
      return { version: `${cur.version}+${h}`, resources: merged };
    }

    maybeSend(type: TypeUrl, ts: TypeState): void {
      if (this.closed || ts.pending) return;
      const v = this.view(type);
      const picked: EncodedResource[] = [];
      if (ts.names === null) picked.push(...v.resources.values());
      else for (const n of ts.names) { const r = v.resources.get(n); if (r) picked.push(r); }
      const key = `${v.version}|${ts.names === null ? '*' : [...ts.names].sort().join('\0')}`;
      if (key === ts.sentKey) return;
      const nonce = String(++this.nonce);
      ts.sentKey = key;
      ts.sentNonce = nonce;
      ts.sentVersion = v.version;
      ts.sentSnapshot = current;
      ts.pending = true;
      o.metrics?.push(type);
      this.call.write({
        version_info: v.version,
        resources: picked.map((r) => r.any),
        type_url: type,
        nonce,
        control_plane: { identifier: o.identifier },
      });
    }

    status(): XdsClientStatus {
      const types: XdsClientStatus['types'] = {};
      for (const [t, ts] of this.types) {
        types[SHORT[t]] = {
          subscribed: ts.names === null ? '*' : [...ts.names],
          sentVersion: ts.sentVersion,
          ackedVersion: ts.ackedVersion,
          waitingForAck: ts.pending,
          acks: ts.acks,
          nacks: ts.nacks,
          lastNack: ts.lastNack,
        };
      }
      return { stream: this.id, node: this.node, service: this.service, connectedAt: this.connectedAt, types };
    }
  }

  const handler = (service: string, fixedType: TypeUrl | undefined) => (call: grpc.ServerDuplexStream<DiscoveryRequest, object>) => {
    const s = new Stream(call, service, fixedType);
    streams.add(s);
    o.metrics?.clients(streams.size);
    const end = (why: string): void => {
      if (s.closed) return;
      s.closed = true;
      streams.delete(s);
      o.metrics?.clients(streams.size);
      o.log.debug(`xDS: stream ${s.id} (node ${JSON.stringify(s.node.id)}) ended: ${why}`);
    };
    call.on('data', (req: DiscoveryRequest) => {
      try {
        s.onRequest(req);
      } catch (e) {
        o.log.error(`xDS: stream ${s.id}: ${(e as Error).message}`);
        call.destroy(e as Error);
      }
    });
    call.on('error', (e) => end((e as Error).message));
    call.on('cancelled', () => end('cancelled'));
    call.on('end', () => {
      end('client closed');
      call.end();
    });
  };

  const service = (name: string, rpc: string, fixedType: TypeUrl | undefined): void => {
    const def = { [rpc]: method(`/${name}/${rpc}`) } as grpc.ServiceDefinition;
    server.addService(def, { [rpc]: handler(name.split('.').pop()!, fixedType) } as grpc.UntypedServiceImplementation);
  };
  service('envoy.service.discovery.v3.AggregatedDiscoveryService', 'StreamAggregatedResources', undefined);
  service('envoy.service.cluster.v3.ClusterDiscoveryService', 'StreamClusters', TYPE.cluster);
  service('envoy.service.endpoint.v3.EndpointDiscoveryService', 'StreamEndpoints', TYPE.endpoint);
  service('envoy.service.listener.v3.ListenerDiscoveryService', 'StreamListeners', TYPE.listener);
  service('envoy.service.route.v3.RouteDiscoveryService', 'StreamRoutes', TYPE.route);

  return {
    async start() {
      const creds = o.tls
        ? grpc.ServerCredentials.createSsl(o.tls.clientCa ?? null, [{ private_key: o.tls.key, cert_chain: o.tls.cert }], o.tls.clientCa !== undefined)
        : grpc.ServerCredentials.createInsecure();
      const addr = o.host.includes(':') ? `[${o.host}]:${o.port}` : `${o.host}:${o.port}`;
      boundPort = await new Promise<number>((resolve, reject) => server.bindAsync(addr, creds, (err, port) => (err ? reject(listenFailed(err)) : resolve(port))));
    },
    async close() {
      for (const s of streams) {
        s.closed = true;
        s.call.end();
      }
      streams.clear();
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => { server.forceShutdown(); resolve(); }, 2000);
        server.tryShutdown(() => { clearTimeout(t); resolve(); });
      });
    },
    setSnapshot(snap) {
      current = snap;
      for (const s of streams) s.pushAll();
    },
    snapshot: () => current,
    clients: () => [...streams].map((s) => s.status()),
    port: () => boundPort,
  };
}
