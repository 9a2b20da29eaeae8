// A memory probe for soak experiments: where does a Switchyard process's RSS go?
//
//   MEM_PROBE_DIR=/some/dir NODE_OPTIONS="--import=$PWD/bench/memory-probe.mjs" DURATION=180 node bench/soak.mjs
//
// Loaded into every Node process of the run (NODE_OPTIONS is inherited by the replicas the soak
// spawns and by their cluster workers); it does nothing unless the process runs dist/src/main.js
// and MEM_PROBE_DIR is set. Every PROBE_MS (5 s) it appends one JSON line to
// MEM_PROBE_DIR/<pid>-<primary|worker>.jsonl, *without* forcing a GC (it must not change what it
// measures): RSS and its anonymous / file-backed split (/proc/self/status), the V8 heap per space
// (committed `space_size` vs resident `physical_space_size` vs used), V8's own malloced memory,
// external/arrayBuffers, and the resident size of glibc's main arena (the `[heap]` mapping) and of
// every other anonymous mapping (V8 pages, thread arenas, stacks). RssAnon minus V8's resident
// heap is what malloc (glibc arenas: Node, OpenSSL, llhttp, libuv) and thread stacks hold. Also the
// garbage collections so far (PerformanceObserver 'gc': scavenges and mark-compacts, count and ms).

import cluster from 'node:cluster';
import { appendFileSync, readFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';

const dir = process.env.MEM_PROBE_DIR;
if (dir && /main\.js$/.test(process.argv[1] ?? '')) {
  const file = `${dir}/${process.pid}-${cluster.isPrimary ? 'primary' : 'worker'}.jsonl`;
  const t0 = Date.now();
  // Garbage collections so far, by kind (scavenges = minor, mark-compacts = major): count and ms.
  const gc = { minor: 0, minorMs: 0, major: 0, majorMs: 0, other: 0, otherMs: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = e.detail?.kind === 1 ? 'minor' : e.detail?.kind === 4 ? 'major' : 'other';
      gc[kind]++;
      gc[`${kind}Ms`] += e.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  const kb = (text, field) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  const smaps = () => {
    // Resident KiB of [heap] (brk: glibc's main arena) and of unnamed anonymous mappings.
    let name = '';
    let brk = 0;
    let anon = 0;
    let anonMaps = 0;
    for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
      const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (head) {
        name = head[1];
        continue;
      }
      if (!line.startsWith('Rss:')) continue;
      const rss = Number(line.split(/\s+/)[1]);
      if (name === '[heap]') brk += rss;
      else if (name === '' && rss > 0) {
        anon += rss;
        anonMaps++;
      }
    }
    return { brkKb: brk, anonMapsKb: anon, anonMaps };
  };
  const timer = setInterval(() => {
    const status = readFileSync('/proc/self/status', 'utf8');
    const m = process.memoryUsage();
    const h = v8.getHeapStatistics();
    const spaces = {};
    for (const s of v8.getHeapSpaceStatistics()) {
      if (s.space_size === 0) continue;
      spaces[s.space_name.replace(/_space$/, '')] = [s.space_size >> 10, s.physical_space_size >> 10, s.space_used_size >> 10];
    }
    const line = {
      t: Math.round((Date.now() - t0) / 1000),
      rssKb: kb(status, 'VmRSS'),
      anonKb: kb(status, 'RssAnon'),
      fileKb: kb(status, 'RssFile'),
      ...smaps(),
      heapTotalKb: h.total_heap_size >> 10,
      heapPhysKb: h.total_physical_size >> 10,
      heapUsedKb: h.used_heap_size >> 10,
      v8MallocKb: h.malloced_memory >> 10,
      v8PeakMallocKb: h.peak_malloced_memory >> 10,
      externalKb: m.external >> 10,
      arrayBuffersKb: m.arrayBuffers >> 10,
      // [committed, resident, used] KiB per V8 space
      spaces,
      gc: { ...gc, minorMs: Math.round(gc.minorMs), majorMs: Math.round(gc.majorMs), otherMs: Math.round(gc.otherMs) },
    };
    appendFileSync(file, JSON.stringify(line) + '\n');
  }, Number(process.env.PROBE_MS ?? 5000));
  timer.unref();
}
