// Reused read buffers for the fast path's upstream sockets (fast-path.ts).
//
// Why: with 'data' events Node allocates a new ArrayBuffer for every socket read (up to 64 KiB);
// relaying a large body made one such allocation per read, and the garbage collector was ~22% of
// the proxy's CPU for 1 MiB responses (bench/README.md, "Large bodies"). nginx reads into buffers
// it reuses; so does this: each upstream socket reads into a buffer from this free list (`net`'s
// `onread` option), and the bytes are written to the client straight from it. Client sockets
// take theirs from the same lists while a request body streams (client-reads.ts, fast-path.ts),
// and those bytes are written to the upstream straight from them.
//
// Contract: `take()` hands out a buffer of `size` bytes that nobody else holds; `give(b)` returns
// one whose bytes nobody will read again (the caller's job: the fast path gives a buffer back only
// when no client write still queued refers to it, and a client's read buffer when no upstream
// write does). The list keeps at most `max` buffers; more are
// left to the garbage collector, so a burst does not pin memory for good.

export interface ReadBuffers {
  /** Bytes per buffer. */
  readonly size: number;
  take(): Buffer;
  give(b: Buffer): void;
  /** Buffers on the free list (tests). */
  free(): number;
}

export function createReadBuffers(size: number, max: number): ReadBuffers {
  const list: Buffer[] = [];
  return {
    size,
    // allocUnsafeSlow: a buffer of its own, not a slice of Node's shared 8 KiB pool.
    take: () => list.pop() ?? Buffer.allocUnsafeSlow(size),
    give(b) {
      if (list.length < max && b.length === size) list.push(b);
    },
    free: () => list.length,
  };
}
