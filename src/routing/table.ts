// The routing table: immutable and versioned. Built by the route watcher, read by data planes.
//
// Contract: a RoutingTable never changes after construction. `apply` returns a new table that
// shares structure with this one. Data planes hold a reference and swap it whole, so a request is
// always routed against one consistent version.

import { pathSegments } from './route-path.js';
import { parseTarget, type Upstream } from './target.js';
import { EMPTY_TRIE, trieBuild, trieGet, trieMatch, trieRemove, trieSet, trieValues, type TrieNode } from './trie.js';

/** What the API stores for a route: `target` plus any extra keys the client posted. */
export type RouteData = Readonly<Record<string, unknown>> & { readonly target: string };

// Parsed targets shared between routes with the same target string (JupyterHub tables are many
// routes to few targets, and Upstream objects are frozen): 100k routes to one target hold one
// Upstream instead of 100k. Bounded: cleared when it reaches MAX_CACHED distinct targets.
const MAX_CACHED = 50_000;
const upstreams = new Map<string, Upstream>();

function upstreamOf(target: unknown): Upstream {
  if (typeof target === 'string') {
    const hit = upstreams.get(target);
    if (hit) return hit;
  }
  const u = parseTarget(target);
  if (upstreams.size >= MAX_CACHED) upstreams.clear();
  upstreams.set(u.target, u);
  return u;
}

export interface Route {
  /** Canonical key, as the API shows it (decoded, no trailing slash). */
  readonly path: string;
  readonly upstream: Upstream;
  readonly data: RouteData;
  /** Number of path segments of the key that belong to the URL path (host segment excluded). */
  readonly pathDepth: number;
}

export type RouteChange =
  | { readonly type: 'put'; readonly path: string; readonly data: RouteData }
  | { readonly type: 'delete'; readonly path: string };

export interface InvalidRoute {
  readonly path: string;
  readonly reason: string;
}

export interface TableOptions {
  /** CHP --host-routing: the first key segment is a host name, matched case-insensitively. */
  readonly hostRouting: boolean;
}

export class RoutingTable {
  readonly version: number;
  readonly size: number;
  readonly options: TableOptions;
  readonly #root: TrieNode<Route>;

  private constructor(version: number, root: TrieNode<Route>, size: number, options: TableOptions) {
    this.version = version;
    this.#root = root;
    this.size = size;
    this.options = options;
    Object.freeze(this);
  }

  static empty(options: TableOptions): RoutingTable {
    return new RoutingTable(0, EMPTY_TRIE, 0, options);
  }

  /**
   * A whole table from a store snapshot in one pass (startup, resync). Entries whose target does
   * not parse are reported and left out.
   */
  static build(
    options: TableOptions,
    routes: Iterable<readonly [string, RouteData]>,
    version: number,
    onInvalid?: (bad: InvalidRoute) => void,
  ): RoutingTable {
    const empty = RoutingTable.empty(options);
    const entries: [string[], Route][] = [];
    for (const [path, data] of routes) {
      let upstream: Upstream;
      try {
        upstream = upstreamOf(data.target);
      } catch (e) {
        onInvalid?.({ path, reason: e instanceof Error ? e.message : String(e) });
        continue;
      }
      const segs = empty.keySegments(path);
      const pathDepth = options.hostRouting && segs.length > 0 ? segs.length - 1 : segs.length;
      entries.push([segs, Object.freeze({ path, upstream, data, pathDepth })]);
    }
    return new RoutingTable(version, trieBuild(entries), entries.length, options);
  }

  /** Trie segments for a key: with host routing the host segment is lowercased. */
  keySegments(path: string): string[] {
    const segs = pathSegments(path);
    if (this.options.hostRouting && segs.length > 0) segs[0] = segs[0]!.toLowerCase();
    return segs;
  }

  /**
   * A new table with `changes` applied, at `version`. A put whose target does not parse is
   * reported through `onInvalid` and skipped; the previous value for that key (if any) stays.
   */
  apply(changes: Iterable<RouteChange>, version: number, onInvalid?: (bad: InvalidRoute) => void): RoutingTable {
    let root = this.#root;
    let size = this.size;
    for (const ch of changes) {
      const segs = this.keySegments(ch.path);
      const had = trieGet(root, segs) !== undefined;
      if (ch.type === 'delete') {
        if (had) {
          root = trieRemove(root, segs);
          size--;
        }
        continue;
      }
      let upstream: Upstream;
      try {
        upstream = upstreamOf(ch.data.target);
      } catch (e) {
        onInvalid?.({ path: ch.path, reason: e instanceof Error ? e.message : String(e) });
        continue;
      }
      const pathDepth = this.options.hostRouting && segs.length > 0 ? segs.length - 1 : segs.length;
      const route: Route = Object.freeze({ path: ch.path, upstream, data: ch.data, pathDepth });
      root = trieSet(root, segs, route);
      if (!had) size++;
    }
    return new RoutingTable(version, root, size, this.options);
  }

  /** Exact lookup by canonical key. */
  get(path: string): Route | undefined {
    return trieGet(this.#root, this.keySegments(path));
  }

  /**
   * Longest-prefix match on already split, decoded request segments. With host routing the
   * caller puts the lowercased host (no port) first. Hot path: allocation free.
   */
  match(segments: readonly string[]): Route | undefined {
    return trieMatch(this.#root, segments);
  }

  routes(): IterableIterator<Route> {
    return trieValues(this.#root);
  }
}
