// Measurement preload for bench/p99/probe.mjs (not product code): loaded into every Node thread and
// process of a proxy with NODE_OPTIONS=--import=<this file> and P99_STATS=<dir>. In data-plane
// workers (worker threads or cluster workers) it records, per one-second window, appended as one
// JSON line to <dir>/<pid>-<threadId>.jsonl: event-loop delay (monitorEventLoopDelay, 1 ms
// resolution), every GC (perf_hooks 'gc' entries: kind, duration), and the accepted/live client
// connections (net.Server 'connection' events); every P99_WINDOW_MS (default 100) a short record
// [time, max event-loop delay ms, on-CPU ms, run-queue wait ms] of the window (the last two
// from /proc/thread-self/schedstat), to tell a stalled loop that ran from one that waited for a core.
import { monitorEventLoopDelay, PerformanceObserver, performance } from 'node:perf_hooks';
import { isMainThread, threadId } from 'node:worker_threads';
import cluster from 'node:cluster';
import net from 'node:net';
import fs from 'node:fs';

const dir = process.env.P99_STATS;
const inWorker = !isMainThread || cluster.isWorker;
if (dir && inWorker) {
  const file = `${dir}/${process.pid}-${threadId}.jsonl`;
  const eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
  let gcs = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push([Math.round(performance.timeOrigin + e.startTime), e.detail?.kind ?? e.kind, +e.duration.toFixed(3)]);
  });
  obs.observe({ entryTypes: ['gc'] });
  let accepted = 0;
  let live = 0;
  const emit = net.Server.prototype.emit;
  net.Server.prototype.emit = function (ev, ...rest) {
    if (ev === 'connection') {
      accepted++;
      live++;
      rest[0].once('close', () => live--);
    }
    return emit.call(this, ev, ...rest);
  };
  const winMs = Number(process.env.P99_WINDOW_MS ?? 100);
  const win = monitorEventLoopDelay({ resolution: 1 });
  win.enable();
  const schedstat = () => fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').map(Number);
  let ss = schedstat();
  let wins = [];
  setInterval(() => {
    const now = schedstat();
    wins.push([Date.now(), +(win.max / 1e6).toFixed(2), +((now[0] - ss[0]) / 1e6).toFixed(2), +((now[1] - ss[1]) / 1e6).toFixed(2)]);
    ss = now;
    win.reset();
  }, winMs).unref();
  let elu = performance.eventLoopUtilization();
  const tick = () => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, elu);
    elu = now;
    const line = {
      t: Date.now(), pid: process.pid, tid: threadId, accepted, live, elu: +u.utilization.toFixed(3),
      eld: { n: eld.count, mean: +(eld.mean / 1e6).toFixed(3), p50: eld.percentile(50) / 1e6, p99: eld.percentile(99) / 1e6, max: eld.max / 1e6 },
      gc: gcs, wins,
    };
    gcs = [];
    wins = [];
    eld.reset();
    accepted = 0;
    fs.appendFileSync(file, JSON.stringify(line) + '\n');
  };
  setInterval(tick, 1000).unref();
}
