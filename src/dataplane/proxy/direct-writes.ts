// Writes of the fast path's small, whole messages (a request head to an upstream, a response head
// with its small body to a client: fast-path.ts) straight to the socket's libuv handle, without
// node's Writable bookkeeping, when that bookkeeping would end where it started.
//
// Why: per small request the fast path makes one write to each side; `socket.write()` goes through
// Writable (writeOrBuffer, state updates, the after-write callback), net's _writeGeneric and a new
// WriteWrap per write before the handle's `writeBuffer`/`writeLatin1String` copies the bytes to the
// kernel, which it nearly always does at once. bench/reference/writes-20261201/ has the numbers.
//
// How (Node 20, 22, 24 alike; lib/net.js _writeGeneric, lib/internal/stream_base_commons.js,
// src/stream_base.cc): net's own write is `handle.writeBuffer(req, buf)` or
// `handle.writeLatin1String(req, str)` with `req` a WriteWrap; the handle first tries the write
// (uv_try_write: refused while libuv has writes queued, so bytes never overtake each other) and
// only when bytes are left queues them, binding `req` to them, and reports which through the
// binding's `streamBaseState[kLastWriteWasAsync]`; `req.oncomplete(status)` runs when the queued
// bytes are written. A write done at once leaves `req` untouched (it is reused here); the others
// get a new one. WriteWrap and streamBaseState come from `process.binding('stream_wrap')` (on the
// process.binding allow-list in Node 20-24; deprecated in documentation only, DEP0111).
//
// Contract (what Node's own write does, so nothing else changes):
//  - Taken only when Writable holds nothing and would call the socket's _write at once: nothing
//    buffered or being written (writableLength 0, not writing), not corked, still writable (not
//    ending, ended, destroyed or errored), connected, with a handle; and the bytes are fewer than
//    writableHighWaterMark (so write() would have returned true and set no 'drain'). Otherwise:
//    `socket.write()`.
//  - The socket's timeout is refreshed before the write (net's _unrefTimer, as _writeGeneric does);
//    bytesWritten counts the bytes (the handle counts them, whichever path wrote them).
//  - A write the handle could not finish at once (partial, EAGAIN), or that failed, is handed to
//    Writable as if Node had made it: `socket.write(data)` runs with the socket's _write replaced,
//    for that call, by one that binds Writable's callback to the queued write (or calls it with the
//    error). So from then on writableLength, the return value, 'drain', the callback's error and
//    the 'error'/'close' that follow are Writable's own, as today; the completion refreshes the
//    timer and clears net's queued-bytes mark as Node's does; the buffer is kept (req.buffer) until
//    libuv is done with it (a string's bytes are copied by the handle).
//  - `detectDirectWrites()` fails (a reason; then every write is `socket.write()`) if any of this is
//    not what it was: test/unit/direct-writes.test.ts pins it on every Node CI runs.
//  - SWITCHYARD_DIRECT_WRITES=node forces `socket.write()` (diagnostics and benchmarks).

import net, { type Socket } from 'node:net';
import util from 'node:util';

export interface DirectWrites {
  /** As `socket.write(data)` (a string: latin1), straight to the handle when that changes nothing else. */
  write(socket: Socket, data: Buffer | string): boolean;
}

interface StreamHandle {
  writeBuffer(req: WriteReq, data: Buffer): number;
  writeLatin1String(req: WriteReq, data: string): number;
}

interface WriteReq {
  handle: StreamHandle | null;
  oncomplete: (this: WriteReq, status: number) => void;
  async: boolean;
  bytes: number;
  buffer: Buffer | null;
  callback: ((err?: Error | null) => void) | null;
  error?: string;
  /** Ours: the socket of a queued write. */
  socket: Socket | null;
}

interface StreamWrapBinding {
  WriteWrap: new () => object;
  streamBaseState: Int32Array;
  kBytesWritten: number;
  kLastWriteWasAsync: number;
}

/** libuv's EINVAL: what a handle method returns for a closing handle. */
const UV_EINVAL = -22;

type WriteFn = (chunk: unknown, encoding: BufferEncoding, cb: (err?: Error | null) => void) => void;

type Internal = Socket &
  Record<symbol, unknown> & {
    _handle?: StreamHandle | null;
    _writableState?: { writing?: unknown };
    _unrefTimer(): void;
    _write: WriteFn;
  };

/** A Node error as net's own write makes it (ErrnoException: `write EPIPE`, code, errno, syscall). */
function makeErrno(): (status: number, original: string | undefined) => Error {
  const own = (util as unknown as { _errnoException?: (err: number, syscall: string, original?: string) => Error })._errnoException;
  if (typeof own === 'function') return (status, original) => own(status, 'write', original);
  return (status, original) => {
    const code = util.getSystemErrorName(status);
    const e = new Error(original !== undefined ? `write ${code} ${original}` : `write ${code}`) as NodeJS.ErrnoException;
    e.errno = status;
    e.code = code;
    e.syscall = 'write';
    return e;
  };
}

export function detectDirectWrites(env: NodeJS.ProcessEnv = process.env): DirectWrites | string {
  if (env.SWITCHYARD_DIRECT_WRITES === 'node') return 'SWITCHYARD_DIRECT_WRITES=node';
  let b: Partial<StreamWrapBinding>;
  try {
    b = (process as unknown as { binding(name: string): Partial<StreamWrapBinding> }).binding('stream_wrap');
  } catch (e) {
    return `process.binding('stream_wrap') threw: ${(e as Error).message}`;
  }
  const { WriteWrap, streamBaseState: state, kBytesWritten: kBytes, kLastWriteWasAsync: kAsync } = b;
  if (typeof WriteWrap !== 'function' || !(state instanceof Int32Array) || !Number.isInteger(kBytes) || !Number.isInteger(kAsync)) {
    return "process.binding('stream_wrap') has no WriteWrap/streamBaseState as in Node 20-24";
  }
  const streamState = state;
  const kBytesWritten = kBytes!;
  const kLastWriteWasAsync = kAsync!;
  const protoWrite = (net.Socket.prototype as unknown as { _write: unknown })._write;
  const unref = (net.Socket.prototype as unknown as { _unrefTimer: unknown })._unrefTimer;
  const probe = new net.Socket() as Internal;
  let kQueued: symbol | undefined;
  for (const s of Object.getOwnPropertySymbols(probe)) if (s.description === 'lastWriteQueueSize') kQueued = s;
  const writingIsFlag = typeof probe._writableState?.writing === 'boolean';
  const ownWrite = Object.prototype.hasOwnProperty.call(probe, '_write');
  const queued0 = kQueued !== undefined ? probe[kQueued] : undefined;
  probe.destroy();
  if (typeof protoWrite !== 'function' || ownWrite || typeof unref !== 'function') return "net.Socket's _write/_unrefTimer are not as in Node 20-24";
  if (kQueued === undefined || queued0 !== 0) return "a socket's lastWriteQueueSize is not as in Node 20-24";
  if (!writingIsFlag) return "a socket's _writableState.writing is not a flag as in Node 20-24";
  const kLastWriteQueueSize = kQueued;
  const nodeWrite = protoWrite as WriteFn;

  for (const name of ['tcp_wrap', 'pipe_wrap']) {
    let ctor: { prototype?: Partial<StreamHandle> } | undefined;
    try {
      const m = (process as unknown as { binding(name: string): Record<string, { prototype?: Partial<StreamHandle> }> }).binding(name);
      ctor = name === 'tcp_wrap' ? m.TCP : m.Pipe;
    } catch (e) {
      return `process.binding('${name}') threw: ${(e as Error).message}`;
    }
    if (typeof ctor?.prototype?.writeBuffer !== 'function' || typeof ctor.prototype.writeLatin1String !== 'function') {
      return `${name} handles have no writeBuffer/writeLatin1String as in Node 20-24`;
    }
  }

  const errno = makeErrno();
  const newReq = (): WriteReq => {
    const r = new WriteWrap() as WriteReq;
    r.handle = null;
    r.oncomplete = onComplete;
    r.async = false;
    r.bytes = 0;
    r.buffer = null;
    r.callback = null;
    r.socket = null;
    return r;
  };

  /** As Node's onWriteComplete: for a queued write, once libuv wrote (or failed to write) its bytes. */
  function onComplete(this: WriteReq, status: number): void {
    const s = this.socket as Internal;
    const cb = this.callback;
    this.socket = null;
    this.handle = null;
    this.buffer = null;
    this.callback = null;
    if (status < 0) {
      const e = errno(status, this.error);
      if (typeof cb === 'function') cb(e);
      else s.destroy(e);
      return;
    }
    if (s.destroyed) {
      if (typeof cb === 'function') cb(null);
      return;
    }
    s._unrefTimer();
    s[kLastWriteQueueSize] = 0;
    if (typeof cb === 'function') cb(null);
  }

  let spare = newReq();
  /** The write being handed to Writable (adopt): its request, or the error to report. */
  let adopting: WriteReq | Error | null = null;
  function adoptWrite(_chunk: unknown, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    const a = adopting;
    adopting = null;
    if (a instanceof Error) cb(a);
    else if (a !== null) a.callback = cb;
  }

  /** Writable takes over a write already given to the handle: queued (err 0) or failed. */
  function adopt(s: Internal, req: WriteReq, data: Buffer | string, err: number): boolean {
    if (err === 0) {
      req.bytes = streamState[kBytesWritten]!;
      req.async = true;
      if (typeof data !== 'string') req.buffer = data; // libuv reads it until oncomplete
      req.socket = s;
      spare = newReq();
      s[kLastWriteQueueSize] = req.bytes;
      adopting = req;
    } else {
      adopting = errno(err, req.error);
      req.handle = null;
      req.error = undefined;
    }
    s._write = adoptWrite;
    let ret: boolean;
    try {
      ret = typeof data === 'string' ? s.write(data, 'latin1') : s.write(data);
    } finally {
      s._write = nodeWrite;
    }
    if (adopting !== null) {
      // Writable did not call _write at once (the checks before the write rule this out): the
      // bytes are on the wire but Writable would send them again. The connection's framing is lost.
      adopting = null;
      s.destroy(new Error('direct write: Writable did not take the write at once'));
      return false;
    }
    return ret;
  }

  return {
    write(socket, data) {
      const s = socket as Internal;
      const h = s._handle;
      if (h == null || s.connecting || s.writableLength !== 0 || s.writableCorked !== 0 || !s.writable || s._writableState!.writing === true || data.length >= s.writableHighWaterMark) {
        return typeof data === 'string' ? s.write(data, 'latin1') : s.write(data);
      }
      s._unrefTimer();
      const req = spare;
      req.handle = h;
      const err = typeof data === 'string' ? h.writeLatin1String(req, data) : h.writeBuffer(req, data);
      if (err === 0 && streamState[kLastWriteWasAsync] === 0) {
        req.handle = null;
        return true;
      }
      return adopt(s, req, data, typeof err === 'number' ? err : UV_EINVAL);
    },
  };
}
