// Every metric docs/metrics.md lists is really updated: one Switchyard (file store, xDS, per-route
// series) is scraped, exercised (requests, a 404, a bad path, a dead upstream, a websocket, API
// writes, an xDS client that ACKs and NACKs, a route Envoy cannot express, a store entry with an
// unusable target, a hand edit that does not parse) and scraped again: each listed metric must be
// present and have at least one series whose value moved.

import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import WebSocket from 'ws';
import { TO_OBJECT, TYPE, messageType } from '../../src/dataplane/envoy/protos.js';
import { REFUSED_PORT, rawRequest, request, startBackend, startSwitchyard, waitFor } from '../helpers/servers.js';

const DOC = fileURLToPath(new URL('../../../docs/metrics.md', import.meta.url));

/** Metric names in the first column of docs/metrics.md's tables (wildcards such as `switchyard_process_*` kept). */
function documentedMetrics(): string[] {
  const names: string[] = [];
  for (const line of readFileSync(DOC, 'utf8').split('\n')) {
    const first = /^\|\s*([^|]+)\|/.exec(line)?.[1] ?? '';
    for (const m of first.matchAll(/`(switchyard_[a-z_*]+)`/g)) names.push(m[1]!);
  }
  return names;
}

/** Prometheus text -> series ("name{labels}") -> value. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** The series of `metric` (histograms: its _bucket, _sum and _count series; `x_*`: every name starting with x_). */
function seriesOf(all: Map<string, number>, metric: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of all) {
    const name = k.split('{', 1)[0]!;
    const hit = metric.endsWith('*') ? name.startsWith(metric.slice(0, -1)) : [metric, `${metric}_bucket`, `${metric}_sum`, `${metric}_count`].includes(name);
    if (hit) out.set(k, v);
  }
  return out;
}

const moved = (before: Map<string, number>, after: Map<string, number>, metric: string): boolean => {
  const b = seriesOf(before, metric);
  for (const [k, v] of seriesOf(after, metric)) if ((b.get(k) ?? 0) !== v) return true;
  return false;
};

/**
 * Metrics that only a fault can move, each read after that fault is injected by the test named
 * here (they must still be exported: a counter at 0 here).
 */
const EXERCISED_ELSEWHERE: Record<string, string> = {
  switchyard_internal_errors_total: "test/integration/proxy.test.ts '500: an unexpected exception while routing…' (a logger that throws inside the routing path)",
};

/** Metrics that exist only with --acme-* (a real ACME server): checked by the test named here. */
const NEEDS_ACME: Record<string, string> = {
  switchyard_acme_orders_total: "test/integration/acme.test.ts 'one replica on a file store gets a certificate…'",
  switchyard_acme_certificate_not_after_seconds: "test/integration/acme.test.ts 'one replica on a file store gets a certificate…'",
  switchyard_acme_certificates: "test/integration/acme.test.ts 'one replica on a file store gets a certificate…'",
};

test('every metric in docs/metrics.md is exported and moves when exercised', { timeout: 60_000 }, async (t) => {
  const names = documentedMetrics().filter((n) => !(n in NEEDS_ACME));
  assert.ok(names.length >= 25, `the doc lists the metrics (${names.length} found)`);
  const dir = mkdtempSync(join(tmpdir(), 'swy-metrics-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'routes.toml');
  // Hooks run in order: this one (registered before the backend's) ends the websocket and the xDS
  // stream first, or the backend's close would wait on the upgraded socket.
  const closers: (() => void)[] = [];
  t.after(() => closers.forEach((c) => c()));
  const backend = await startBackend(t, 'M', undefined, { ws: true });
  const sy = await startSwitchyard(t, ['--store', `file:${file}`, '--metrics-ip', '127.0.0.1', '--metrics-port', '0', '--metrics-route-labels',
    '--dashboard-interval', '50', '--xds-ip', '127.0.0.1', '--xds-port', '0', '--drain-timeout', '1000', '--request-body-timeout', '200']);
  const scrape = async () => parse((await request(`${sy.metricsUrl}/metrics`)).body);
  const before = await scrape();

  // REST API writes: routes, table version, store revision, propagation, route changes.
  assert.equal((await sy.api('POST', '/api/routes/user/a', { target: backend.url })).status, 201);
  assert.equal((await sy.api('POST', '/api/routes/dead', { target: `http://127.0.0.1:${REFUSED_PORT}` })).status, 201);
  assert.equal((await sy.api('POST', '/api/routes/tmp', { target: backend.url })).status, 201);
  assert.equal((await sy.api('DELETE', '/api/routes/tmp')).status, 204);
  // A target Envoy cannot express (a query string): left out of the xDS configuration.
  assert.equal((await sy.api('POST', '/api/routes/query', { target: `${backend.url}/?q=1` })).status, 201);

  // Proxied traffic: 200s, a 404, a dead upstream (503), a malformed path (400).
  for (let i = 0; i < 3; i++) assert.equal((await request(`${sy.proxyUrl}/user/a/x${i}`)).status, 200);
  assert.equal((await request(`${sy.proxyUrl}/nowhere`)).status, 404);
  assert.equal((await request(`${sy.proxyUrl}/dead/x`)).status, 503);
  assert.match(await rawRequest(Number(new URL(sy.proxyUrl).port), 'GET /user/%zz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400/);
  // A body promised and never sent: 408 after --request-body-timeout (a timeout counted).
  assert.match(await rawRequest(Number(new URL(sy.proxyUrl).port), 'POST /user/a/up HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n', 5000), /^HTTP\/1\.1 408/);

  // A websocket, kept open until the second scrape (active connections and websockets).
  const ws = new WebSocket(`${sy.proxyUrl.replace('http', 'ws')}/user/a/ws`);
  closers.push(() => ws.terminate());
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.send('hi');
  await new Promise((r) => ws.once('message', r));

  // An xDS client on ADS: CDS answered and ACKed, a change pushed, then NACKed; kept connected.
  const Req = messageType('envoy.service.discovery.v3.DiscoveryRequest');
  const Res = messageType('envoy.service.discovery.v3.DiscoveryResponse');
  const client = new grpc.Client(`127.0.0.1:${sy.app.ports().xds}`, grpc.credentials.createInsecure());
  closers.push(() => client.close());
  const call = client.makeBidiStreamRequest('/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', (b: Buffer) => b, (b: Buffer) => b);
  closers.push(() => call.cancel());
  call.on('error', () => {});
  const got: { version_info: string; nonce: string }[] = [];
  call.on('data', (b: Buffer) => got.push(Res.toObject(Res.decode(b), TO_OBJECT) as { version_info: string; nonce: string }));
  const send = (r: Record<string, unknown>) => call.write(Buffer.from(Req.encode(Req.fromObject(r)).finish()));
  send({ node: { id: 'metrics-test', cluster: 'c' }, type_url: TYPE.cluster });
  await waitFor(() => got.length === 1, 10_000, 'CDS response');
  send({ type_url: TYPE.cluster, version_info: got[0]!.version_info, response_nonce: got[0]!.nonce });
  assert.equal((await sy.api('POST', '/api/routes/user/b', { target: 'http://10.9.9.9:8888' })).status, 201);
  await waitFor(() => got.length === 2, 10_000, 'CDS push');
  send({ type_url: TYPE.cluster, version_info: got[0]!.version_info, response_nonce: got[1]!.nonce, error_detail: { code: 3, message: 'rejected' } });

  // The store: an entry whose target cannot be used (skipped), then a hand edit that does not parse.
  appendFileSync(file, '\n[routes."/bad"]\ntarget = "ftp://example.com/"\n');
  await waitFor(() => sy.logs.some((l) => /route skipped: its target cannot be used/.test(l)), 5000, 'the unusable entry skipped');
  appendFileSync(file, '\n[routes."/broken"\n');
  await waitFor(async () => (await sy.api('GET', '/api/health')).status === 503, 5000, 'the broken edit noticed');

  // Every listed metric has moved (asynchronous ones: the per-route figures, NACK bookkeeping).
  let after = await scrape();
  await waitFor(async () => {
    after = await scrape();
    return names.every((n) => moved(before, after, n));
  }, 10_000, 'every documented metric to move').catch(() => {});
  const missing = names.filter((n) => seriesOf(after, n).size === 0);
  const still = names.filter((n) => !moved(before, after, n) && !(n in EXERCISED_ELSEWHERE));
  assert.deepEqual(missing, [], 'documented but not exported');
  assert.deepEqual(still, [], 'documented but never moved by the exercise');
  // A few values pinned, so "moved" means what it should.
  assert.equal(after.get('switchyard_store_connected'), 0);
  assert.equal(after.get('switchyard_store_errors_total{op="load"}'), 1);
  assert.equal(after.get('switchyard_xds_nacks_total{type="cds"}'), 1);
  assert.equal(after.get('switchyard_active_websockets'), 1);
  assert.equal(after.get('switchyard_upstream_errors_total{kind="connect",code="ECONNREFUSED"}'), 1);
  assert.equal(after.get('switchyard_timeouts_total{kind="request_body"}'), 1);
  assert.equal(after.get('switchyard_xds_untranslatable_routes'), 1);
});
