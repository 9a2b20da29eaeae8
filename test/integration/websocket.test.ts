// Websockets through the proxy with a real client and server (the `ws` package).

import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type Socket } from 'node:net';
import { test } from 'node:test';
import { ACTIVITY_EVERY_MS } from '../../src/dataplane/proxy/activity-pulse.js';
import WebSocket from 'ws';
import { rawRequest, request, startBackend, startSwitchyard, waitFor } from '../helpers/servers.js';

async function open(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers, perMessageDeflate: false });
  await once(ws, 'open');
  return ws;
}

async function next(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  const [data, isBinary] = (await once(ws, 'message')) as [Buffer, boolean];
  return { data, isBinary };
}

test('text and binary frames echo through, the upstream sees the routed path', async (t) => {
  const b = await startBackend(t, 'W', undefined, { ws: true });
  const sy = await startSwitchyard(t);
  await sy.api('POST', '/api/routes/user/w', { target: b.url });
  const ws = await open(sy.proxyUrl.replace('http', 'ws') + '/user/w/api/kernels/k1/channels?session_id=s');
  ws.send('__url__');
  assert.equal((await next(ws)).data.toString(), '/user/w/api/kernels/k1/channels?session_id=s');
  ws.send('hello');
  const text = await next(ws);
  assert.equal(text.data.toString(), 'hello');
  assert.equal(text.isBinary, false);
  const bin = Buffer.from([0, 1, 2, 255, 254]);
  ws.send(bin);
  const got = await next(ws);
  assert.equal(got.isBinary, true);
  assert.deepEqual(got.data, bin);
  const big = Buffer.alloc(8 * 1024 * 1024, 0xab);
  ws.send(big);
  const gotBig = await next(ws);
  assert.equal(gotBig.data.length, big.length);
  assert.ok(gotBig.data.equals(big));
  ws.close(1000);
  await once(ws, 'close');
});

test('close codes pass both ways', async (t) => {
  const b = await startBackend(t, 'W', undefined, { ws: true });
  const sy = await startSwitchyard(t);
  await sy.api('POST', '/api/routes/c', { target: b.url });
  const ws = await open(sy.proxyUrl.replace('http', 'ws') + '/c');
  ws.send('__close__4001');
  const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
  assert.equal(code, 4001);
  assert.equal(reason.toString(), 'bye');
});

test('backpressure: a flood to a slow reader completes without loss', async (t) => {
  const b = await startBackend(t, 'W', undefined, { ws: true });
  const sy = await startSwitchyard(t);
  await sy.api('POST', '/api/routes/bp', { target: b.url });
  const ws = await open(sy.proxyUrl.replace('http', 'ws') + '/bp');
  const n = 2000;
  const msg = Buffer.alloc(16 * 1024, 1);
  let received = 0;
  ws.on('message', () => received++);
  // Pause our socket so echoes pile up behind the proxy, then resume.
  (ws as unknown as { _socket: Socket })._socket.pause();
  for (let i = 0; i < n; i++) ws.send(msg);
  // Echoes have piled up once our own sends stall (backpressure reached us through the proxy and
  // the backend) or, with buffers large enough for everything, once all were sent.
  let last = -1;
  await waitFor(() => {
    const now = ws.bufferedAmount;
    const settled = now === 0 || now === last;
    last = now;
    return settled;
  }, 20_000, 'sends stalled by backpressure or all sent');
  (ws as unknown as { _socket: Socket })._socket.resume();
  await waitFor(() => received === n, 20_000, `${n} echoes`);
  ws.close();
});

test('no route: 404; upstream down: 503; bad path: 400 — each closes only that socket', async (t) => {
  const sy = await startSwitchyard(t);
  await sy.api('POST', '/api/routes/down', { target: 'http://127.0.0.1:1' });
  const port = Number(new URL(sy.proxyUrl).port);
  const up = (path: string) =>
    rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  assert.match(await up('/nowhere'), /^HTTP\/1.1 404/);
  assert.match(await up('/down/x'), /^HTTP\/1.1 503/);
  assert.match(await up('/down/%zz'), /^HTTP\/1.1 400/);
});

test('an upstream that refuses the upgrade: its answer is relayed', async (t) => {
  const b = await startBackend(t, 'plain');
  const sy = await startSwitchyard(t);
  await sy.api('POST', '/api/routes/p', { target: b.url });
  const port = Number(new URL(sy.proxyUrl).port);
  const res = await rawRequest(port, `GET /p HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  assert.match(res, /^HTTP\/1.1 200/);
  assert.match(res, /"name":"plain"/);
});

test('a refusal in a transfer coding besides chunked: relayed until the close, the client told of the coding', async (t) => {
  const gz = Buffer.from('1f8b0800000000000003cb48cdc9c90700863ba6360500000000', 'hex');
  const upstream = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => {
      s.write('HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: gzip, chunked\r\nX-Why: no\r\n\r\n');
      s.write(`${gz.length.toString(16)}\r\n`);
      s.write(gz);
      s.end('\r\n0\r\n\r\n');
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  t.after(() => upstream.close());
  const sy = await startSwitchyard(t);
  await sy.api('POST', '/api/routes/g', { target: `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}` });
  const port = Number(new URL(sy.proxyUrl).port);
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    const parts: Buffer[] = [];
    c.on('data', (d: Buffer) => parts.push(d));
    c.on('close', () => resolve(Buffer.concat(parts)));
    c.on('error', reject);
    c.write('GET /g HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  });
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, end).toString('latin1');
  assert.match(head, /^HTTP\/1\.1 403 Forbidden\r\n/);
  assert.match(head, /\r\nTransfer-Encoding: gzip\r\n/i);
  assert.match(head, /\r\nX-Why: no\r\n/i);
  assert.match(head, /\r\nConnection: close$/i);
  assert.deepEqual(raw.subarray(end + 4), gz, 'the coded bytes, delimited by the close');
});

test('websocket traffic counts as activity', async (t) => {
  const b = await startBackend(t, 'W', undefined, { ws: true });
  const sy = await startSwitchyard(t);
  await sy.api('POST', '/api/routes/act', { target: b.url });
  const la = async () => Date.parse((await sy.api('GET', '/api/routes/act')).json<{ last_activity: string }>().last_activity);
  const created = await la();
  const ws = await open(sy.proxyUrl.replace('http', 'ws') + '/act');
  await waitFor(async () => (await la()) > created, 3000, 'activity on open');
  const opened = await la();
  // Activity while a tunnel is open is recorded at most once per ACTIVITY_EVERY_MS: let that
  // window pass (a deliberate idle period, a clock by nature).
  await new Promise((r) => setTimeout(r, ACTIVITY_EVERY_MS + 100));
  ws.send('ping');
  await next(ws);
  await waitFor(async () => (await la()) > opened, 3000, 'activity on messages');
  ws.close();
});

test('a tunnel passes half-closes: the client ends first, the upstream still answers; the gauge returns to 0', async (t) => {
  // A raw upstream that accepts any upgrade, then answers what it got once the client has ended.
  const upstream = net.createServer({ allowHalfOpen: true }, (s) => {
    let buf = Buffer.alloc(0);
    let upgraded = false;
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded && buf.includes('\r\n\r\n')) {
        upgraded = true;
        buf = buf.subarray(buf.indexOf('\r\n\r\n') + 4);
        s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-test\r\nConnection: Upgrade\r\n\r\n');
      }
    });
    s.on('end', () => s.end(`got:${buf.toString()}`));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  t.after(() => upstream.close());
  const sy = await startSwitchyard(t, ['--metrics-port', '0', '--metrics-ip', '127.0.0.1']);
  await sy.api('POST', '/api/routes/h', { target: `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}` });
  const gauge = async (): Promise<number> => {
    const text = (await request(sy.metricsUrl + '/metrics')).body;
    return Number(/^switchyard_active_websockets (\d+)/m.exec(text)?.[1]);
  };
  const c = net.connect(Number(new URL(sy.proxyUrl).port), '127.0.0.1');
  c.write('GET /h HTTP/1.1\r\nHost: h\r\nUpgrade: x-test\r\nConnection: Upgrade\r\n\r\n');
  let got = '';
  let ended = false;
  c.on('data', (d: Buffer) => {
    got += d.toString('latin1');
  });
  c.on('end', () => {
    ended = true;
  });
  await waitFor(() => got.includes('\r\n\r\n'), 5000, '101 relayed');
  assert.match(got, /^HTTP\/1.1 101 /);
  assert.equal(await gauge(), 1);
  c.write('ping');
  c.end();
  await waitFor(() => ended, 5000, "the upstream's answer and end relayed after the client's end");
  assert.equal(got.slice(got.indexOf('\r\n\r\n') + 4), 'got:ping');
  await waitFor(async () => (await gauge()) === 0, 5000, 'the gauge back to 0 once both sides closed');
});
