// The fast path's timers (fast-path.ts): the client connection's keep-alive timeout and --timeout,
// and the idle timeout of pooled upstream connections. None of them is re-armed per request (a
// socket.setTimeout() or timer refresh per request was measurable CPU), so what each must still do
// is checked here end to end: `--workers 1` (one event loop), a raw upstream that holds or answers
// requests on command and records its connections, raw clients.

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { listen0, request, startSwitchyardProcess, waitFor, type SpawnedSwitchyard, type TestContextLike } from '../helpers/servers.js';

interface Upstream {
  port: number;
  /** Requests received, in order: path and the upstream connection's number. */
  seen: { path: string; conn: number }[];
  /** Connections opened, and which of them are closed. */
  opened: number;
  closed: Set<number>;
  /** Answer every held request (paths starting with /t/held) now. */
  release(): void;
}

async function startUpstream(t: TestContextLike): Promise<Upstream> {
  const held: (() => void)[] = [];
  const up: Upstream = {
    port: 0,
    seen: [],
    opened: 0,
    closed: new Set(),
    release() {
      for (const answer of held.splice(0)) answer();
    },
  };
  const socks = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    const id = ++up.opened;
    socks.add(sock);
    sock.on('close', () => {
      socks.delete(sock);
      up.closed.add(id);
    });
    sock.on('error', () => {});
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end !== -1; end = buf.indexOf('\r\n\r\n')) {
        const path = buf.slice(0, end).split(' ')[1]!;
        buf = buf.slice(end + 4);
        up.seen.push({ path, conn: id });
        const answer = (): void => void sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`);
        if (path.startsWith('/t/held')) held.push(answer);
        else answer();
      }
    });
  });
  up.port = await listen0(server);
  t.after(() => {
    for (const s of socks) s.destroy();
    server.close();
  });
  return up;
}

/** A raw client connection: what it received, and whether (and when, relative to data) it closed. */
function client(port: number): { sock: net.Socket; received: () => string; closed: () => boolean; send(s: string): void } {
  const sock = net.connect(port, '127.0.0.1');
  let got = '';
  let closed = false;
  sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
  sock.on('error', () => {});
  sock.on('close', () => (closed = true));
  return { sock, received: () => got, closed: () => closed, send: (s) => void sock.write(s) };
}

async function timeouts(sy: SpawnedSwitchyard): Promise<Record<string, number>> {
  const text = (await request(`${sy.metricsUrl!}/metrics`)).body;
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^switchyard_timeouts_total\{kind="([a-z_]+)"\} (\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

const METRICS = ['--metrics-port', '0', '--metrics-ip', '127.0.0.1'];

test('keep-alive timeout: idle fast-path connections are closed and counted; a request in flight outlives it (no --timeout)', { timeout: 60_000 }, async (t) => {
  const up = await startUpstream(t);
  const sy = await startSwitchyardProcess(t, ['--workers', '1', '--keep-alive-timeout', '300', ...METRICS]);
  assert.equal((await sy.api('POST', '/api/routes/t', { target: `http://127.0.0.1:${up.port}` })).status, 201);
  // A: a request the upstream holds.
  const a = client(sy.proxyPort);
  a.send('GET /t/held HTTP/1.1\r\nHost: a\r\n\r\n');
  await waitFor(() => up.seen.some((s) => s.path === '/t/held'), 10_000, 'the held request upstream');
  // W: a request answered at once, then idle. Its last activity comes after A's, so once the
  // proxy closed W for its keep-alive timeout, A's connection has been idle longer than that too.
  const w = client(sy.proxyPort);
  w.send('GET /t/w HTTP/1.1\r\nHost: a\r\n\r\n');
  await waitFor(() => w.received().endsWith('/t/w'), 10_000, "W's answer");
  await waitFor(() => w.closed(), 10_000, 'W closed by the keep-alive timeout');
  assert.equal(a.closed(), false, 'a connection with a request in flight is not closed by the keep-alive timeout');
  up.release();
  await waitFor(() => a.received().endsWith('/t/held'), 10_000, "A's answer");
  assert.match(a.received(), /^HTTP\/1\.1 200 OK\r\n/);
  // Then A is idle: closed after the keep-alive timeout in turn.
  await waitFor(() => a.closed(), 10_000, 'A closed by the keep-alive timeout');
  const counted = await timeouts(sy);
  assert.equal(counted.keep_alive, 2, JSON.stringify(counted));
  assert.equal(counted.client_idle ?? 0, 0, JSON.stringify(counted));
});

test('--timeout: a fast-path request whose upstream stays silent is cut, counted as client_idle', { timeout: 60_000 }, async (t) => {
  const up = await startUpstream(t);
  const sy = await startSwitchyardProcess(t, ['--workers', '1', '--timeout', '300', ...METRICS]);
  assert.equal((await sy.api('POST', '/api/routes/t', { target: `http://127.0.0.1:${up.port}` })).status, 201);
  // One request answered first: the connection then carries the keep-alive timeout (5 s), and the
  // next request must switch it to --timeout.
  const a = client(sy.proxyPort);
  a.send('GET /t/first HTTP/1.1\r\nHost: a\r\n\r\n');
  await waitFor(() => a.received().endsWith('/t/first'), 10_000, 'the first answer');
  const before = a.received().length;
  a.send('GET /t/held HTTP/1.1\r\nHost: a\r\n\r\n');
  await waitFor(() => a.closed(), 10_000, 'the connection cut by --timeout');
  assert.equal(a.received().length, before, 'nothing of the held request was answered');
  const counted = await timeouts(sy);
  assert.equal(counted.client_idle, 1, JSON.stringify(counted));
  assert.equal(counted.keep_alive ?? 0, 0, JSON.stringify(counted));
  // The held upstream exchange was given up: its connection closed by the proxy.
  await waitFor(() => up.closed.has(up.seen.find((s) => s.path === '/t/held')!.conn), 10_000, 'the held upstream connection closed');
});

test('pooled upstream connections are closed after their idle period (4 s), also after being reused', { timeout: 60_000 }, async (t) => {
  const up = await startUpstream(t);
  const sy = await startSwitchyardProcess(t, ['--workers', '1', '--keep-alive-timeout', '60000']);
  assert.equal((await sy.api('POST', '/api/routes/t', { target: `http://127.0.0.1:${up.port}` })).status, 201);
  const a = client(sy.proxyPort);
  for (const path of ['/t/1', '/t/2', '/t/3']) {
    a.send(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
    await waitFor(() => a.received().endsWith(path), 10_000, `the answer to ${path}`);
  }
  // One upstream connection carried all three (taken from the pool twice).
  assert.deepEqual(up.seen.map((s) => s.conn), [1, 1, 1]);
  const t0 = Date.now();
  await waitFor(() => up.closed.has(1), 15_000, 'the pooled upstream connection closed once idle');
  const idleFor = Date.now() - t0;
  assert.ok(idleFor > 2_000, `closed only once idle (after ${idleFor} ms)`);
  assert.equal(a.closed(), false);
});
