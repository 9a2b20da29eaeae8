// The xDS control plane against an independently written xDS client: @grpc/grpc-js-xds resolves
// xds:///switchyard through a real Switchyard process (LDS -> RDS -> CDS -> EDS) and follows route
// additions, target changes and removals made through the REST API. An https target gives a
// cluster this client rejects (it needs certificate providers): the NACK is counted, visible in
// GET /api/xds and /metrics, and the client keeps working on its last good config.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { request, startSwitchyardProcess, waitFor } from '../helpers/servers.js';

const TOKEN = 'xds-token';
const METHOD = '/test.Echo/Say';
const id = (b: Buffer): Buffer => b;

/** A gRPC server whose one method answers "<name>:<request>" (no .proto needed: raw bytes). */
async function echoServer(t: { after(fn: () => unknown): void }, name: string): Promise<number> {
  const server = new grpc.Server();
  const def: grpc.ServiceDefinition = {
    Say: { path: METHOD, requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id },
  };
  server.addService(def, {
    Say: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(`${name}:${call.request.toString()}`)),
  });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  t.after(() => server.forceShutdown());
  return port;
}

function call(client: grpc.Client, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(METHOD, id, id, Buffer.from(msg), new grpc.Metadata(), { deadline: Date.now() + 3000 }, (err, res) =>
      err ? reject(err) : resolve(res!.toString()),
    );
  });
}

test('grpc-js-xds resolves xds:/// through Switchyard and follows REST API changes; NACKs are visible', { timeout: 120_000 }, async (t) => {
  const [a, b] = [await echoServer(t, 'A'), await echoServer(t, 'B')];
  const p = await startSwitchyardProcess(t, ['--workers', '1', '--metrics-ip', '127.0.0.1', '--metrics-port', '0', '--xds-ip', '127.0.0.1', '--xds-port', '0'],
    { CONFIGPROXY_AUTH_TOKEN: TOKEN });
  const { api, metricsPort, xdsPort } = p;

  // The client's own bootstrap: this control plane, insecure channel.
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: 'grpc-test-node', cluster: 'test', locality: {} },
  });
  t.after(() => delete process.env.GRPC_XDS_BOOTSTRAP_CONFIG); // (the xds: resolver registration itself cannot be undone)
  grpcXds.register();

  assert.equal((await api('POST', '/api/routes/test.Echo', { target: `http://127.0.0.1:${a}` })).status, 201);
  const client = new grpc.Client('xds:///switchyard', grpc.credentials.createInsecure());
  t.after(() => client.close());
  // First resolution walks LDS -> RDS -> CDS -> EDS.
  await waitFor(async () => (await call(client, 'hi').catch(() => '')) === 'A:hi', 15_000, 'first call through xDS');

  // Target change through the REST API: the client follows.
  assert.equal((await api('POST', '/api/routes/test.Echo', { target: `http://127.0.0.1:${b}` })).status, 201);
  await waitFor(async () => (await call(client, 'x').catch(() => '')) === 'B:x', 10_000, 'target change followed');

  // A host-name target: LOGICAL_DNS cluster.
  assert.equal((await api('POST', '/api/routes/test.Echo', { target: `http://localhost:${a}` })).status, 201);
  await waitFor(async () => (await call(client, 'dns').catch(() => '')) === 'A:dns', 10_000, 'LOGICAL_DNS cluster followed');

  // Removal: no route matches any more.
  assert.equal((await api('DELETE', '/api/routes/test.Echo')).status, 204);
  await waitFor(async () => {
    try {
      await call(client, 'gone');
      return false;
    } catch (e) {
      return (e as grpc.ServiceError).code === grpc.status.UNAVAILABLE;
    }
  }, 10_000, 'route removal followed');
  // A deeper route for the same service comes back on the other backend.
  assert.equal((await api('POST', '/api/routes/test.Echo/Say', { target: `http://127.0.0.1:${b}` })).status, 201);
  await waitFor(async () => (await call(client, 'back').catch(() => '')) === 'B:back', 10_000, 'route added again');

  // NACK: an https target makes a cluster with an UpstreamTlsContext this client cannot use.
  assert.equal((await api('POST', '/api/routes/secure', { target: 'https://127.0.0.1:1' })).status, 201);
  let status: { clients: { node: { id: string }; types: Record<string, { nacks: number; lastNack?: { message: string }; ackedVersion?: string }> }[]; versions: Record<string, string> } | undefined;
  await waitFor(async () => {
    status = (await api('GET', '/api/xds')).json();
    return status!.clients.some((c) => c.node.id === 'grpc-test-node' && (c.types.cds?.nacks ?? 0) > 0);
  }, 10_000, 'the NACK recorded');
  const me = status!.clients.find((c) => c.node.id === 'grpc-test-node')!;
  assert.match(me.types.cds!.lastNack!.message, /UpstreamTlsContext|ValidationContext|certificate/i, me.types.cds!.lastNack!.message);
  const metrics = (await request(`http://127.0.0.1:${metricsPort}/metrics`)).body;
  assert.ok(Number(/switchyard_xds_nacks_total\{type="cds"\} (\d+)/.exec(metrics)?.[1]) >= 1, 'NACK counted');
  assert.ok(Number(/switchyard_xds_acks_total\{type="lds"\} (\d+)/.exec(metrics)?.[1]) >= 1, 'ACKs counted');
  assert.equal(Number(/switchyard_xds_clients (\d+)/.exec(metrics)?.[1]), 1);
  // The client keeps working on what it accepted.
  assert.equal(await call(client, 'still'), 'B:still');
  // Removing the bad target ends the NACKs: the client ACKs the next cluster set.
  assert.equal((await api('DELETE', '/api/routes/secure')).status, 204);
  await waitFor(async () => {
    const s: typeof status = (await api('GET', '/api/xds')).json();
    const c = s!.clients.find((x) => x.node.id === 'grpc-test-node');
    return c?.types.cds?.ackedVersion === s!.versions.cds;
  }, 10_000, 'CDS acknowledged again');
  assert.equal(await call(client, 'ok'), 'B:ok');
  // Close the client while its control plane still answers: grpc-js-xds's (process-global) xDS
  // client then drops its watches; closed after the control plane died, it keeps a call queued
  // for a retry on a ref'd grpc-js timer and this test file never exits.
  client.close();
  p.proc.kill('SIGTERM');
  assert.equal(await p.exited, 0);
});
