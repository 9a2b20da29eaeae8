// The upstream socket guard (upstream-socket.ts) on a real loopback connection, read the way
// undici reads it ('readable', then read() until null). Each case writes an upstream response in
// pieces, and every piece is written only after the guarded side has read the previous one (a
// barrier on the guarded socket's bytesRead, seen from its 'readable' handler): so each piece is
// one read of its own, whatever the scheduling. What the reader gets must be exactly the response
// without its 100 heads (other 1xx heads and everything else byte for byte).

import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { guardUpstreamSocket } from '../../src/dataplane/proxy/upstream-socket.js';
import { listen0 } from '../helpers/servers.js';

interface Pair {
  /** The upstream's end: writes the pieces. */
  up: net.Socket;
  /** The guarded end (as undici's pooled socket). */
  guarded: net.Socket;
  /** Everything read() returned so far. */
  got(): Buffer;
  /** Resolves once the guarded end has read `n` bytes from the kernel (and run its read). */
  readTo(n: number): Promise<void>;
  error(): Error | undefined;
  close(): void;
}

async function pair(): Promise<Pair> {
  const server = net.createServer();
  const port = await listen0(server);
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const guarded = net.connect(port, '127.0.0.1');
  await once(guarded, 'connect');
  const [up] = await accepted;
  guardUpstreamSocket(guarded);
  const chunks: Buffer[] = [];
  let err: Error | undefined;
  let waiters: { n: number; resolve: () => void }[] = [];
  const wake = (): void => {
    waiters = waiters.filter((w) => {
      if (guarded.bytesRead < w.n && err === undefined && !guarded.destroyed) return true;
      w.resolve();
      return false;
    });
  };
  guarded.on('readable', () => {
    for (;;) {
      const c = guarded.read() as Buffer | null;
      if (c === null) break;
      chunks.push(c);
    }
    wake();
  });
  guarded.on('error', (e) => {
    err = e;
    wake();
  });
  guarded.on('close', wake);
  return {
    up,
    guarded,
    got: () => Buffer.concat(chunks),
    readTo(n) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`guarded side read ${guarded.bytesRead} of ${n} bytes in 5 s`)), 5000);
        waiters.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
        wake();
      });
    },
    error: () => err,
    close() {
      up.destroy();
      guarded.destroy();
      server.close();
    },
  };
}

/** Arm the guard as undici does (a request head as one latin1 string), then send `pieces` one read each. */
async function run(pieces: readonly string[]): Promise<{ got: string; error: Error | undefined; reads: number }> {
  const p = await pair();
  try {
    p.guarded.write('GET / HTTP/1.1\r\nhost: a\r\n\r\n', 'latin1');
    let sent = 0;
    for (const piece of pieces) {
      sent += Buffer.byteLength(piece, 'latin1');
      await new Promise<void>((resolve) => p.up.write(Buffer.from(piece, 'latin1'), () => resolve()));
      await p.readTo(sent);
      if (p.error() !== undefined) break;
    }
    return { got: p.got().toString('latin1'), error: p.error(), reads: pieces.length };
  } finally {
    p.close();
  }
}

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';

test('guard: a 100 head split after its status line (two reads) is removed; the 200 passes', async () => {
  const r = await run(['HTTP/1.1 100 Continue\r\n', '\r\n', OK]);
  assert.equal(r.error, undefined);
  assert.equal(r.got, OK);
});

test('guard: a 100 head and the 200 in one read, then more: as before', async () => {
  const r = await run([CONTINUE + OK]);
  assert.equal(r.got, OK);
});

test('guard: a status line split inside its code ("HTTP/1.1 1" | "00 Continue…") is still a 100, removed', async () => {
  const r = await run(['HTTP/1.1 1', '00 Continue\r\n\r\n' + OK]);
  assert.equal(r.error, undefined);
  assert.equal(r.got, OK);
});

test('guard: 100, 100 and the 200, one byte per read: exactly the 200 comes out', async () => {
  const all = CONTINUE + 'HTTP/1.1 100 Continue\r\nX-A: 1\r\n\r\n' + OK;
  const r = await run([...all]);
  assert.equal(r.error, undefined);
  assert.equal(r.got, OK);
});

test('guard: a 200 whose status line is split passes byte for byte', async () => {
  const r = await run(['HTTP/1.1 2', '00 O', 'K\r\nContent-Length: 2\r\n\r\nok']);
  assert.equal(r.got, OK);
});

test('guard: a 100 head whose empty line comes with the 200 (three reads) is removed', async () => {
  const r = await run(['HTTP/1.1 100 Continue\r', '\n', '\r\n' + OK]);
  assert.equal(r.error, undefined);
  assert.equal(r.got, OK);
});

test('guard: a split 103 is not removed (undici drops other 1xx itself); the 200 follows', async () => {
  const hints = 'HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n';
  const r = await run([hints, '\r\n', OK]);
  assert.equal(r.got, hints + '\r\n' + OK);
});

test('guard: a 100 head longer than the hold limit goes to undici as sent (undici fails it)', async () => {
  const big = 'HTTP/1.1 100 Continue\r\nX-Big: ' + 'a'.repeat(20_000) + '\r\n';
  const r = await run([big.slice(0, 10_000), big.slice(10_000), '\r\n' + OK]);
  assert.equal(r.got, big + '\r\n' + OK);
});

test('guard: a bare CR in a status line split across reads destroys the socket (SWY_UPSTREAM_BARE_CR)', async () => {
  const r = await run(['HTTP/1.1 200 OK\r', 'X-Injected: 1\r\n\r\n']);
  assert.equal((r.error as NodeJS.ErrnoException | undefined)?.code, 'SWY_UPSTREAM_BARE_CR');
  assert.equal(r.got, '');
});
