// The per-route stats loop of the primary: once per interval it collects the deltas recorded in
// this process (workers send theirs to the aggregate directly), turns them into live figures
// (RouteStatsAggregate.tick) and hands the routes whose figures changed to its subscribers (the
// dashboard). It follows the table (a TableListener) to bound memory: routes that left the table
// are pruned.
//
// Contract:
//  - Data flows one way: recorders and the store's activity -> aggregate -> subscribers. A
//    subscriber only reads (`aggregate` is exposed as a read-only view).
//  - Activity other replicas wrote to the store is read at most every ACTIVITY_REFRESH_MS, and only
//    while someone subscribes (nobody looks at it otherwise); a newer value shows in the next tick.
//  - Pruning runs on the first tick after each table change, and every PRUNE_EVERY ticks for
//    worker deltas that arrive after a route's delete.

import type { TableListener } from '../control/table-listener.js';
import { RoutingTable } from '../routing/table.js';
import type { RouteLive, RouteSample, RouteStatsAggregate, RouteStatsRecorder } from './route-stats.js';

const ACTIVITY_REFRESH_MS = 10_000;
const PRUNE_EVERY = 10;

/** What a reader of the figures may call. */
export type RouteStatsView = Pick<RouteStatsAggregate, 'live' | 'lastActivity' | 'totalRates'> & {
  readonly totals: ReadonlyMap<string, RouteSample>;
};

export type StatsSubscriber = (changed: ReadonlyMap<string, RouteLive>) => void;

export interface RouteStatsLoop extends TableListener {
  readonly stats: RouteStatsView;
  /** Called once per tick with the routes whose live figures changed. */
  subscribe(fn: StatsSubscriber): () => void;
  start(): void;
  close(): void;
}

export interface RouteStatsLoopOptions {
  readonly aggregate: RouteStatsAggregate;
  readonly intervalMs: number;
  /** This process's recorder (the in-process proxy); absent with workers. */
  readonly local?: RouteStatsRecorder;
  /** Latest activity per route as the store has it (every replica's). */
  readonly storeActivity?: () => Promise<ReadonlyMap<string, number>>;
  readonly hostRouting: boolean;
}

export function createRouteStatsLoop(o: RouteStatsLoopOptions): RouteStatsLoop {
  const { aggregate } = o;
  const subscribers = new Set<StatsSubscriber>();
  let table = RoutingTable.empty({ hostRouting: o.hostRouting });
  let timer: NodeJS.Timeout | undefined;
  let tickAt = performance.now();
  let prunedAt = -1;
  let sincePrune = 0;
  let activityAt = 0;

  const refreshActivity = (): void => {
    if (o.storeActivity === undefined) return;
    activityAt = Date.now();
    o.storeActivity().then(
      (act) => {
        for (const [path, t] of act) aggregate.noteActivity(path, t);
      },
      () => undefined, // the store's health shows the outage
    );
  };

  const tick = (): void => {
    if (o.local) aggregate.add(o.local.take());
    const now = performance.now();
    const changed = aggregate.tick((now - tickAt) / 1000);
    tickAt = now;
    if (table.version !== prunedAt || ++sincePrune >= PRUNE_EVERY) {
      const t = table;
      prunedAt = t.version;
      sincePrune = 0;
      aggregate.prune((p) => t.get(p) !== undefined);
    }
    if (subscribers.size === 0) return;
    if (Date.now() - activityAt >= ACTIVITY_REFRESH_MS) refreshActivity();
    for (const fn of subscribers) fn(changed);
  };

  return {
    name: 'route stats',
    stats: aggregate,
    onTable(update) {
      table = update.table;
    },
    subscribe(fn) {
      subscribers.add(fn);
      return () => subscribers.delete(fn);
    },
    start() {
      tickAt = performance.now();
      timer = setInterval(tick, o.intervalMs);
      timer.unref();
    },
    close() {
      if (timer) clearInterval(timer);
      subscribers.clear();
    },
  };
}
