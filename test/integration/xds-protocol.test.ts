// The ADS protocol details, driven by a hand-rolled client over real gRPC sockets: push order,
// ACK/NACK bookkeeping, stale nonces, a client that never ACKs, garbage on the wire, make-before-
// break cluster removal, the per-type services, and equal versions on two replicas.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { TO_OBJECT, TYPE, messageType } from '../../src/dataplane/envoy/protos.js';
import { buildSnapshot } from '../../src/dataplane/envoy/snapshot.js';
import { translateTable, type TranslateOptions } from '../../src/dataplane/envoy/translate.js';
import { createXdsServer, type XdsServer } from '../../src/dataplane/envoy/xds-server.js';
import { createLogger } from '../../src/observability/logger.js';
import { RoutingTable, type RouteData } from '../../src/routing/table.js';
import { waitFor } from '../helpers/servers.js';
import { testCert } from '../helpers/tls.js';
import { readFileSync } from 'node:fs';

const OPTS: TranslateOptions = {
  prependPath: true, includePrefix: true, hostRouting: false, listenerAddress: '0.0.0.0', listenerPort: 8000,
  grpcListenerNames: ['switchyard'], upstreamCaFile: '/etc/ssl/certs/ca-certificates.crt', accessLogPath: '',
};
const snap = (routes: [string, string][], v = 1) =>
  buildSnapshot(translateTable(RoutingTable.build({ hostRouting: false }, routes.map(([p, t]): [string, RouteData] => [p, { target: t }]), v), OPTS), v);

const Req = messageType('envoy.service.discovery.v3.DiscoveryRequest');
const Res = messageType('envoy.service.discovery.v3.DiscoveryResponse');
interface Response { version_info: string; type_url: string; nonce: string; resources?: { type_url: string; value: Buffer }[] }

const logs: string[] = [];
const log = createLogger({ level: 'debug', format: 'text', write: (l: string) => logs.push(l) });

async function startServer(t: { after(fn: () => unknown): void }, initial = snap([['/a', 'http://10.0.0.1:1']])): Promise<XdsServer> {
  const s = createXdsServer({ host: '127.0.0.1', port: 0, initial, log, identifier: 'test' });
  await s.start();
  t.after(() => s.close());
  return s;
}

class RawClient {
  readonly got: Response[] = [];
  readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  readonly client: grpc.Client;
  ended = false;
  constructor(port: number, path = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', creds = grpc.credentials.createInsecure()) {
    this.client = new grpc.Client(`127.0.0.1:${port}`, creds);
    this.call = this.client.makeBidiStreamRequest(path, (b: Buffer) => b, (b: Buffer) => b);
    this.call.on('data', (b: Buffer) => this.got.push(Res.toObject(Res.decode(b), { ...TO_OBJECT, bytes: Buffer }) as Response));
    this.call.on('error', () => { this.ended = true; });
    this.call.on('end', () => { this.ended = true; });
  }
  send(r: Record<string, unknown>): void {
    this.call.write(Buffer.from(Req.encode(Req.fromObject(r)).finish()));
  }
  subscribe(type: string, names: string[] = [], node = { id: 'n1', cluster: 'c' }): void {
    this.send({ node, type_url: type, resource_names: names });
  }
  ack(r: Response, names: string[] = []): void {
    this.send({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce, resource_names: names });
  }
  last(type: string): Response | undefined {
    return [...this.got].reverse().find((r) => r.type_url === type);
  }
  names(r: Response): string[] {
    return (r.resources ?? []).map((a) => {
      const t = messageType(a.type_url);
      const o = t.toObject(t.decode(a.value)) as { name?: string; cluster_name?: string };
      return o.name ?? o.cluster_name ?? '';
    });
  }
  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

/**
 * A barrier on `c`'s stream: a fresh LDS subscription (no nonce) is always answered, and a stream's
 * requests and responses are handled in order, so anything the server sent before it has arrived
 * once its answer has. Returns what arrived before the barrier's answer; the answer is ACKed, so
 * the stream's state is as before.
 */
async function barrier(c: RawClient, type: string = TYPE.listener, names: string[] = []): Promise<Response[]> {
  const n = c.got.length;
  c.send({ type_url: type, resource_names: names }); // no node: the stream keeps its node identity
  await waitFor(() => c.got.slice(n).some((r) => r.type_url === type), 5000, 'barrier response');
  const after = c.got.slice(n);
  const answer = after.findLastIndex((r) => r.type_url === type);
  c.ack(after[answer]!, names);
  return after.filter((_r, i) => i !== answer);
}

test('push order, ACK/NACK, stale nonces, never-ACKing and garbage-sending clients, make-before-break', { timeout: 60_000 }, async (t) => {
  const server = await startServer(t);
  const port = server.port()!;
  const good = new RawClient(port);
  t.after(() => good.close());
  for (const type of [TYPE.cluster, TYPE.endpoint, TYPE.listener, TYPE.route]) {
    good.subscribe(type, type === TYPE.endpoint ? ['http_10.0.0.1_1'] : type === TYPE.route ? ['switchyard'] : []);
  }
  await waitFor(() => good.got.length === 4, 5000, 'initial responses');
  assert.deepEqual(good.names(good.last(TYPE.cluster)!), ['http_10.0.0.1_1']);
  assert.deepEqual(good.names(good.last(TYPE.listener)!), ['switchyard_http', 'switchyard'], 'LDS wildcard');
  for (const r of good.got) good.ack(r, r.type_url === TYPE.endpoint ? ['http_10.0.0.1_1'] : r.type_url === TYPE.route ? ['switchyard'] : []);

  const lazy = new RawClient(port); // subscribes, never ACKs
  t.after(() => lazy.close());
  lazy.subscribe(TYPE.cluster, [], { id: 'lazy', cluster: 'c' });
  await waitFor(() => lazy.got.length === 1, 5000, 'lazy client initial CDS');

  // New snapshot: the good client gets CDS, EDS (for what it asks), LDS?, RDS in make-before-break order.
  const before = good.got.length;
  server.setSnapshot(snap([['/a', 'http://10.0.0.1:1'], ['/b', 'http://10.0.0.2:2']], 2));
  await waitFor(() => good.got.slice(before).some((r) => r.type_url === TYPE.route), 5000, 'pushes');
  const pushed = good.got.slice(before).map((r) => r.type_url);
  // EDS's type version changed (a new assignment), so it is resent too; LDS did not change.
  assert.deepEqual(pushed, [TYPE.cluster, TYPE.endpoint, TYPE.route], 'changed types only, in make-before-break order');
  for (const r of good.got.slice(before)) if (r.type_url === TYPE.endpoint) good.ack(r, ['http_10.0.0.1_1']);
  // setSnapshot pushed synchronously; a push to the lazy client would precede its barrier's answer.
  assert.deepEqual(await barrier(lazy), [], 'a client that never ACKs is not pushed again');
  assert.deepEqual(lazy.got.map((r) => r.type_url), [TYPE.cluster, TYPE.listener]);

  // A stale nonce (the first CDS response's) is ignored: no response.
  const cds2 = good.last(TYPE.cluster)!;
  good.send({ type_url: TYPE.cluster, version_info: 'x', response_nonce: good.got[0]!.nonce });
  assert.deepEqual(await barrier(good), [], 'stale nonce ignored');

  // NACK: kept visible, the same version is not resent.
  good.send({ type_url: TYPE.cluster, version_info: good.got[0]!.version_info, response_nonce: cds2.nonce, error_detail: { code: 3, message: 'cluster http_10.0.0.2_2 is not to my taste' } });
  await waitFor(() => server.clients().some((c) => c.node.id === 'n1' && c.types.cds!.nacks === 1), 5000, 'NACK recorded');
  const st = server.clients().find((c) => c.node.id === 'n1')!;
  assert.equal(st.types.cds!.lastNack!.message, 'cluster http_10.0.0.2_2 is not to my taste');
  assert.equal(st.types.cds!.lastNack!.version, cds2.version_info);
  assert.equal(st.types.cds!.waitingForAck, false);
  assert.deepEqual(await barrier(good), [], 'a NACKed version is not resent');
  assert.ok(logs.some((l) => /NACK from node "n1"/.test(l)), 'NACK logged');
  good.ack(good.last(TYPE.route)!, ['switchyard']);

  // Garbage on another stream: that stream fails, the others carry on.
  const bad = new RawClient(port);
  t.after(() => bad.close());
  bad.call.write(Buffer.from([0xff, 0xff, 0xff, 0x01, 0x02]));
  await waitFor(() => bad.ended, 5000, 'garbage stream closed');

  // Make-before-break removal: /b goes away; its cluster stays until the new routes are ACKed.
  const m = good.got.length;
  server.setSnapshot(snap([['/a', 'http://10.0.0.1:1']], 3));
  await waitFor(() => good.got.slice(m).some((r) => r.type_url === TYPE.route), 5000, 'RDS push');
  const cdsDuring = good.got.slice(m).find((r) => r.type_url === TYPE.cluster);
  assert.ok(cdsDuring, 'CDS pushed (the NACKed version is superseded)');
  assert.deepEqual(good.names(cdsDuring).sort(), ['http_10.0.0.1_1', 'http_10.0.0.2_2'], 'removed cluster kept while routes to it may be live');
  good.ack(cdsDuring);
  good.ack(good.got.slice(m).find((r) => r.type_url === TYPE.route)!, ['switchyard']);
  await waitFor(() => { const c = good.last(TYPE.cluster)!; return good.names(c).length === 1; }, 5000, 'cluster removed after the route ACK');
  assert.deepEqual(good.names(good.last(TYPE.cluster)!), ['http_10.0.0.1_1']);
  assert.equal(server.clients().length, 2, 'good and lazy still connected, the garbage stream gone');
});

test('per-type services (CDS, RDS) and equal versions on two replicas holding one table', async (t) => {
  const routes: [string, string][] = [['/u/1', 'http://10.0.0.1:1'], ['/u/2', 'http://h.example:2']];
  const s1 = await startServer(t, snap(routes, 5));
  const s2 = await startServer(t, snap([...routes].reverse(), 912)); // other order, other local version
  const c1 = new RawClient(s1.port()!, '/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters');
  const c2 = new RawClient(s2.port()!, '/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters');
  const r1 = new RawClient(s1.port()!, '/envoy.service.route.v3.RouteDiscoveryService/StreamRoutes');
  t.after(() => { c1.close(); c2.close(); r1.close(); });
  c1.subscribe(TYPE.cluster);
  c2.subscribe(TYPE.cluster);
  r1.subscribe(TYPE.route, ['switchyard']);
  await waitFor(() => c1.got.length === 1 && c2.got.length === 1 && r1.got.length === 1, 5000, 'responses');
  assert.equal(c1.got[0]!.version_info, c2.got[0]!.version_info, 'same table, same version on both replicas');
  assert.deepEqual(c1.names(c1.got[0]!), ['http_10.0.0.1_1', 'http_h.example_2']);
  // A per-type stream ignores other types.
  c1.subscribe(TYPE.listener);
  // Barrier on the CDS-only stream: a fresh CDS subscription is answered after anything before it.
  assert.deepEqual(await barrier(c1, TYPE.cluster), [], 'no LDS on a CDS stream');
  assert.ok(logs.some((l) => /asked for unsupported type .*Listener/.test(l)), 'the LDS request was seen and ignored');
});

test('TLS: the control plane over grpcs, plaintext clients refused', async (t) => {
  const cert = testCert();
  const tls = { key: readFileSync(cert.key), cert: readFileSync(cert.cert) };
  const s = createXdsServer({ host: '127.0.0.1', port: 0, initial: snap([['/a', 'http://10.0.0.1:1']]), log, identifier: 'tls', tls });
  await s.start();
  t.after(() => s.close());
  const secure = new RawClient(s.port()!, undefined, grpc.credentials.createSsl(readFileSync(cert.cert)));
  const plain = new RawClient(s.port()!);
  t.after(() => { secure.close(); plain.close(); });
  secure.subscribe(TYPE.listener);
  plain.subscribe(TYPE.listener);
  await waitFor(() => secure.got.length === 1 && plain.ended, 10_000, 'TLS client served, plaintext client failed');
  assert.equal(plain.got.length, 0);
});
