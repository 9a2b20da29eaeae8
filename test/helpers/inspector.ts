// Live memory of a spawned Node process, read through its inspector (start it with
// `--inspect=127.0.0.1:0`: the process prints the URL it bound, so no port is picked ahead).
//
// Why not RSS: RSS and VmHWM count garbage that V8 has not collected yet and memory glibc keeps
// after a free, and both depend on the Node version. Measured through the proxy (1 GiB each way,
// and 100,000 503s): dead 64 KiB socket chunks pile up to 37 MiB of arrayBuffers before a GC on
// Node 20, 57 MiB on 22 and 70-100 MiB on 24, and the V8 heap holds 30-80 MiB of
// dead objects between collections, while live memory after a full GC returns to the same value
// on all three. Leak and buffering checks therefore read live memory after a full GC, here.

import WebSocket from 'ws';
import { waitFor, type TestContextLike } from './servers.js';

/** process.memoryUsage() of the inspected process, read right after a full garbage collection. */
export interface LiveMemory {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export interface Inspector {
  /** One Chrome DevTools Protocol call; rejects on a protocol error or after `ms`. */
  call<T = unknown>(method: string, params?: object, ms?: number): Promise<T>;
  /**
   * process.memoryUsage() after full garbage collections. First HeapProfiler.collectGarbage: V8's
   * most thorough collection, which also shrinks the young generation and returns freed pages, so
   * that `rss` is comparable between readings (after a plain gc() it still held 120 MiB of
   * emptied heap pages on Node 24: RSS 246 MiB vs 96 MiB). Then two gc() and the reading in one task of the inspected
   * process, so that a busy process allocates nothing in between; two, because V8 frees the
   * backing stores of dead ArrayBuffers (Buffers) on a background thread after a GC: after one
   * gc() the reading still counted up to 18 MiB of dead socket chunks during a transfer; the
   * second waits for the first one's sweep (then within 0.5 MiB of idle on Node 20, 22 and 24).
   */
  memory(): Promise<LiveMemory>;
  close(): void;
}

const URL_RE = /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/;

/** The first inspector URL printed in `output` (a parent prints its own before forking workers). */
export async function inspectorUrl(output: () => string, ms = 10_000): Promise<string> {
  await waitFor(() => URL_RE.test(output()), ms, 'the inspector URL (start the process with --inspect=127.0.0.1:0)');
  return URL_RE.exec(output())![1]!;
}

/** Connects to the inspector at `url` (closed in t.after). */
export async function connectInspector(t: TestContextLike, url: string): Promise<Inspector> {
  const ws = new WebSocket(url);
  t.after(() => ws.close());
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let id = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  ws.on('message', (data) => {
    const m = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } };
    if (m.id === undefined) return;
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error) p?.reject(new Error(`inspector: ${m.error.message}`));
    else p?.resolve(m.result);
  });
  ws.on('close', () => {
    for (const p of pending.values()) p.reject(new Error('inspector connection closed'));
    pending.clear();
  });
  const call = <T>(method: string, params: object = {}, ms = 60_000): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const n = ++id;
      const timer = setTimeout(() => {
        pending.delete(n);
        reject(new Error(`inspector: no answer to ${method} within ${ms} ms`));
      }, ms);
      pending.set(n, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      ws.send(JSON.stringify({ id: n, method, params }));
    });

  // V8's gc() without --expose-gc on the process: the flag is set for one new context only (and
  // unset again), so the process's own globals do not change. `require` is the inspector
  // console's (includeCommandLineAPI), available in ES-module programs too.
  const gcFn = await call<{ result: { objectId?: string }; exceptionDetails?: unknown }>('Runtime.evaluate', {
    expression: `(() => {
      const v8 = require('node:v8');
      v8.setFlagsFromString('--expose-gc');
      const gc = require('node:vm').runInNewContext('gc');
      v8.setFlagsFromString('--no-expose-gc');
      return gc;
    })()`,
    includeCommandLineAPI: true,
    objectGroup: 'switchyard-test',
  });
  const gcId = gcFn.result.objectId;
  if (gcFn.exceptionDetails !== undefined || gcId === undefined) throw new Error(`inspector: no gc function: ${JSON.stringify(gcFn)}`);

  return {
    call,
    async memory() {
      await call('HeapProfiler.collectGarbage');
      const r = await call<{ result: { value?: string }; exceptionDetails?: unknown }>('Runtime.callFunctionOn', {
        objectId: gcId,
        functionDeclaration: 'function () { this(); this(); return JSON.stringify(process.memoryUsage()); }',
        returnByValue: true,
      });
      if (r.exceptionDetails !== undefined || r.result.value === undefined) throw new Error(`inspector: memoryUsage failed: ${JSON.stringify(r)}`);
      return JSON.parse(r.result.value) as LiveMemory;
    },
    close: () => ws.close(),
  };
}
