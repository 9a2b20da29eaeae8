// Access log and metrics through the real CLI with data-plane workers: every request and websocket
// logged once with route/upstream/status/bytes/duration, lines from several workers never
// interleave, per-route Prometheus series only when asked for, and the route propagation histogram.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { REFUSED_PORT, listen0, nextEvent, rawRequest, request, startBackend, startSwitchyard, startSwitchyardProcess, waitFor } from '../helpers/servers.js';

interface Line {
  kind: string;
  method: string;
  url: string;
  status: number;
  bytes: number;
  duration_ms: number;
  route: string | null;
  upstream: string | null;
  remote: string;
  host: string;
  protocol: string;
}

test('--access-log FILE (json) with 2 workers: one line per request and websocket; per-route metrics', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-obs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'access.log');
  const backend = await startBackend(t, 'A', undefined, { ws: true });
  const sy = await startSwitchyardProcess(t, ['--metrics-ip', '127.0.0.1', '--metrics-port', '0', '--workers', '2', '--access-log', file,
    '--metrics-route-labels', '--dashboard-interval', '100'], { CONFIGPROXY_AUTH_TOKEN: 't' });
  const { api, proxyPort: port, metricsPort } = sy;
  const dead = `http://127.0.0.1:${REFUSED_PORT}`;
  assert.equal((await api('POST', '/api/routes/user/a', { target: backend.url })).status, 201);
  assert.equal((await api('POST', '/api/routes/dead', { target: dead })).status, 201);

  for (let i = 0; i < 20; i++) assert.equal((await request(`http://127.0.0.1:${port}/user/a/x${i}?token=SECRET&n=${i}`)).status, 200);
  for (let i = 0; i < 3; i++) assert.equal((await request(`http://127.0.0.1:${port}/dead/y`)).status, 503);
  for (let i = 0; i < 2; i++) assert.equal((await request(`http://127.0.0.1:${port}/nowhere`)).status, 404);
  const ws = new WebSocket(`ws://127.0.0.1:${port}/user/a/ws`);
  await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
  ws.send('x'.repeat(1000));
  await new Promise((r) => ws.once('message', r));
  ws.close();
  await new Promise((r) => ws.once('close', r));

  const read = (): Line[] => {
    try {
      return readFileSync(file, 'utf8').trimEnd().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
    } catch {
      return [];
    }
  };
  await waitFor(() => read().length >= 26, 10_000, '26 access log lines');
  // Per-route series while the process runs (summed over both workers; workers send their deltas
  // asynchronously, so wait until every expected series has its final value).
  const perRoute = [
    /switchyard_route_requests_total\{route="\/user\/a",code="2xx"\} 20\n/,
    /switchyard_route_requests_total\{route="\/user\/a",code="1xx"\} 1\n/,
    /switchyard_route_requests_total\{route="\/dead",code="5xx"\} 3\n/,
    /switchyard_route_request_duration_seconds_count\{route="\/user\/a"\} 21\n/,
  ];
  let m = '';
  await waitFor(async () => {
    m = (await request(`http://127.0.0.1:${metricsPort}/metrics`)).body;
    return perRoute.every((re) => re.test(m));
  }, 5000, 'per-route series: 20 2xx, 1 1xx, 3 5xx, 21 durations').catch(() => {});
  for (const re of perRoute) assert.match(m, re);
  // Barrier for "none twice": a graceful stop flushes every worker's log, and nothing is written after exit.
  sy.proc.kill('SIGTERM');
  assert.equal(await sy.exited, 0);
  const lines = read();
  assert.equal(lines.length, 26, 'each request once, none twice');
  const ok = lines.filter((l) => l.status === 200);
  assert.equal(ok.length, 20);
  for (const l of ok) {
    assert.equal(l.kind, 'web');
    assert.equal(l.method, 'GET');
    assert.equal(l.route, '/user/a');
    assert.equal(l.upstream, backend.url);
    assert.equal(l.remote, '127.0.0.1');
    assert.equal(l.protocol, 'HTTP/1.1');
    assert.ok(l.bytes > 100, 'status line, headers and body counted');
    assert.ok(l.duration_ms > 0 && l.duration_ms < 5000);
    assert.match(l.url, /^\/user\/a\/x\d+\?token=\[redacted\]&n=\d+$/);
  }
  assert.ok(!readFileSync(file, 'utf8').includes('SECRET'), 'query-string secrets never reach the log');
  assert.deepEqual(lines.filter((l) => l.status === 503).map((l) => [l.route, l.upstream]), Array(3).fill(['/dead', dead]));
  assert.deepEqual(lines.filter((l) => l.status === 404).map((l) => [l.route, l.upstream]), [[null, null], [null, null]]);
  const wsLine = lines.find((l) => l.kind === 'ws')!;
  assert.equal(wsLine.status, 101);
  assert.equal(wsLine.route, '/user/a');
  assert.ok(wsLine.bytes > 1000, `tunnel bytes counted (${wsLine.bytes})`);
  // Read at the 101, written at the close: the request's fields, not what a closed socket says.
  assert.deepEqual([wsLine.remote, wsLine.method, wsLine.url], ['127.0.0.1', 'GET', '/user/a/ws']);

  // Metrics summed over both workers, per-route series on request.
  assert.match(m, /switchyard_requests_total\{kind="web",code="200"\} 20\n/);
  assert.match(m, /switchyard_requests_total\{kind="ws",code="101"\} 1\n/);
  assert.match(m, /switchyard_route_propagation_seconds_count 2\n/);
  assert.match(m, /switchyard_request_duration_seconds_bucket\{le="\+Inf",kind="web"\} 25\n/);
  assert.match(m, /switchyard_active_connections \d+\n/);
  assert.match(m, /switchyard_routes 2\n/);
});

test('per-route series are opt-in; a client that leaves first is logged as 499', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-obs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'access.log');
  const slow = http.createServer(() => {}); // never answers: the client leaves first
  const slowPort = await listen0(slow);
  t.after(() => {
    slow.closeAllConnections();
    return new Promise((r) => slow.close(r));
  });
  const sy = await startSwitchyard(t, ['--metrics-ip', '127.0.0.1', '--metrics-port', '0', '--access-log', file, '--access-log-format', 'combined']);
  await sy.api('POST', '/api/routes/slow', { target: `http://127.0.0.1:${slowPort}` });
  const arrived = nextEvent(slow, 'request');
  const req = http.get(`${sy.proxyUrl}/slow/x`, { agent: false });
  req.on('error', () => {});
  await arrived; // barrier: the request is at the upstream, waiting
  req.destroy();
  await waitFor(() => {
    try {
      return readFileSync(file, 'utf8').includes(' 499 ');
    } catch {
      return false;
    }
  }, 5000, '499 line');
  const line = readFileSync(file, 'utf8').trim();
  assert.match(line, /^127\.0\.0\.1 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/slow\/x HTTP\/1\.1" 499 \d+ "-" "-" rt=0\.\d{3} route="\/slow" upstream="http:\/\/127\.0\.0\.1:\d+" kind=web$/);
  const m = (await request(`${sy.metricsUrl}/metrics`)).body;
  assert.ok(!m.includes('switchyard_route_requests_total'), 'no per-route series without --metrics-route-labels');
  assert.match(m, /switchyard_route_propagation_seconds_count 1\n/);
});

test('--access-log - (stdout, combined) with 2 workers under concurrent load: every line whole', { timeout: 60_000 }, async (t) => {
  const backend = await startBackend(t, 'A');
  const sy = await startSwitchyardProcess(t, ['--workers', '2', '--access-log', '-', '--access-log-format', 'combined', '--default-target', backend.url]);
  const port = sy.proxyPort;
  const accessLines = () => sy.stdout().split('\n').filter(Boolean);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  t.after(() => agent.destroy());
  const N = 3000;
  let next = 0;
  const worker = async () => {
    while (next < N) {
      const i = next++;
      await new Promise<void>((resolve, reject) => {
        http.get(`http://127.0.0.1:${port}/load/${i}/${'p'.repeat(i % 200)}`, { agent, headers: { 'user-agent': `ua-${i}` } }, (res) => {
          res.resume();
          res.on('end', resolve);
        }).on('error', reject);
      });
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  await waitFor(() => accessLines().length >= N, 10_000, `${N} lines on stdout`);
  sy.proc.kill('SIGTERM'); // barrier: after a graceful exit no further line can be written
  assert.equal(await sy.exited, 0);
  const lines = accessLines();
  assert.equal(lines.length, N);
  const re = /^127\.0\.0\.1 - - \[[^\]]+\] "GET \/load\/(\d+)\/p* HTTP\/1\.1" 200 \d+ "-" "ua-(\d+)" rt=\d+\.\d{3} route="\/" upstream="http:\/\/127\.0\.0\.1:\d+" kind=web$/;
  const seen = new Set<number>();
  for (const l of lines) {
    const m = re.exec(l);
    assert.ok(m, `well-formed line: ${l.slice(0, 200)}`);
    assert.equal(m[1], m[2], 'one request per line');
    seen.add(Number(m[1]));
  }
  assert.equal(seen.size, N, 'every request exactly once');
});

test('requests the HTTP parser refuses are answered as Node does, counted, and access-logged', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-obs-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'access.log');
  const backend = await startBackend(t, 'A');
  const sy = await startSwitchyard(t, ['--metrics-ip', '127.0.0.1', '--metrics-port', '0', '--access-log', file, '--default-target', backend.url]);
  const port = Number(new URL(sy.proxyUrl).port);
  const bad = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n');
  assert.match(bad, /^HTTP\/1\.1 400 Bad Request\r\nConnection: close\r\n\r\n$/);
  const huge = await rawRequest(port, `GET / HTTP/1.1\r\nHost: h\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  assert.match(huge, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
  assert.equal((await request(`${sy.proxyUrl}/fine`)).status, 200, 'others unaffected');
  await waitFor(() => {
    try {
      return readFileSync(file, 'utf8').trim().split('\n').length >= 3;
    } catch {
      return false;
    }
  }, 5000, 'three access log lines');
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);
  assert.deepEqual(lines.map((l) => [l.status, l.method]).sort(), [[200, 'GET'], [400, '-'], [431, '-']]);
  assert.ok(lines.find((l) => l.status === 400)!.bytes > 30);
  const m = (await request(`${sy.metricsUrl}/metrics`)).body;
  assert.match(m, /switchyard_bad_requests_total 2\n/);
  assert.match(m, /switchyard_requests_total\{kind="web",code="431"\} 1\n/);
});
