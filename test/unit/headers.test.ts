import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IncomingMessage } from 'node:http';
import { responseTransferCodings, rewriteLocation, upstreamPath, upstreamRequestHeaders } from '../../src/dataplane/proxy/headers.js';
import { parseTarget } from '../../src/routing/target.js';

test('upstream path: the four prepend-path / include-prefix combinations (CHP semantics)', () => {
  const withBase = parseTarget('http://127.0.0.1:9000/base');
  const bare = parseTarget('http://127.0.0.1:9000');
  // Route /user/mary (depth 2), request /user/mary/tree?x=1
  const cases = [
    { desc: 'prepend + include (default)', t: withBase, prepend: true, include: true, want: '/base/user/mary/tree?x=1' },
    { desc: 'prepend, no prefix', t: withBase, prepend: true, include: false, want: '/base/tree?x=1' },
    { desc: 'no prepend, include', t: withBase, prepend: false, include: true, want: '/user/mary/tree?x=1' },
    { desc: 'no prepend, no prefix', t: withBase, prepend: false, include: false, want: '/tree?x=1' },
    { desc: 'bare target default', t: bare, prepend: true, include: true, want: '/user/mary/tree?x=1' },
  ];
  for (const c of cases) assert.equal(upstreamPath(c.t, '/user/mary/tree', '?x=1', 2, c.prepend, c.include), c.want, c.desc);
});

test('upstream path: edge cases', () => {
  const withBase = parseTarget('http://h/base/?k=v');
  assert.equal(upstreamPath(withBase, '/user/mary', '', 2, true, false), '/base/?k=v', 'request equals prefix');
  assert.equal(upstreamPath(withBase, '/user/mary', '?a=1', 2, true, false), '/base/?k=v&a=1', 'queries merged');
  assert.equal(upstreamPath(parseTarget('http://h'), '/user/mary', '', 2, false, false), '/', 'nothing left');
  assert.equal(upstreamPath(parseTarget('http://h/b'), '/', '', 0, true, true), '/b/', 'root request');
});

test('location rewrite only for redirects pointing at the target', () => {
  const t = parseTarget('http://127.0.0.1:9000');
  assert.equal(rewriteLocation('http://127.0.0.1:9000/x?y', 302, t, 'hub.example:443', true, undefined), 'http://hub.example:443/x?y');
  assert.equal(rewriteLocation('http://127.0.0.1:9000/x', 301, t, 'hub.example', true, 'https'), 'https://hub.example/x');
  assert.equal(rewriteLocation('http://other:1/x', 302, t, 'hub', true, undefined), undefined);
  assert.equal(rewriteLocation('http://127.0.0.1:9000/x', 200, t, 'hub', true, undefined), undefined);
});

test('targets: schemes and errors', () => {
  assert.equal(parseTarget('http+unix://%2Ftmp%2Fa.sock/p').socketPath, '/tmp/a.sock');
  assert.equal(parseTarget('https://[::1]:8443/').hostname, '::1');
  assert.equal(parseTarget('https://x').port, 443);
  for (const bad of ['ftp://x', 'ws://x', 'not a url', '', 'http://', 'http://a b']) {
    assert.throws(() => parseTarget(bad), /target|scheme/, bad);
  }
  assert.throws(() => parseTarget(42), /Must specify 'target' as string/);
});

/** A request as Node's parser hands it over (req.headers: first Host kept, other repeats joined ", "). */
function fakeReq(raw: string[], opts: { method?: string; host?: string; remote?: string; encrypted?: boolean } = {}): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    if (headers[k] === undefined) headers[k] = raw[i + 1]!;
    else if (k !== 'host') headers[k] += ', ' + raw[i + 1]!;
  }
  // proxy-server.ts sets req.headers.host to the effective Host (an absolute-form authority).
  if (opts.host !== undefined) headers.host = opts.host;
  return {
    method: opts.method ?? 'GET',
    headers,
    rawHeaders: raw,
    socket: { remoteAddress: opts.remote ?? '10.0.0.1', encrypted: opts.encrypted },
  } as unknown as IncomingMessage;
}

/** The upstream list as "name: value" lines with lowercased names, for the names asked about. */
function lines(list: string[], names: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) {
    const n = list[i]!.toLowerCase();
    if (names.includes(n)) out.push(`${n}: ${list[i + 1]}`);
  }
  return out.sort();
}

test('upstream request headers: Connection, client address claims, X-Forwarded-* (table-driven)', () => {
  const target = parseTarget('http://127.0.0.1:9000');
  const on = { xForward: true, changeOrigin: false, customHeaders: [] };
  const off = { xForward: false, changeOrigin: false, customHeaders: [] };
  const XF = ['host', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-proto'];
  const cases: { desc: string; raw: string[]; opts?: Parameters<typeof fakeReq>[1]; h?: typeof on; names: string[]; want: string[] }[] = [
    {
      desc: 'CHP 5.3 xfwd: X-Forwarded-For lines joined ", ", the peer appended with ","; X-Forwarded-Host from Host',
      raw: ['Host', 'hub.example:8443', 'X-Forwarded-For', '203.0.113.9', 'X-Forwarded-For', '198.51.100.7'],
      names: XF,
      want: ['host: hub.example:8443', 'x-forwarded-for: 203.0.113.9, 198.51.100.7,10.0.0.1', 'x-forwarded-host: hub.example:8443', 'x-forwarded-port: 8443', 'x-forwarded-proto: http'],
    },
    {
      desc: 'CHP 5.3 xfwd: a client X-Forwarded-Host not named in Connection is kept',
      raw: ['Host', 'a', 'X-Forwarded-Host', 'front'],
      names: ['x-forwarded-host'],
      want: ['x-forwarded-host: front'],
    },
    {
      desc: 'RFC 9110 §7.6.1: Connection: X-Forwarded-Host drops the client value, the proxy sets its own',
      raw: ['Host', 'a', 'X-Forwarded-Host', 'evil', 'Connection', 'X-Forwarded-Host'],
      names: ['x-forwarded-host', 'connection'],
      want: ['x-forwarded-host: a'],
    },
    {
      desc: 'RFC 9110 §7.6.1: Connection: X-Forwarded-For/-Port/-Proto drop the client values before the proxy appends',
      raw: ['Host', 'a:81', 'X-Forwarded-For', '1.2.3.4', 'X-Forwarded-Port', '1', 'X-Forwarded-Proto', 'gopher', 'Connection', 'close, X-Forwarded-For, x-forwarded-port,X-FORWARDED-PROTO'],
      names: XF,
      want: ['host: a:81', 'x-forwarded-for: 10.0.0.1', 'x-forwarded-host: a:81', 'x-forwarded-port: 81', 'x-forwarded-proto: http'],
    },
    {
      desc: '--no-x-forward: Connection: X-Forwarded-Host drops the client value and nothing is added',
      raw: ['Host', 'a', 'X-Forwarded-Host', 'evil', 'X-Forwarded-For', '1.2.3.4', 'Connection', 'X-Forwarded-Host'],
      h: off,
      names: XF,
      want: ['host: a', 'x-forwarded-for: 1.2.3.4'],
    },
    {
      desc: 'Connection cannot remove Host or Content-Length (routing and framing rely on them)',
      raw: ['Host', 'a', 'Content-Length', '3', 'Connection', 'Host, Content-Length, Transfer-Encoding'],
      opts: { method: 'POST' },
      names: ['host', 'content-length', 'connection', 'transfer-encoding'],
      want: ['content-length: 3', 'host: a'],
    },
    {
      desc: 'Forwarded and X-Real-IP from the client are dropped (a client must not claim an address)',
      raw: ['Host', 'a', 'Forwarded', 'for=1.1.1.1', 'X-Real-IP', '2.2.2.2', 'x-real-ip', '3.3.3.3'],
      names: ['forwarded', 'x-real-ip', 'x-forwarded-for'],
      want: ['x-forwarded-for: 10.0.0.1'],
    },
    {
      desc: 'Forwarded and X-Real-IP are dropped with --no-x-forward too',
      raw: ['Host', 'a', 'Forwarded', 'for=1.1.1.1', 'X-Real-IP', '2.2.2.2'],
      h: off,
      names: ['forwarded', 'x-real-ip', 'x-forwarded-for'],
      want: [],
    },
    {
      desc: 'RFC 9112 §3.2.2: the effective Host (absolute-form authority) replaces the Host line, X-Forwarded-Host/-Port follow it',
      raw: ['Host', 'alice.example', 'X-A', '1'],
      opts: { host: 'bob.example:8000' },
      names: XF,
      want: ['host: bob.example:8000', 'x-forwarded-for: 10.0.0.1', 'x-forwarded-host: bob.example:8000', 'x-forwarded-port: 8000', 'x-forwarded-proto: http'],
    },
    {
      desc: 'absolute-form in HTTP/1.0 without a Host line: the authority is sent as Host',
      raw: [],
      opts: { host: 'bob.example' },
      names: ['host'],
      want: ['host: bob.example'],
    },
    {
      desc: 'HTTP/1.0 without Host: the target\'s host',
      raw: [],
      names: ['host', 'x-forwarded-host'],
      want: ['host: 127.0.0.1:9000', 'x-forwarded-host: '],
    },
    {
      desc: '--change-origin: the target\'s host, X-Forwarded-Host keeps the client\'s',
      raw: ['Host', 'hub.example'],
      h: { ...on, changeOrigin: true },
      names: ['host', 'x-forwarded-host'],
      want: ['host: 127.0.0.1:9000', 'x-forwarded-host: hub.example'],
    },
    {
      desc: 'TLS client: X-Forwarded-Proto https, port 443 when Host has none',
      raw: ['Host', 'hub.example'],
      opts: { encrypted: true },
      names: ['x-forwarded-proto', 'x-forwarded-port'],
      want: ['x-forwarded-port: 443', 'x-forwarded-proto: https'],
    },
  ];
  for (const c of cases) {
    const list = upstreamRequestHeaders(fakeReq(c.raw, c.opts), target, c.h ?? on, false);
    assert.deepEqual(lines(list, c.names), [...c.want].sort(), c.desc);
  }
});

test('upstream request headers for an upgrade: Connection/Upgrade set by the proxy, client claims dropped', () => {
  const target = parseTarget('http://127.0.0.1:9000');
  const r = fakeReq(['Host', 'a', 'Connection', 'Upgrade, X-Forwarded-Host', 'Upgrade', 'websocket', 'X-Forwarded-Host', 'evil', 'X-Real-IP', '1.1.1.1']);
  const list = upstreamRequestHeaders(r, target, { xForward: true, changeOrigin: false, customHeaders: [] }, true);
  assert.deepEqual(lines(list, ['connection', 'upgrade', 'x-forwarded-host', 'x-real-ip', 'host']), ['connection: upgrade', 'host: a', 'upgrade: websocket', 'x-forwarded-host: a']);
});

test('response Transfer-Encoding: chunked last and once, other codings kept, anything llhttp might frame otherwise refused', () => {
  const cases: [string, { chunked: boolean; codings: string | undefined } | undefined][] = [
    ['chunked', { chunked: true, codings: undefined }],
    ['Chunked', { chunked: true, codings: undefined }],
    ['gzip, chunked', { chunked: true, codings: 'gzip' }],
    ['gzip,chunked', { chunked: true, codings: 'gzip' }],
    [' gzip ;q=1 ,\t, x-y , chunked\t', { chunked: true, codings: 'gzip ;q=1, x-y' }],
    ['gzip', { chunked: false, codings: 'gzip' }],
    ['gzip, deflate', { chunked: false, codings: 'gzip, deflate' }],
    [',', { chunked: false, codings: undefined }],
    ['chunked, gzip', undefined], // not last (§6.3 would read to the close; refused here)
    ['chunked, chunked', undefined], // twice (§6.1)
    ['chunked;x=1, chunked', undefined], // chunked has no parameters
    ['gzip, chunked;x=1', undefined],
    ['gzip, chunked\xa0', undefined], // U+00A0 is no whitespace to llhttp: not "chunked", not a token
    ['g zip, chunked', undefined],
    ['gzip, "chunked"', undefined],
  ];
  for (const [te, want] of cases) assert.deepEqual(responseTransferCodings(te), want, JSON.stringify(te));
});
