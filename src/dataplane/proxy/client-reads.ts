// Reads of ACCEPTED sockets into buffers the fast path chooses (fast-path.ts), as `net.connect`'s
// documented `onread` option does for the sockets it connects.
//
// Why: with 'data' events Node allocates a new buffer for every read of a socket (up to 64 KiB),
// garbage until V8's next GC. The fast path's upstream sockets already read into reused buffers
// (read-buffers.ts); its client sockets could not, because `net.createServer` has no `onread`:
// a 100 MiB upload grew the process's RSS by 12-21% while it streamed (bench/README.md).
//
// How (Node 20, 22, 24 alike; lib/net.js, lib/internal/stream_base_commons.js, src/stream_base.cc):
// a socket made with `onread` carries three own symbol-keyed properties — kBuffer (the buffer
// the handle reads into), kBufferCb (called as `socket[kBufferCb](nread, buffer)` after a read,
// a `false` return stops reading) and kBufferGen (called with no `this` right after it: the
// buffer to read into next) — and Node calls `handle.useUserBuffer(buffer)` when the handle is
// attached. Every Socket has the three properties (null when unused), an accepted one too, and
// net's `pause()`/`resume()` stop and start the handle's reads when kBuffer is set. So an
// accepted socket switched in its 'connection' event (before its first read: the handle's reads
// start in the next event-loop turn) behaves as a socket made with `onread`:
// `socket[kBuffer] = first; socket[kBufferCb] = cb; socket[kBufferGen] = gen;
// socket._handle.useUserBuffer(first)`. The symbols are found by their descriptions on a socket
// made with a documented `onread`, and checked against the values given there.
//
// Contract for users:
//  - The handle writes into the buffer it holds at any time it reads; it holds `first`, then
//    whatever `gen` returned after each read. A buffer may be reused elsewhere only once `gen`
//    has returned another (kBuffer keeps the current one alive: the C++ side holds only a
//    pointer into it). A buffer shared by many sockets (`scratch`) is safe only if nothing
//    refers to its bytes after the callback that saw them returns: reads of different sockets
//    never overlap (one read, its callback, then the next read, on one thread).
//  - The switch cannot be undone (the C++ listener stays for the handle's life). A socket given
//    to other code (node:http) afterwards gets `handBack`: each read is copied into a new
//    buffer and pushed as an ordinary read (the same 'data', backpressure and 'end' as before).
//    node:http's C++ parser, when it consumes the handle, reads in its own buffers above this
//    listener and passes read errors down to it with no buffer, which this listener accepts since
//    nodejs/node#45878 (Dec 2022, before Node 20.0; earlier it aborted the process).
//  - `detectClientReads()` fails (a reason, and the fast path keeps Node's own reads) if any
//    of this is not what it was: test/unit/client-reads.test.ts pins it on every Node CI runs.
//  - SWITCHYARD_CLIENT_READS=node forces Node's own reads (diagnostics and benchmarks).

import net, { type Socket } from 'node:net';

export interface ClientReads {
  /**
   * Switch an accepted socket, before its first read, to read into `first` and then into what
   * `gen` returns after each read; `cb(n, buf)`: `buf` (the buffer read into) holds `n` new bytes.
   * False (the socket has no stream handle, or was switched already): nothing changed.
   */
  install(socket: Socket, first: Buffer, cb: (n: number, buf: Buffer) => boolean, gen: () => Buffer): boolean;
  /**
   * From now on the socket's reads are ordinary ones again for whoever reads it ('data', push):
   * each is copied out of `scratch`, which the handle reads into (after its next read at the
   * latest: until then into the buffer it holds, which the caller must leave to it).
   */
  handBack(socket: Socket): void;
}

type Keyed = Socket & Record<symbol, unknown> & { _handle?: { useUserBuffer?: (b: Buffer) => void } | null };

/** One buffer per thread for sockets whose bytes are copied out in their read callback. */
export const scratch = Buffer.allocUnsafeSlow(64 * 1024);

export function detectClientReads(env: NodeJS.ProcessEnv = process.env): ClientReads | string {
  if (env.SWITCHYARD_CLIENT_READS === 'node') return 'SWITCHYARD_CLIENT_READS=node';
  const probeBuf = Buffer.alloc(1);
  const gen = (): Buffer => probeBuf;
  const cb = (): boolean => true;
  let probe: Keyed;
  try {
    // (`onread` is documented for net.connect and accepted by the constructor; the types omit it)
    probe = new net.Socket({ onread: { buffer: gen, callback: cb } } as net.SocketConstructorOpts) as Keyed;
  } catch (e) {
    return `net.Socket({ onread }) threw: ${(e as Error).message}`;
  }
  const bySymbol = new Map<string | undefined, symbol>();
  for (const s of Object.getOwnPropertySymbols(probe)) bySymbol.set(s.description, s);
  const kBuffer = bySymbol.get('kBuffer');
  const kBufferCb = bySymbol.get('kBufferCb');
  const kBufferGen = bySymbol.get('kBufferGen');
  const ok = kBuffer !== undefined && kBufferCb !== undefined && kBufferGen !== undefined && probe[kBuffer] === true && probe[kBufferCb] === cb && probe[kBufferGen] === gen;
  probe.destroy();
  if (!ok) return "a socket's onread state is not kBuffer/kBufferCb/kBufferGen as in Node 20-24";

  function handedCb(this: Socket, n: number, buf: Buffer): boolean {
    return this.push(Buffer.from(buf.subarray(0, n)));
  }
  const handedGen = (): Buffer => scratch;

  return {
    install(socket, first, callback, next) {
      const s = socket as Keyed;
      const handle = s._handle;
      if (handle == null || typeof handle.useUserBuffer !== 'function' || s[kBuffer] !== null || s[kBufferCb] !== null || s[kBufferGen] !== null) return false;
      s[kBuffer] = first;
      s[kBufferCb] = callback;
      s[kBufferGen] = next;
      handle.useUserBuffer(first);
      return true;
    },
    handBack(socket) {
      const s = socket as Keyed;
      s[kBufferCb] = handedCb;
      s[kBufferGen] = handedGen;
    },
  };
}
