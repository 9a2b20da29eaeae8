// `switchyard envoy-bootstrap`: exact YAML (golden), parsed back with a YAML parser and checked
// against Envoy's Bootstrap proto and its validate.rules, with and without TLS to the control plane.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { messageType } from '../../src/dataplane/envoy/protos.js';
import { MAIN } from '../helpers/servers.js';
import { validateEncoded } from '../helpers/pgv.js';
import { expectGoldenText } from '../helpers/golden.js';

const run = promisify(execFile);
const BOOTSTRAP = 'envoy.config.bootstrap.v3.Bootstrap';

/** protobuf JSON mapping -> protobufjs objects: "5s" durations become {seconds, nanos}. */
function fromJsonMapping(v: unknown): unknown {
  if (typeof v === 'string' && /^\d+(\.\d+)?s$/.test(v)) {
    const s = Number(v.slice(0, -1));
    return { seconds: Math.floor(s), nanos: Math.round((s % 1) * 1e9) };
  }
  if (Array.isArray(v)) return v.map(fromJsonMapping);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromJsonMapping(x)]));
  return v;
}

function check(yamlText: string): Record<string, unknown> {
  const obj = parse(yamlText) as Record<string, unknown>;
  const t = messageType(BOOTSTRAP);
  const msg = t.fromObject(fromJsonMapping(obj) as Record<string, unknown>);
  assert.equal(t.verify(msg), null);
  const bytes = t.encode(msg).finish();
  assert.deepEqual(validateEncoded(BOOTSTRAP, bytes), [], 'validate.rules');
  // Nothing was silently dropped: the proto round trip keeps every field we wrote.
  const back = t.toObject(t.decode(bytes), { enums: String, longs: Number, defaults: false }) as Record<string, unknown>;
  assert.deepEqual(Object.keys(back).sort(), Object.keys(obj).sort());
  return obj;
}

function golden(name: string, text: string): void {
  expectGoldenText(`envoy/${name}`, text);
}

test('envoy-bootstrap: plain gRPC to the control plane', async () => {
  const { stdout } = await run(process.execPath, [MAIN, 'envoy-bootstrap', '--xds-ip', '10.1.2.3', '--xds-port', '18000', '--envoy-node-id', 'edge-1']);
  golden('bootstrap-plain.yaml', stdout);
  const b = check(stdout) as { node: { id: string }; static_resources: { clusters: { load_assignment: unknown; type: string; transport_socket?: unknown }[] }; dynamic_resources: { ads_config: { api_type: string } } };
  assert.equal(b.node.id, 'edge-1');
  assert.equal(b.dynamic_resources.ads_config.api_type, 'GRPC');
  assert.equal(b.static_resources.clusters[0]!.type, 'STRICT_DNS');
  assert.equal(b.static_resources.clusters[0]!.transport_socket, undefined);
  assert.match(JSON.stringify(b.static_resources.clusters[0]!.load_assignment), /"address":"10.1.2.3","port_value":18000/);
});

test('envoy-bootstrap: mutual TLS to a control plane behind a DNS name', async () => {
  const { stdout } = await run(process.execPath, [MAIN, 'envoy-bootstrap', '--xds-port', '18443', '--envoy-xds-host', 'switchyard.internal',
    '--envoy-node-id', 'edge-2', '--envoy-node-cluster', 'edge', '--envoy-admin-port', '9000',
    '--envoy-xds-ca', '/etc/envoy/ca.pem', '--envoy-xds-cert', '/etc/envoy/client.pem', '--envoy-xds-key', '/etc/envoy/client.key']);
  golden('bootstrap-mtls.yaml', stdout);
  const b = check(stdout) as { static_resources: { clusters: { transport_socket: { typed_config: { sni: string; common_tls_context: { tls_certificates: unknown[] } } } }[] } };
  const ts = b.static_resources.clusters[0]!.transport_socket.typed_config;
  assert.equal(ts.sni, 'switchyard.internal');
  assert.equal(ts.common_tls_context.tls_certificates.length, 1);
});

test('envoy-bootstrap: inconsistent TLS flags are refused', async () => {
  await assert.rejects(run(process.execPath, [MAIN, 'envoy-bootstrap', '--envoy-xds-cert', '/c.pem', '--envoy-xds-key', '/k.pem']), (e: { code: number; stderr: string }) =>
    e.code === 1 && /--envoy-xds-cert: needs envoy-xds-ca/.test(e.stderr));
});
