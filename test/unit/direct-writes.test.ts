// Pins the Node internals direct-writes.ts relies on (see its header), on every Node CI runs (20,
// 22, 24): a write the kernel takes at once goes straight to the handle (Writable's _write is not
// called, nothing stays counted, the socket's timeout is refreshed, bytesWritten counts it); one
// it cannot take at once is handed to Writable exactly as Node's own write would be (the same
// writableLength, return value and 'drain', the bytes in order behind it, the callback when libuv
// is done); failures surface as Node's own ('error' with a write ErrnoException, then 'close');
// every case where Writable holds or is doing something goes through socket.write(). If a future
// Node changes any of this, this file fails and detectDirectWrites must learn the new shape (or
// return its reason: the fast path then writes through socket.write()).

import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { detectDirectWrites, type DirectWrites } from '../../src/dataplane/proxy/direct-writes.js';
import { listen0, waitFor } from '../helpers/servers.js';

function direct(): DirectWrites {
  const d = detectDirectWrites({});
  assert.notEqual(typeof d, 'string', `direct-write internals not found on ${process.version}: ${String(d)}`);
  return d as DirectWrites;
}

interface Pair {
  client: net.Socket;
  /** The accepted side (paused: it reads only when told). */
  server: net.Socket;
  /** Bytes the accepted side has read so far. */
  got(): Buffer;
}

async function pair(t: { after(fn: () => unknown): void }): Promise<Pair> {
  let server!: net.Socket;
  const chunks: Buffer[] = [];
  const accepted: net.Socket[] = [];
  const srv = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => {
    accepted.push(s);
    if (server !== undefined) return; // later connections (to the same port) are not the pair's
    server = s;
    s.on('error', () => {});
    s.on('data', (d: Buffer) => chunks.push(d));
  });
  const port = await listen0(srv);
  const client = net.connect(port, '127.0.0.1');
  await once(client, 'connect');
  await waitFor(() => server !== undefined, 5000, 'the accepted socket');
  t.after(() => {
    client.destroy();
    for (const s of accepted) s.destroy();
    srv.close();
  });
  return { client, server, got: () => Buffer.concat(chunks) };
}

/** Counts calls of Writable's path into net (the socket's _write), on this socket only. */
function spyWrites(s: net.Socket): () => number {
  let n = 0;
  const own = s as unknown as { _write: (...a: unknown[]) => void };
  const real = own._write;
  own._write = function (this: unknown, ...a: unknown[]) {
    n++;
    real.apply(this, a);
  };
  return () => n;
}

/** Distinct bytes: chunk k of a stream is recognisable wherever it lands. */
function chunk(k: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (k * 7 + i) & 0xff;
  return b;
}

test('direct writes: detected on this Node, and forced off by SWITCHYARD_DIRECT_WRITES=node', () => {
  direct();
  assert.equal(typeof detectDirectWrites({ SWITCHYARD_DIRECT_WRITES: 'node' }), 'string');
});

test('direct writes: a write the kernel takes at once bypasses Writable; the timeout is refreshed, bytesWritten counts it, latin1 stays latin1', async (t) => {
  const d = direct();
  const { client, server, got } = await pair(t);
  const writes = spyWrites(client);
  let refreshed = 0;
  const c = client as unknown as { _unrefTimer: () => void };
  const realUnref = c._unrefTimer;
  c._unrefTimer = function (this: net.Socket) {
    refreshed++;
    realUnref.call(this);
  };
  client.setTimeout(60_000);
  const head = 'GET /\xe9\xff HTTP/1.1\r\nhost: x\r\n\r\n';
  const body = chunk(1, 3000);
  assert.equal(d.write(client, head), true);
  assert.equal(d.write(client, body), true);
  assert.equal(writes(), 0, "Writable's _write is not called");
  assert.equal(refreshed, 2, 'the timeout is refreshed by each write, as net does');
  assert.equal(client.writableLength, 0);
  assert.equal(client.bytesWritten, head.length + body.length);
  server.resume();
  await waitFor(() => got().length === head.length + body.length, 5000, 'the bytes at the peer');
  assert.deepEqual(got(), Buffer.concat([Buffer.from(head, 'latin1'), body]));
});

test('direct writes: whenever Writable holds or does something, socket.write() is used', async (t) => {
  const d = direct();
  const { client, server, got } = await pair(t);
  const writes = spyWrites(client);
  const hwm = client.writableHighWaterMark;
  let expect = Buffer.alloc(0);
  const w = (b: Buffer): void => {
    d.write(client, b);
    expect = Buffer.concat([expect, b]);
  };
  client.cork();
  w(chunk(2, 10));
  assert.equal(writes(), 0, 'corked: buffered by Writable');
  assert.equal(client.writableLength, 10);
  w(chunk(3, 10)); // Writable holds bytes: behind them
  client.uncork(); // (one writev of both)
  const before = writes();
  w(chunk(4, hwm)); // as large as the high-water mark: write() would return false
  assert.equal(writes(), before + 1, 'a write of writableHighWaterMark bytes or more goes through Writable');
  server.resume();
  await waitFor(() => got().length === expect.length, 5000, 'every byte at the peer');
  assert.deepEqual(got(), expect);

  // Still connecting: through Writable (which waits for 'connect').
  const port = (server.address() as net.AddressInfo).port;
  const late = net.connect(port, '127.0.0.1');
  late.on('error', () => {});
  t.after(() => late.destroy());
  const lateWrites = spyWrites(late);
  assert.equal(late.connecting, true);
  d.write(late, 'x');
  await once(late, 'connect');
  await waitFor(() => lateWrites() === 1, 5000, 'the write after connect');

  // Ending or ended: as socket.write() (an error, nothing sent).
  const ended = net.connect(port, '127.0.0.1');
  t.after(() => ended.destroy());
  await once(ended, 'connect');
  const errors: string[] = [];
  ended.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? ''));
  ended.end();
  assert.equal(d.write(ended, 'late'), false);
  await waitFor(() => errors.length === 1, 5000, 'the write-after-end error');
  assert.equal(errors[0], 'ERR_STREAM_WRITE_AFTER_END');
});

test('direct writes: a write the kernel cannot take at once is Writable\'s from then on: counted, in order, drained, completed', async (t) => {
  const d = direct();
  const { client, server, got } = await pair(t);
  const writes = spyWrites(client);
  const size = Math.min(8192, client.writableHighWaterMark - 1);
  const sent: Buffer[] = [];
  // The peer reads nothing: direct writes complete at once until the kernel's buffers are full;
  // the first that does not is queued by libuv and handed to Writable.
  let k = 0;
  for (; k < 100_000 && client.writableLength === 0; k++) {
    const b = chunk(k, size);
    assert.equal(d.write(client, b), true, 'under the high-water mark: true, as write() would');
    sent.push(b);
  }
  assert.ok(client.writableLength > 0, 'the kernel filled up');
  assert.equal(writes(), 0, 'the queued write did not go through _write again');
  assert.equal(client.writableLength, size, "Writable counts the queued write's bytes, as its own");
  assert.equal((client as unknown as { _writableState: { writing: boolean } })._writableState.writing, true);
  const total = sent.length * size;

  // Behind it: Writable's own writes (buffered until the queued one completes), one of them
  // crossing the high-water mark: false, and 'drain' once all is written.
  let ret = true;
  const more: Buffer[] = [];
  while (ret) {
    const b = chunk(k++, size);
    more.push(b);
    ret = d.write(client, b); // writableLength > 0: socket.write()
  }
  const done = new Promise<void>((resolve) => client.write(Buffer.alloc(0), () => resolve()));
  let drained = false;
  client.once('drain', () => (drained = true));
  server.resume();
  const all = Buffer.concat([...sent, ...more]);
  await waitFor(() => got().length >= all.length, 20_000, 'every byte at the peer');
  await done;
  await waitFor(() => drained, 5000, "'drain'");
  assert.equal(got().length, all.length);
  assert.ok(got().equals(all), 'the bytes in the order written');
  assert.equal(client.writableLength, 0);
  assert.equal(client.bytesWritten, total + more.length * size);
  // And direct again once Writable is idle.
  const w0 = writes();
  assert.equal(d.write(client, 'tail'), true);
  assert.equal(writes(), w0);
  await waitFor(() => got().toString('latin1').endsWith('tail'), 5000, 'the last write');
});

for (const mode of ['direct', 'node'] as const) {
  test(`direct writes (${mode}): a peer reset surfaces as Node's own write error, then 'close'`, async (t) => {
    const d = mode === 'direct' ? direct() : null;
    const write = (s: net.Socket, b: Buffer): boolean => (d === null ? s.write(b) : d.write(s, b));

    // At once: the peer is gone before the write.
    {
      const { client, server } = await pair(t);
      client.pause(); // the reset is seen by the write, not by a read
      const errors: NodeJS.ErrnoException[] = [];
      client.on('error', (e) => errors.push(e));
      let closed = false;
      client.on('close', () => (closed = true)); // (events.once would reject on the 'error')
      server.resetAndDestroy();
      await once(server, 'close');
      write(client, chunk(1, 100));
      await waitFor(() => closed, 5000, "'close'");
      assert.equal(errors.length, 1);
      assert.equal(errors[0]!.syscall, 'write');
      assert.match(errors[0]!.code ?? '', /^(EPIPE|ECONNRESET)$/);
      assert.equal(errors[0]!.message, `write ${errors[0]!.code}`);
      assert.equal(client.destroyed, true);
    }

    // Queued: the peer resets while libuv still holds bytes of the write.
    {
      const { client, server } = await pair(t);
      client.pause();
      const errors: NodeJS.ErrnoException[] = [];
      client.on('error', (e) => errors.push(e));
      let closed = false;
      client.on('close', () => (closed = true)); // (events.once would reject on the 'error')
      let cbErr: Error | null | undefined;
      for (let k = 0; k < 100_000 && client.writableLength === 0; k++) write(client, chunk(k, 8000));
      assert.ok(client.writableLength > 0, 'a write is queued');
      client.write(Buffer.alloc(1), (e) => (cbErr = e));
      server.resetAndDestroy();
      await waitFor(() => closed, 5000, "'close'");
      assert.equal(errors.length, 1, "one 'error'");
      assert.match(errors[0]!.code ?? '', /^(EPIPE|ECONNRESET)$/);
      // libuv may see the reset on the read side first (both modes alike): the queued write is
      // then cancelled when the handle closes, its callback getting the error.
      assert.match(errors[0]!.syscall ?? '', /^(read|write)$/);
      await waitFor(() => cbErr !== undefined, 5000, "the queued write's callback");
      assert.ok(cbErr instanceof Error, 'the callback of a write behind it gets an error');
    }
  });
}
