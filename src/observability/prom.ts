// prom-client, loaded piece by piece: only the classes Switchyard uses. prom-client's index also
// loads the Pushgateway (zlib, http/https clients) and, through its process-CPU default metric,
// @opentelemetry/api (for exemplars, which Switchyard does not enable): together ~12 MiB of RSS and
// ~60-100 ms of start in every process (primary and each data-plane worker) for nothing used.
// collectDefaultMetrics below registers the same default metrics as prom-client's, under the same
// names and help texts, with the process CPU counters written here instead of prom-client's.
// test/unit/worker-imports.test.ts checks that neither prom-client's index nor
// @opentelemetry/api is loaded by a process.

import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

const load = createRequire(import.meta.url);

export const Registry = load('prom-client/lib/registry') as typeof PromClient.Registry;
export type Registry = PromClient.Registry;
export const Counter = load('prom-client/lib/counter') as typeof PromClient.Counter;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export const Gauge = load('prom-client/lib/gauge') as typeof PromClient.Gauge;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export const Histogram = load('prom-client/lib/histogram') as typeof PromClient.Histogram;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;

/** prom-client's cluster aggregation (the primary with --workers N); loaded on first use. */
export function aggregatorRegistry(): typeof PromClient.AggregatorRegistry {
  return load('prom-client/lib/cluster') as typeof PromClient.AggregatorRegistry;
}

type DefaultMetric = (registry: Registry, config: { prefix: string; eventLoopMonitoringPrecision: number }) => void;

// prom-client 15's default metrics, in its order, without processCpuTotal (replaced below).
const DEFAULT_METRICS = [
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  'eventLoopLag',
  'processResources',
  'processHandles',
  'processRequests',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
  'gc',
];

/**
 * Default metrics that describe the whole process (CPU time, RSS and memory, file descriptors,
 * start time, Node version): a data-plane worker thread shares its process with the primary, which
 * reports these once; summed over threads by the /metrics merge they would count it N+1 times.
 * The rest are per thread (its event loop, its V8 heap and GC, its handles).
 */
const PROCESS_WIDE = new Set(['processStartTime', 'osMemoryHeap', 'processOpenFileDescriptors', 'processMaxFileDescriptors', 'version']);

/**
 * prom-client's collectDefaultMetrics({ register, prefix }) without loading @opentelemetry/api.
 * `processWide: false` (a worker thread): without the process-wide ones (PROCESS_WIDE, CPU).
 */
export function collectDefaultMetrics(opts: { register: Registry; prefix: string; processWide?: boolean }): void {
  const { register: registry, prefix } = opts;
  const config = { prefix, eventLoopMonitoringPrecision: 10 };
  if (opts.processWide === false) {
    for (const name of DEFAULT_METRICS) if (!PROCESS_WIDE.has(name)) (load(`prom-client/lib/metrics/${name}`) as DefaultMetric)(registry, config);
    return;
  }
  let last = process.cpuUsage();
  const user = new Counter({
    name: prefix + 'process_cpu_user_seconds_total',
    help: 'Total user CPU time spent in seconds.',
    registers: [registry],
    // One collect sets all three (as prom-client's does).
    collect() {
      const now = process.cpuUsage();
      const u = now.user - last.user;
      const s = now.system - last.system;
      last = now;
      user.inc(u / 1e6);
      system.inc(s / 1e6);
      total.inc((u + s) / 1e6);
    },
  });
  const system = new Counter({ name: prefix + 'process_cpu_system_seconds_total', help: 'Total system CPU time spent in seconds.', registers: [registry] });
  const total = new Counter({ name: prefix + 'process_cpu_seconds_total', help: 'Total user and system CPU time spent in seconds.', registers: [registry] });
  for (const name of DEFAULT_METRICS) {
    if (name === 'processResources' && typeof (process as { getActiveResourcesInfo?: unknown }).getActiveResourcesInfo !== 'function') continue;
    (load(`prom-client/lib/metrics/${name}`) as DefaultMetric)(registry, config);
  }
}
