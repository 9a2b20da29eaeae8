// Per-route traffic statistics: what the dashboard shows per route (request rate, error rate,
// latency, last activity) and what the opt-in per-route Prometheus series (--metrics-route-labels)
// are rendered from.
//
// Contract:
//  - Data plane side (`RouteStatsRecorder`): `record()` is O(1) on the hot path, one Map lookup
//    and a few additions into a flat number array; `take()` hands over everything recorded since
//    the last call (a delta) and starts a new window. Workers send these deltas to the primary.
//  - Primary side (`RouteStatsAggregate`): adds deltas into cumulative totals per route, and on
//    `tick()` turns the window's deltas into smoothed rates (EWMA, time constant RATE_TAU_S).
//    Memory is bounded by the routing table: `prune()` drops routes that left it. Routes whose
//    rates decayed to nothing leave the "hot" set, so an idle tick costs nothing per route.

/** Upper bounds (seconds) of the per-route latency histogram; +Inf is implicit. Coarse on purpose (cardinality). */
export const ROUTE_BUCKETS = [0.005, 0.025, 0.1, 0.5, 2.5] as const;

// Layout of one sample (a plain number array: cheap to update, and it crosses the IPC channel as JSON).
const N = 0; // requests (responses finished, websockets established or refused)
// indices 1..5: responses with status 1xx..5xx (index k holds k xx)
const ERR5 = 5;
const SUM = 6; // sum of durations, seconds
const BUCKET = 7; // BUCKET + i: durations <= ROUTE_BUCKETS[i]; BUCKET + ROUTE_BUCKETS.length: all (+Inf)
const LAST = BUCKET + ROUTE_BUCKETS.length + 1; // latest activity time (ms since epoch)
export const SAMPLE_LENGTH = LAST + 1;

export type RouteSample = number[];

/** A named, read-only view of one sample (for readers and tests; the array itself is what crosses IPC). */
export interface RouteSampleView {
  readonly requests: number;
  /** Responses by status class: `byClass(2)` is the 2xx count (1..5). */
  byClass(k: 1 | 2 | 3 | 4 | 5): number;
  /** Sum of durations, seconds. */
  readonly durationSum: number;
  /** Cumulative histogram counts, one per ROUTE_BUCKETS bound, then +Inf (= all). */
  readonly buckets: readonly number[];
  /** Latest successful activity, ms since epoch (0: none). */
  readonly lastActivity: number;
}

export function sampleView(s: RouteSample): RouteSampleView {
  return {
    requests: s[N]!,
    byClass: (k) => s[k]!,
    durationSum: s[SUM]!,
    buckets: s.slice(BUCKET, BUCKET + ROUTE_BUCKETS.length + 1),
    lastActivity: s[LAST]!,
  };
}

function newSample(): RouteSample {
  return new Array<number>(SAMPLE_LENGTH).fill(0);
}

export class RouteStatsRecorder {
  #window = new Map<string, RouteSample>();

  /** One finished request on `path`: its status and duration in seconds. */
  record(path: string, status: number, seconds: number, now: number): void {
    let s = this.#window.get(path);
    if (s === undefined) {
      s = newSample();
      this.#window.set(path, s);
    }
    s[N]!++;
    const k = (status / 100) | 0;
    if (k >= 1 && k <= 5) s[k]!++;
    s[SUM]! += seconds;
    for (let i = 0; i < ROUTE_BUCKETS.length; i++) if (seconds <= ROUTE_BUCKETS[i]!) s[BUCKET + i]!++;
    s[BUCKET + ROUTE_BUCKETS.length]!++;
    if (status < 400) s[LAST] = now;
  }

  /** Everything recorded since the previous call, as [path, sample] pairs. */
  take(): [string, RouteSample][] {
    if (this.#window.size === 0) return [];
    const out = [...this.#window];
    this.#window = new Map();
    return out;
  }
}

/** What the dashboard shows for one route. Rates are per second, latency in milliseconds. */
export interface RouteLive {
  readonly rate: number;
  readonly errorRate: number;
  readonly latencyMs: number;
  readonly requests: number;
  readonly errors: number;
}

/** Time constant of the smoothed rates: a burst fades to 1/e in this many seconds. */
export const RATE_TAU_S = 5;
const NEGLIGIBLE = 0.005; // req/s below which a route counts as idle

interface Live {
  rate: number;
  err: number;
  /** Smoothed request count and duration sum: latency = dur / n. */
  n: number;
  dur: number;
}

export class RouteStatsAggregate {
  /** Cumulative totals per route since it entered the table (or since this process started). */
  readonly totals = new Map<string, RouteSample>();
  #window = new Map<string, RouteSample>();
  #live = new Map<string, Live>();
  /** Routes whose last activity moved without traffic here (another replica's, via the store). */
  #touched = new Set<string>();

  /** Add a delta (from this process's recorder or a worker's). */
  add(entries: Iterable<readonly [string, RouteSample]>): void {
    for (const [path, d] of entries) {
      if (!Array.isArray(d) || d.length !== SAMPLE_LENGTH) continue; // not ours: ignore
      for (const m of [this.totals, this.#window]) {
        let s = m.get(path);
        if (s === undefined) {
          s = newSample();
          m.set(path, s);
        }
        for (let i = 0; i < LAST; i++) s[i]! += d[i]!;
        if (d[LAST]! > s[LAST]!) s[LAST] = d[LAST]!;
      }
    }
  }

  /**
   * Close the window of `dtSeconds` and update the smoothed rates. Returns the routes whose live
   * figures changed (including those that just went idle, reported once with zeros).
   */
  tick(dtSeconds: number): Map<string, RouteLive> {
    const changed = new Map<string, RouteLive>();
    for (const path of this.#touched) changed.set(path, this.#view(path, this.#live.get(path)));
    this.#touched.clear();
    const dt = Math.max(dtSeconds, 1e-3);
    const keep = Math.exp(-dt / RATE_TAU_S);
    const window = this.#window;
    this.#window = new Map();
    for (const path of window.keys()) if (!this.#live.has(path)) this.#live.set(path, { rate: 0, err: 0, n: 0, dur: 0 });
    for (const [path, l] of this.#live) {
      const w = window.get(path);
      const n = w ? w[N]! : 0;
      const e = w ? w[ERR5]! : 0;
      const dur = w ? w[SUM]! : 0;
      l.rate = l.rate * keep + (n / dt) * (1 - keep);
      l.err = l.err * keep + (e / dt) * (1 - keep);
      l.n = l.n * keep + n;
      l.dur = l.dur * keep + dur;
      const idle = n === 0 && l.rate < NEGLIGIBLE;
      if (idle) this.#live.delete(path);
      changed.set(path, this.#view(path, idle ? undefined : l));
    }
    return changed;
  }

  /** The live figures of one route (zeros when idle). */
  live(path: string): RouteLive {
    return this.#view(path, this.#live.get(path));
  }

  /**
   * Activity seen elsewhere (the store's value, read by the stats loop): kept when newer than
   * what this process saw, and reported in the next tick.
   */
  noteActivity(path: string, at: number): void {
    let s = this.totals.get(path);
    if (s !== undefined && s[LAST]! >= at) return;
    if (s === undefined) {
      s = newSample();
      this.totals.set(path, s);
    }
    s[LAST] = at;
    this.#touched.add(path);
  }

  /** Sum of the smoothed rates of every route (req/s, 5xx/s). */
  totalRates(): { rate: number; errorRate: number } {
    let rate = 0;
    let errorRate = 0;
    for (const l of this.#live.values()) {
      rate += l.rate;
      errorRate += l.err;
    }
    return { rate: round(rate), errorRate: round(errorRate) };
  }

  lastActivity(path: string): number | undefined {
    const t = this.totals.get(path)?.[LAST];
    return t ? t : undefined;
  }

  /** Forget routes that are no longer in the table (bounded memory under churn). */
  prune(has: (path: string) => boolean): void {
    for (const m of [this.totals, this.#window, this.#live]) for (const p of m.keys()) if (!has(p)) m.delete(p);
    for (const p of this.#touched) if (!has(p)) this.#touched.delete(p);
  }

  #view(path: string, l: Live | undefined): RouteLive {
    const t = this.totals.get(path);
    return {
      rate: l ? round(l.rate) : 0,
      errorRate: l ? round(l.err) : 0,
      latencyMs: l && l.n > 1e-6 ? round((l.dur / l.n) * 1000) : 0,
      requests: t ? t[N]! : 0,
      errors: t ? t[ERR5]! : 0,
    };
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Prometheus label value escaping (text format 0.0.4). */
function labelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/**
 * The per-route series in Prometheus text format (opt-in: one series per route and code class, and
 * a histogram per route: cardinality grows with the table).
 */
export function renderRouteMetrics(totals: ReadonlyMap<string, RouteSample>): string {
  const req: string[] = [
    '# HELP switchyard_route_requests_total Proxied requests per route and status class (--metrics-route-labels)',
    '# TYPE switchyard_route_requests_total counter',
  ];
  const dur: string[] = [
    '# HELP switchyard_route_request_duration_seconds Request duration per route (--metrics-route-labels)',
    '# TYPE switchyard_route_request_duration_seconds histogram',
  ];
  for (const [path, s] of totals) {
    const route = `route="${labelValue(path)}"`;
    for (let k = 1; k <= 5; k++) if (s[k]! > 0) req.push(`switchyard_route_requests_total{${route},code="${k}xx"} ${s[k]}`);
    for (let i = 0; i < ROUTE_BUCKETS.length; i++) {
      dur.push(`switchyard_route_request_duration_seconds_bucket{${route},le="${ROUTE_BUCKETS[i]}"} ${s[BUCKET + i]}`);
    }
    dur.push(`switchyard_route_request_duration_seconds_bucket{${route},le="+Inf"} ${s[BUCKET + ROUTE_BUCKETS.length]}`);
    dur.push(`switchyard_route_request_duration_seconds_sum{${route}} ${s[SUM]}`);
    dur.push(`switchyard_route_request_duration_seconds_count{${route}} ${s[N]}`);
  }
  return req.join('\n') + '\n' + dur.join('\n') + '\n';
}
