// Translation of routing tables into Envoy resources: golden files (test/golden/envoy/*.json,
// rewritten only by `npm run golden`, then reviewed), the CHP path semantics checked one by one,
// and every resource checked against Envoy's protos and their validate.rules.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TO_OBJECT, TYPE, messageType, toAny } from '../../src/dataplane/envoy/protos.js';
import { buildSnapshot, createSnapshotBuilder, type Snapshot } from '../../src/dataplane/envoy/snapshot.js';
import { translateTable, type EnvoyResources, type TranslateOptions } from '../../src/dataplane/envoy/translate.js';
import { RoutingTable, type RouteData } from '../../src/routing/table.js';
import { validateEncoded } from '../helpers/pgv.js';
import { expectGoldenJson } from '../helpers/golden.js';

const BASE: TranslateOptions = {
  prependPath: true,
  includePrefix: true,
  hostRouting: false,
  listenerAddress: '0.0.0.0',
  listenerPort: 8000,
  grpcListenerNames: ['switchyard'],
  upstreamCaFile: '/etc/ssl/certs/ca-certificates.crt',
  accessLogPath: '/dev/stdout',
};

const ROUTES: [string, string][] = [
  ['/', 'http://10.0.0.1:8081'],
  ['/user/mary', 'http://10.0.1.5:12345'],
  ['/user/bob', 'http://hub.internal:8888/base'],
  ['/hub/api', 'https://api.example.org'],
  ['/worker/a b', 'http://10.0.1.5:12345'],
  ['/user/mary/lab', 'http://[fd00::7]:9000/'],
  ['/unix', 'http+unix://%2Ftmp%2Fs.sock'],
  ['/q', 'http://10.0.0.9/x?token=1'],
];

function table(routes: [string, string][], hostRouting = false): RoutingTable {
  return RoutingTable.build({ hostRouting }, routes.map(([p, t]): [string, RouteData] => [p, { target: t }]), 7);
}

function golden(name: string, res: EnvoyResources): void {
  expectGoldenJson(`envoy/${name}.json`, res);
}

function allValid(res: EnvoyResources): void {
  const lists: [string, Record<string, unknown>[]][] = [
    [TYPE.cluster, res.clusters],
    [TYPE.endpoint, res.endpoints],
    [TYPE.listener, res.listeners],
    [TYPE.route, res.routes],
  ];
  for (const [type, list] of lists) {
    for (const r of list) {
      const any = toAny(type, r);
      assert.deepEqual(validateEncoded(type, any.value), [], `${type} ${String(r.name ?? r.cluster_name)} violates validate.rules`);
    }
  }
}

type RouteEntry = { name: string; match: Record<string, string>; route: { cluster: string; prefix_rewrite?: string } };
const vhost = (res: EnvoyResources, name: string): RouteEntry[] =>
  ((res.routes[0]!.virtual_hosts as { name: string; routes: RouteEntry[] }[]).find((v) => v.name === name)!).routes;
const entry = (routes: RouteEntry[], match: string): RouteEntry => routes.find((r) => Object.values(r.match)[0] === match)!;

test('default flags: segment-prefix pairs, deepest first, clusters per origin, untranslatable reported', () => {
  const res = translateTable(table(ROUTES), BASE);
  golden('default', res);
  allValid(res);
  const routes = vhost(res, 'default');
  const order = routes.map((r) => Object.values(r.match)[0]);
  assert.deepEqual(order.slice(0, 2), ['/user/mary/lab', '/user/mary/lab/'], 'deepest key first');
  assert.equal(order.at(-1), '/', 'root last');
  assert.ok(order.indexOf('/user/mary/lab/') < order.indexOf('/user/mary/'));
  assert.deepEqual(entry(routes, '/user/mary/').match, { prefix: '/user/mary/' });
  assert.deepEqual(entry(routes, '/user/mary').match, { path: '/user/mary' }, 'no "/user/maryann" match');
  assert.equal(entry(routes, '/user/mary/').route.prefix_rewrite, undefined, 'no rewrite when the path is unchanged');
  assert.equal(entry(routes, '/user/bob/').route.prefix_rewrite, '/base/user/bob/', 'target path prepended');
  assert.equal(entry(routes, '/user/bob').route.prefix_rewrite, '/base/user/bob');
  assert.ok(entry(routes, '/worker/a%20b/'), 'segments percent-encoded as on the wire');
  assert.deepEqual(res.clusters.map((c) => [c.name, c.type]), [
    ['http_10.0.0.1_8081', 'EDS'],
    ['http_10.0.1.5_12345', 'EDS'],
    ['http_fd00::7_9000', 'EDS'],
    ['http_hub.internal_8888', 'LOGICAL_DNS'],
    ['https_api.example.org_443', 'LOGICAL_DNS'],
  ]);
  assert.equal(res.endpoints.length, 3, 'a ClusterLoadAssignment per EDS cluster');
  assert.deepEqual(res.untranslatable.map((u) => u.path).sort(), ['/q', '/unix']);
  assert.deepEqual(res.listeners.map((l) => l.name), ['switchyard_http', 'switchyard']);
});

test('--no-include-prefix and --no-prepend-path map onto prefix_rewrite as CHP forwards', () => {
  const t = table([['/user/bob', 'http://10.0.0.2:80/base'], ['/', 'http://10.0.0.1/root']]);
  const noInc = translateTable(t, { ...BASE, includePrefix: false });
  golden('no-include-prefix', noInc);
  allValid(noInc);
  let r = vhost(noInc, 'default');
  assert.equal(entry(r, '/user/bob/').route.prefix_rewrite, '/base/', '/user/bob/x -> /base/x');
  assert.equal(entry(r, '/user/bob').route.prefix_rewrite, '/base', '/user/bob -> /base');
  assert.equal(entry(r, '/').route.prefix_rewrite, '/root/');
  const noPre = translateTable(t, { ...BASE, prependPath: false });
  r = vhost(noPre, 'default');
  assert.equal(entry(r, '/user/bob/').route.prefix_rewrite, undefined, 'target path ignored, prefix kept');
  assert.equal(entry(r, '/').route.prefix_rewrite, undefined);
  const neither = translateTable(t, { ...BASE, prependPath: false, includePrefix: false });
  golden('no-prepend-no-include', neither);
  r = vhost(neither, 'default');
  assert.equal(entry(r, '/user/bob/').route.prefix_rewrite, '/', '/user/bob/x -> /x');
  assert.equal(entry(r, '/user/bob').route.prefix_rewrite, '/');
});

test('--host-routing: a virtual host per routing host, an api_listener per host, timeouts', () => {
  const t = table([['/Example.com/app', 'http://10.0.0.3:81'], ['/example.com', 'http://10.0.0.4:82'], ['/other.org', 'http://10.0.0.5:83'], ['/', 'http://10.0.0.1']], true);
  const res = translateTable(t, { ...BASE, hostRouting: true, proxyTimeoutMs: 2500, streamIdleTimeoutMs: 60000 });
  golden('host-routing', res);
  allValid(res);
  const vhs = res.routes[0]!.virtual_hosts as { name: string; domains: string[] }[];
  assert.deepEqual(vhs.map((v) => [v.name, v.domains]), [
    ['host:example.com', ['example.com', 'example.com:*']],
    ['host:other.org', ['other.org', 'other.org:*']],
    ['default', ['*']],
  ]);
  const ex = vhost(res, 'host:example.com');
  assert.deepEqual(ex.map((e) => Object.values(e.match)[0]), ['/app', '/app/', '/']);
  assert.deepEqual(res.listeners.map((l) => l.name), ['switchyard_http', 'example.com', 'other.org', 'switchyard']);
  assert.deepEqual((ex[0]!.route as unknown as { idle_timeout: unknown }).idle_timeout, { seconds: 2, nanos: 500000000 });
});

test('empty table: valid resources (listener, empty default virtual host), stable versions', () => {
  const res = translateTable(table([]), BASE);
  allValid(res);
  assert.equal(res.clusters.length, 0);
  const a = buildSnapshot(res, 1);
  const b = buildSnapshot(translateTable(table([]), BASE), 99);
  for (const t of Object.values(TYPE)) assert.equal(a.types.get(t)!.version, b.types.get(t)!.version, 'same content, same version');
  const c = buildSnapshot(translateTable(table([['/x', 'http://10.0.0.1']]), BASE), 2);
  assert.notEqual(c.types.get(TYPE.route)!.version, a.types.get(TYPE.route)!.version);
});

test('the validator catches what Envoy would reject', () => {
  const bad = toAny(TYPE.cluster, { name: '', connect_timeout: { seconds: 0 }, type: 'EDS' });
  const errs = validateEncoded(TYPE.cluster, bad.value);
  assert.ok(errs.some((e) => /name: string.min_len/.test(e)), errs.join('\n'));
  const badAddr = toAny(TYPE.endpoint, { cluster_name: 'c', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '', port_value: 70000 } } } }] }] });
  const e2 = validateEncoded(TYPE.endpoint, badAddr.value);
  assert.ok(e2.some((e) => /address: string.min_len/.test(e)) && e2.some((e) => /port_value: must be <= 65535/.test(e)), e2.join('\n'));
});

test('the incremental snapshot builder gives exactly the reference encoding, table after table', () => {
  const decoded = (sn: Snapshot) =>
    Object.fromEntries([...sn.types].map(([t, ts]) => [t, [...ts.resources.values()].map((r) => {
      const m = messageType(r.any.type_url);
      return m.toObject(m.decode(r.any.value), TO_OBJECT);
    })]));
  for (const opts of [BASE, { ...BASE, includePrefix: false, proxyTimeoutMs: 1500 }, { ...BASE, hostRouting: true }]) {
    const build = createSnapshotBuilder(opts);
    let t = table([], opts.hostRouting);
    const steps: [string, string | null][] = [
      ...ROUTES.map(([p, target]): [string, string | null] => [opts.hostRouting ? `/h${p.length % 3}.example${p}` : p, target]),
      ['/user/mary', 'http://10.9.9.9:1'], ['/worker/a b', null], ['/user/bob', null], ['/new', 'http://hub.internal:8888/x'],
    ];
    for (const [i, [path, target]] of steps.entries()) {
      t = t.apply([target === null ? { type: 'delete', path } : { type: 'put', path, data: { target } }], i + 1);
      const fast = build(t);
      const ref = buildSnapshot(translateTable(t, opts), t.version);
      assert.deepEqual(decoded(fast), decoded(ref), `step ${i} (${path})`);
      for (const type of Object.values(TYPE)) {
        const a = fast.types.get(type)!, b = ref.types.get(type)!;
        assert.deepEqual([...a.resources.keys()], [...b.resources.keys()]);
      }
      assert.deepEqual(fast.untranslatable, ref.untranslatable);
    }
  }
});

test('the socket listener normalises paths as Switchyard does (proto fields, encoded and validated)', () => {
  const res = translateTable(table(ROUTES), BASE);
  allValid(res);
  const socket = res.listeners.find((l) => l.name === 'switchyard_http')!;
  // Through the real encoding: field names and enum values must exist in Envoy's proto, or
  // protobufjs would drop or refuse them.
  const any = toAny(TYPE.listener, socket);
  const lm = messageType(TYPE.listener);
  const listener = lm.toObject(lm.decode(any.value), { ...TO_OBJECT, defaults: true }) as {
    filter_chains: { filters: { typed_config: { type_url: string; value: Uint8Array } }[] }[];
  };
  const hcmAny = listener.filter_chains[0]!.filters[0]!.typed_config;
  const hm = messageType(hcmAny.type_url);
  const hcm = hm.toObject(hm.decode(hcmAny.value), { ...TO_OBJECT, defaults: true }) as Record<string, unknown>;
  const cases: { desc: string; field: string; want: unknown }[] = [
    { desc: 'RFC 3986 6.2.2.3: dot segments resolved before routing and in the upstream :path (request-path.ts)', field: 'normalize_path', want: { value: true } },
    { desc: 'adjacent slashes are not merged: Switchyard routes "//" as an empty segment', field: 'merge_slashes', want: false },
    { desc: '%2F/%5C kept escaped inside their segment (never a separator), as Switchyard', field: 'path_with_escaped_slashes_action', want: 'KEEP_UNCHANGED' },
  ];
  for (const c of cases) assert.deepEqual(hcm[c.field], c.want, c.desc);
  // The same in every table shape (host routing, flags), and the api_listeners (proxyless gRPC) stay plain.
  for (const opts of [BASE, { ...BASE, hostRouting: true }, { ...BASE, includePrefix: false, accessLogPath: '' }]) {
    const r = translateTable(table([['/a', 'http://10.0.0.1']], opts.hostRouting), opts);
    allValid(r);
    const tc = (((r.listeners[0]!.filter_chains as Record<string, unknown>[])[0]!.filters as Record<string, unknown>[])[0]!.typed_config) as Record<string, unknown>;
    assert.equal(tc.normalize_path !== undefined && (tc.normalize_path as { value: boolean }).value, true);
    assert.equal(tc.merge_slashes, false);
    assert.equal(tc.path_with_escaped_slashes_action, 'KEEP_UNCHANGED');
  }
});
