// Pins the Node internals client-reads.ts relies on (see its header): on every Node CI runs
// (20, 22, 24) an accepted socket switched in its 'connection' event reads into the buffers
// given, in order, with the callback's buffer the one the generator returned before; net's
// pause()/resume() stop and restart its reads; EOF still ends it; after handBack its reads are
// ordinary 'data' again, for node:http too (its C++ parser consuming the handle, an upgrade
// unconsuming it, a reset while consumed — which aborted the process before nodejs/node#45878).
// If a future Node changes any of this, this file fails and detectClientReads must learn the new
// shape (or return its reason: the fast path then keeps Node's own reads).

import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { detectClientReads, scratch, type ClientReads } from '../../src/dataplane/proxy/client-reads.js';
import { listen0, waitFor } from '../helpers/servers.js';

function reads(): ClientReads {
  const r = detectClientReads({});
  assert.notEqual(typeof r, 'string', `onread internals not found on ${process.version}: ${String(r)}`);
  return r as ClientReads;
}

/** A server whose accepted sockets go to `onSocket`, and a client connected to it. */
async function pair(t: { after(fn: () => unknown): void }, onSocket: (s: net.Socket) => void): Promise<net.Socket> {
  const server = net.createServer({ allowHalfOpen: true }, onSocket);
  const port = await listen0(server);
  const client = net.connect(port, '127.0.0.1');
  client.on('error', () => {});
  await once(client, 'connect');
  t.after(() => {
    client.destroy();
    server.close();
  });
  return client;
}

test('client reads: detected on this Node, and forced off by SWITCHYARD_CLIENT_READS=node', () => {
  reads();
  assert.equal(typeof detectClientReads({ SWITCHYARD_CLIENT_READS: 'node' }), 'string');
});

test('client reads: an accepted socket reads into the given buffers, in order; pause/resume reach the handle; EOF ends it', async (t) => {
  const cr = reads();
  const bufs = [Buffer.alloc(7), Buffer.alloc(5), Buffer.alloc(11)];
  let next = 0;
  let expect = bufs[0]!;
  const got: Buffer[] = [];
  let wrongBuffer = false;
  let server!: net.Socket;
  let ended = false;
  let installed = false;
  const client = await pair(t, (s) => {
    server = s;
    s.on('end', () => (ended = true));
    s.on('data', () => assert.fail('no data event: the bytes go to the callback'));
    installed = cr.install(
      s,
      bufs[0]!,
      function (this: net.Socket, n, b) {
        if (b !== expect) wrongBuffer = true;
        assert.equal(this, s, 'called as a method of the socket');
        got.push(Buffer.from(b.subarray(0, n)));
        return true;
      },
      () => (expect = bufs[++next % bufs.length]!),
    );
  });
  await waitFor(() => installed, 5000, 'the accepted socket');
  assert.equal(cr.install(server, scratch, () => true, () => scratch), false, 'a socket is switched once');
  const payload = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz'.repeat(40));
  client.write(payload);
  await waitFor(() => Buffer.concat(got).length === payload.length, 5000, 'all bytes read');
  assert.deepEqual(Buffer.concat(got), payload);
  assert.equal(wrongBuffer, false, 'each read lands in the buffer the generator returned before');
  assert.ok(got.length >= payload.length / 11, 'reads are bounded by the buffers given');

  // pause(): the handle stops reading (the bytes wait in the kernel); resume() restarts it.
  server.pause();
  const handle = (server as unknown as { _handle: { reading: boolean } })._handle;
  assert.equal(handle.reading, false, 'pause() stops the handle');
  assert.equal(server.isPaused(), true);
  const before = got.length;
  client.write('paused');
  // A round trip on another connection to the same process is no proof; what is: the handle is
  // not reading, so nothing can arrive until resume().
  assert.equal(got.length, before);
  server.resume();
  assert.equal(handle.reading, true, 'resume() restarts the handle');
  await waitFor(() => Buffer.concat(got).toString().endsWith('paused'), 5000, 'bytes after resume');

  client.end();
  await waitFor(() => ended, 5000, "'end' after EOF");
});

test('client reads: a callback returning false stops reading until resume()', async (t) => {
  const cr = reads();
  const b = Buffer.alloc(16);
  let calls = 0;
  let server!: net.Socket;
  const client = await pair(t, (s) => {
    server = s;
    cr.install(s, b, () => (++calls, false), () => b);
  });
  client.write('x');
  await waitFor(() => calls === 1, 5000, 'the first read');
  const handle = (server as unknown as { _handle: { reading: boolean } })._handle;
  assert.equal(handle.reading, false);
  client.write('y');
  server.resume();
  await waitFor(() => calls === 2, 5000, 'a read after resume()');
});

test('client reads: handBack gives ordinary reads (copies) to node:http, through a consumed parser, an upgrade, and a reset', async (t) => {
  const cr = reads();
  const bodies: string[] = [];
  const seen: string[] = [];
  const hs = http.createServer((req, res) => {
    seen.push(req.url ?? '');
    req.on('error', () => {});
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      bodies.push(body);
      res.end(`got ${body.length}`);
    });
  });
  const clientErrors: string[] = [];
  hs.on('clientError', (e: NodeJS.ErrnoException, s: net.Socket) => {
    clientErrors.push(e.code ?? e.message);
    s.destroy();
  });
  hs.on('upgrade', (_req, s: net.Socket, head: Buffer) => {
    s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
    if (head.length > 0) s.write(head);
    s.on('data', (d: Buffer) => s.write(d));
  });
  const own = Buffer.alloc(64);
  // The first read is the fast path's: a copy of it goes to node:http, as handOver does.
  const handOver = (s: net.Socket): void => {
    cr.install(
      s,
      own,
      (n, b) => {
        const copy = Buffer.from(b.subarray(0, n));
        b.fill(0); // what a later read into a shared buffer would do to bytes still referred to
        cr.handBack(s);
        hs.emit('connection', s);
        s.emit('data', copy);
        return true;
      },
      () => own,
    );
  };

  // A request with a body through node:http's consumed parser, then another on the same connection.
  const c1 = await pair(t, handOver);
  let out1 = '';
  c1.setEncoding('latin1');
  c1.on('data', (d: string) => (out1 += d));
  const body = 'b'.repeat(300_000);
  c1.write(`POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`);
  c1.write(body.slice(10));
  await waitFor(() => out1.includes(`got ${body.length}`), 10_000, 'the first response');
  c1.write('POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz');
  await waitFor(() => out1.endsWith('got 3'), 5000, 'the second response');
  assert.equal(bodies.length, 2);
  assert.ok(bodies[0] === body, 'the first body as sent');
  assert.equal(bodies[1], 'xyz');

  // An upgrade: node:http unconsumes the handle; the echo sees every byte, the head's too.
  const c2 = await pair(t, handOver);
  let out2 = '';
  c2.setEncoding('latin1');
  c2.on('data', (d: string) => (out2 += d));
  c2.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhead-bytes');
  await waitFor(() => out2.includes('head-bytes'), 5000, 'the upgrade and its head');
  const later = 'L'.repeat(200_000);
  c2.write(later);
  await waitFor(() => out2.length >= later.length && out2.endsWith(later), 10_000, 'the echo of bytes read after the upgrade');

  // A reset while node:http's parser holds the handle (mid-body): an error, not an abort.
  const c3 = await pair(t, handOver);
  c3.write('POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc');
  await waitFor(() => seen.includes('/c'), 5000, 'the request at node:http');
  c3.write('more');
  c3.resetAndDestroy();
  await waitFor(() => clientErrors.length > 0, 5000, 'the reset reported');
  assert.match(clientErrors[0]!, /ECONNRESET|aborted|HPE_INVALID_EOF_STATE/); // (Node 20/22 report the reset as an early EOF)
});
