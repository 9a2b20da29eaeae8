// A persistent (immutable, structurally shared) segment trie.
//
// Contract: no method mutates an existing node; `set`/`remove` return a new root that shares every
// untouched subtree with the old one. That is what lets the route watcher publish a new table per
// change (tables are swapped whole, never mutated in place) at O(depth) cost instead of O(routes).
// Nodes with very many children (e.g. /user/<100k names>) keep them in 64 hashed shards, so a
// change copies one shard (~1/64th) rather than the whole fan-out.
//
// Matching is longest prefix by whole segment: "/bar" matches "/bar/x" but not "/barx".

const SHARDS = 64;
const SHARD_THRESHOLD = 512;

type Children<T> =
  | { readonly kind: 'flat'; readonly map: ReadonlyMap<string, TrieNode<T>> }
  | { readonly kind: 'sharded'; readonly shards: readonly ReadonlyMap<string, TrieNode<T>>[]; readonly size: number };

export interface TrieNode<T> {
  readonly value: T | undefined;
  readonly children: Children<T> | undefined;
}

const EMPTY_MAP: ReadonlyMap<string, never> = new Map<string, never>();

function shardOf(key: string): number {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) | 0;
  return h & (SHARDS - 1);
}

function childGet<T>(c: Children<T> | undefined, key: string): TrieNode<T> | undefined {
  if (c === undefined) return undefined;
  if (c.kind === 'flat') return c.map.get(key);
  return c.shards[shardOf(key)]!.get(key);
}

function childCount<T>(c: Children<T> | undefined): number {
  if (c === undefined) return 0;
  return c.kind === 'flat' ? c.map.size : c.size;
}

function childSet<T>(c: Children<T> | undefined, key: string, node: TrieNode<T> | undefined): Children<T> | undefined {
  if (c === undefined || c.kind === 'flat') {
    const m = new Map(c === undefined ? EMPTY_MAP : c.map);
    if (node === undefined) m.delete(key);
    else m.set(key, node);
    if (m.size === 0) return undefined;
    if (m.size <= SHARD_THRESHOLD) return { kind: 'flat', map: m };
    const shards: Map<string, TrieNode<T>>[] = Array.from({ length: SHARDS }, () => new Map());
    for (const [k, v] of m) shards[shardOf(k)]!.set(k, v);
    return { kind: 'sharded', shards, size: m.size };
  }
  const i = shardOf(key);
  const old = c.shards[i]!;
  const had = old.has(key);
  const shard = new Map(old);
  if (node === undefined) shard.delete(key);
  else shard.set(key, node);
  const size = c.size + (node === undefined ? (had ? -1 : 0) : had ? 0 : 1);
  if (size === 0) return undefined;
  if (size <= SHARD_THRESHOLD / 2) {
    const m = new Map<string, TrieNode<T>>();
    c.shards.forEach((s, j) => {
      for (const [k, v] of j === i ? shard : s) m.set(k, v);
    });
    return { kind: 'flat', map: m };
  }
  const shards = c.shards.slice();
  shards[i] = shard;
  return { kind: 'sharded', shards, size };
}

export const EMPTY_TRIE: TrieNode<never> = Object.freeze({ value: undefined, children: undefined });

/** Return a new root with `value` stored at `segments`. */
export function trieSet<T>(root: TrieNode<T>, segments: readonly string[], value: T, depth = 0): TrieNode<T> {
  if (depth === segments.length) return { value, children: root.children };
  const key = segments[depth]!;
  const child = childGet(root.children, key) ?? (EMPTY_TRIE as TrieNode<T>);
  return { value: root.value, children: childSet(root.children, key, trieSet(child, segments, value, depth + 1)) };
}

/** Return a new root without a value at `segments` (prunes empty branches); same root if absent. */
export function trieRemove<T>(root: TrieNode<T>, segments: readonly string[], depth = 0): TrieNode<T> {
  if (depth === segments.length) {
    if (root.value === undefined) return root;
    return { value: undefined, children: root.children };
  }
  const key = segments[depth]!;
  const child = childGet(root.children, key);
  if (child === undefined) return root;
  const next = trieRemove(child, segments, depth + 1);
  if (next === child) return root;
  const keep = next.value !== undefined || next.children !== undefined;
  return { value: root.value, children: childSet(root.children, key, keep ? next : undefined) };
}

interface MutableNode<T> {
  value: T | undefined;
  children: Map<string, MutableNode<T>> | undefined;
}

function freeze<T>(m: MutableNode<T>): TrieNode<T> {
  if (m.children === undefined) return { value: m.value, children: undefined };
  const kids = new Map<string, TrieNode<T>>();
  for (const [k, v] of m.children) kids.set(k, freeze(v));
  let children: Children<T>;
  if (kids.size <= SHARD_THRESHOLD) children = { kind: 'flat', map: kids };
  else {
    const shards: Map<string, TrieNode<T>>[] = Array.from({ length: SHARDS }, () => new Map());
    for (const [k, v] of kids) shards[shardOf(k)]!.set(k, v);
    children = { kind: 'sharded', shards, size: kids.size };
  }
  return { value: m.value, children };
}

/**
 * Build a trie from scratch in O(total segments): used for whole-table loads (startup, resync),
 * where inserting one by one through trieSet would copy large fan-outs once per route.
 */
export function trieBuild<T>(entries: Iterable<readonly [readonly string[], T]>): TrieNode<T> {
  const root: MutableNode<T> = { value: undefined, children: undefined };
  for (const [segments, value] of entries) {
    let n = root;
    for (const seg of segments) {
      n.children ??= new Map();
      let c = n.children.get(seg);
      if (c === undefined) {
        c = { value: undefined, children: undefined };
        n.children.set(seg, c);
      }
      n = c;
    }
    n.value = value;
  }
  return freeze(root);
}

/** Exact lookup. */
export function trieGet<T>(root: TrieNode<T>, segments: readonly string[]): T | undefined {
  let node: TrieNode<T> | undefined = root;
  for (let i = 0; i < segments.length && node !== undefined; i++) node = childGet(node.children, segments[i]!);
  return node?.value;
}

/**
 * Longest-prefix match. `segments` may be longer than any stored key; the deepest node on the path
 * that holds a value wins. Hot path: no allocation.
 */
export function trieMatch<T>(root: TrieNode<T>, segments: readonly string[], start = 0): T | undefined {
  let best = root.value;
  let node: TrieNode<T> | undefined = root;
  for (let i = start; i < segments.length; i++) {
    node = childGet(node.children, segments[i]!);
    if (node === undefined) break;
    if (node.value !== undefined) best = node.value;
  }
  return best;
}

/** Visit every stored value (depth first); for listings, not the hot path. */
export function* trieValues<T>(root: TrieNode<T>): Generator<T> {
  const stack: TrieNode<T>[] = [root];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (n.value !== undefined) yield n.value;
    const c = n.children;
    if (c === undefined) continue;
    if (c.kind === 'flat') for (const v of c.map.values()) stack.push(v);
    else for (const s of c.shards) for (const v of s.values()) stack.push(v);
  }
}

export function trieChildCount<T>(n: TrieNode<T>): number {
  return childCount(n.children);
}
