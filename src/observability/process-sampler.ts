// This process's vitals for the dashboard: CPU share (over windows of at least CPU_WINDOW_MS),
// event-loop delay p99, memory and uptime. Sampling is cheap; the caller decides how often.

import { monitorEventLoopDelay } from 'node:perf_hooks';

const CPU_WINDOW_MS = 500;

export interface ProcessSample {
  readonly pid: number;
  readonly node: string;
  readonly uptimeS: number;
  readonly rss: number;
  readonly heapUsed: number;
  readonly cpuPct: number;
  readonly eventLoopP99Ms: number;
}

export interface ProcessSampler {
  sample(): ProcessSample;
  close(): void;
}

export function createProcessSampler(): ProcessSampler {
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  let cpuBefore = process.cpuUsage();
  let cpuAt = performance.now();
  let cpuPct = 0;
  return {
    sample() {
      const now = performance.now();
      const cpu = process.cpuUsage(cpuBefore);
      const elapsedMs = now - cpuAt;
      if (elapsedMs >= CPU_WINDOW_MS) {
        cpuPct = Math.round(((cpu.user + cpu.system) / 1000 / elapsedMs) * 1000) / 10;
        cpuBefore = process.cpuUsage();
        cpuAt = now;
      }
      const mem = process.memoryUsage();
      return {
        pid: process.pid,
        node: process.version,
        uptimeS: Math.round(process.uptime()),
        rss: mem.rss,
        heapUsed: mem.heapUsed,
        cpuPct,
        eventLoopP99Ms: Math.round(loopDelay.percentile(99) / 1e4) / 100,
      };
    },
    close() {
      loopDelay.disable();
    },
  };
}
