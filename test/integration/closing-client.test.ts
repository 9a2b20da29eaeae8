// A client that keeps sending after the proxy decided to close its connection (fast path,
// `--workers 1`: the proxy runs in the spawned process). The bytes after the closing request are
// discarded, not buffered: the proxy's RSS stays flat while the client streams 64 MiB, the
// requests pipelined before the closing one are answered in order, exactly once each, and the
// connection is ended (FIN right after the answer) and closed within a bounded time.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { test } from 'node:test';
import { nextEvent, request, startBackend, startHeldBackend, startSwitchyardProcess, waitFor } from '../helpers/servers.js';

function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmRSS in /proc/PID/status');
  return Number(m[1]);
}

const STREAM_BYTES = 64 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'x');
/** RSS growth allowed while the garbage streams (the fix keeps none of it). */
const MAX_GROWTH_KIB = 8 * 1024;

/** Streams up to STREAM_BYTES to `sock` (bounded in time), sampling the proxy's RSS: the peak. */
/**
 * A raw client that goes on sending after the proxy's FIN, as a hostile one would (allowHalfOpen),
 * recording what it got and whether the proxy ended and closed the connection.
 */
async function halfOpenClient(port: number): Promise<{ sock: net.Socket; got: Buffer[]; ended: () => boolean; closed: () => boolean }> {
  const sock = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const got: Buffer[] = [];
  let ended = false;
  let closed = false;
  sock.on('data', (d: Buffer) => got.push(d));
  sock.on('end', () => (ended = true));
  sock.on('close', () => (closed = true));
  sock.on('error', () => {}); // EPIPE/ECONNRESET once the proxy destroys it: expected
  await new Promise((r) => sock.once('connect', r));
  return { sock, got, ended: () => ended, closed: () => closed };
}

async function streamGarbage(sock: net.Socket, pid: number, before: number, closed: () => boolean): Promise<{ sent: number; peak: number }> {
  let sent = 0;
  let peak = before;
  const deadline = Date.now() + 60_000;
  while (sent < STREAM_BYTES && !sock.destroyed && !closed() && Date.now() < deadline) {
    if (!sock.write(CHUNK)) {
      await new Promise<void>((r) => {
        const t2 = setTimeout(r, 1000); // bounded: re-check the conditions above
        const fin = (): void => {
          clearTimeout(t2);
          r();
        };
        sock.once('drain', fin);
        sock.once('close', fin);
      });
    }
    sent += CHUNK.length;
    if (sent % (1024 * 1024) === 0) {
      peak = Math.max(peak, rssKiB(pid));
      if (peak - before > 4 * MAX_GROWTH_KIB) break; // buffered: fail now, not after minutes of copies
    }
  }
  peak = Math.max(peak, rssKiB(pid));
  return { sent, peak };
}

test('bytes sent after a Connection: close request are discarded, the connection closes', async (t) => {
  const backend = await startBackend(t, 'B');
  const sy = await startSwitchyardProcess(t, ['--workers', '1']);
  assert.equal((await sy.api('POST', '/api/routes/a', { target: backend.url })).status, 201);

  // Warm up (the first requests allocate pools, parsers, buffers), then take the baseline.
  for (let i = 0; i < 3; i++) {
    const s = net.connect(sy.proxyPort, '127.0.0.1');
    s.end('GET /a/warm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    s.resume();
    await new Promise((r) => s.on('close', r));
  }
  const before = rssKiB(sy.pid);

  const { sock, got, ended, closed } = await halfOpenClient(sy.proxyPort);
  sock.write(
    'GET /a/first HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /a/second HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /a/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' +
      'GET /a/never HTTP/1.1\r\nHost: x\r\n\r\n',
  );
  // The proxy has answered and decided to close (its FIN): from here on the client only streams.
  await waitFor(ended, 10_000, "the answers and the proxy's FIN");

  const { sent, peak } = await streamGarbage(sock, sy.pid, before, closed);
  t.diagnostic(`sent ${sent} bytes, closed early ${closed()}, RSS ${before} -> peak ${peak} KiB`);
  if (!sock.destroyed) sock.end();
  await waitFor(closed, 15_000, 'the client connection closed');

  assert.ok(ended() || closed(), 'the proxy ended the connection');
  const text = Buffer.concat(got).toString('latin1');
  const statuses = text.match(/^HTTP\/1\.1 \d+/gm) ?? [];
  assert.deepEqual(statuses, ['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200'], `three answers, got ${JSON.stringify(text.slice(0, 2000))}`);
  const urls = [...text.matchAll(/"url":"([^"]*)"/g)].map((m) => m[1]);
  assert.deepEqual(urls, ['/a/first', '/a/second', '/a/last'], 'answered in order, the one after the close never');
  assert.match(text, /Connection: close\r\n\r\n[^]*"\/a\/last"/, 'the last answer says Connection: close');
  assert.deepEqual(
    backend.requests.filter((r) => r.url !== '/a/warm').map((r) => r.url),
    ['/a/first', '/a/second', '/a/last'],
  );
  assert.ok(peak - before <= MAX_GROWTH_KIB, `proxy RSS grew by ${peak - before} KiB while ${sent} bytes were sent after the close (at most ${MAX_GROWTH_KIB} KiB)`);
  assert.doesNotMatch(sy.output(), /internal error|uncaught|TypeError/i);
});

test('a client that trickles bytes after the close cannot hold the connection open', async (t) => {
  const backend = await startBackend(t, 'B');
  const sy = await startSwitchyardProcess(t, ['--workers', '1']);
  assert.equal((await sy.api('POST', '/api/routes/a', { target: backend.url })).status, 201);
  const { sock, got, ended, closed } = await halfOpenClient(sy.proxyPort);
  sock.write('GET /a/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await waitFor(ended, 10_000, 'the answer and the FIN');
  // Each byte would re-arm the connection's inactivity timeout; the proxy must close it anyway,
  // well within the keep-alive timeout it would otherwise wait for after the last byte.
  const started = Date.now();
  const trickle = setInterval(() => {
    if (!sock.destroyed) sock.write('y');
  }, 50);
  t.after(() => clearInterval(trickle));
  await waitFor(closed, 20_000, 'the proxy closed a connection the client kept sending on');
  clearInterval(trickle);
  assert.ok(Date.now() - started < 20_000);
  assert.match(Buffer.concat(got).toString('latin1'), /^HTTP\/1\.1 200 [^]*Connection: close\r\n/);
});

test('draining (SIGTERM): bytes an idle client sends after the FIN are discarded', async (t) => {
  const backend = await startBackend(t, 'B');
  const held = await startHeldBackend(t);
  const sy = await startSwitchyardProcess(t, ['--workers', '1', '--default-target', `http://127.0.0.1:${held.port}`]);
  assert.equal((await sy.api('POST', '/api/routes/a', { target: backend.url })).status, 201);
  const { sock, got, ended, closed } = await halfOpenClient(sy.proxyPort);
  sock.write('GET /a/one HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(() => /"url":"\/a\/one"[^]*\r\n0\r\n\r\n$/.test(Buffer.concat(got).toString('latin1')), 10_000, 'the first answer').catch((e: Error) => assert.fail(`${e.message}: ${JSON.stringify(Buffer.concat(got).toString('latin1'))}`));
  // A request held in flight keeps the process draining (not exited) while the client streams.
  const arrived = nextEvent(held.server, 'request');
  const inflight = request(`${sy.proxyUrl}/slow`);
  await arrived;
  const before = rssKiB(sy.pid);
  sy.proc.kill('SIGTERM');
  await waitFor(ended, 10_000, "the draining proxy's FIN on the idle connection");
  const { sent, peak } = await streamGarbage(sock, sy.pid, before, closed);
  t.diagnostic(`sent ${sent} bytes after the FIN, RSS ${before} -> peak ${peak} KiB`);
  if (!sock.destroyed) sock.end();
  await waitFor(closed, 15_000, 'the client connection closed');
  held.release();
  assert.equal((await inflight).status, 200);
  assert.equal(await sy.exited, 0);
  assert.equal(Buffer.concat(got).toString('latin1').match(/^HTTP\/1\.1 \d+/gm)?.length, 1, 'one answer');
  assert.ok(peak - before <= MAX_GROWTH_KIB, `proxy RSS grew by ${peak - before} KiB while ${sent} bytes were sent after the FIN (at most ${MAX_GROWTH_KIB} KiB)`);
});
