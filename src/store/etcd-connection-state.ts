// The etcd store's connection state machine: one state, changed only by `nextState`, so what the
// store does after a failure, a reconnect or a cancelled watch can be read in one table.
//
//   state         health().connected   meaning
//   starting      false                start() has not loaded the table yet (it retries)
//   connected     true                 the mirror follows etcd through the route watch
//   disconnected  false                a call or the watch failed: the last table keeps serving
//   reconnecting  false                a full resync runs and its reload has not succeeded yet
//   resyncing     true                 a full resync runs; its reload succeeded (or etcd answers
//                                      and the watch was cancelled): a new watch is being created
//   closed        false                close() was called; every later event is ignored
//
// A resync is started exactly when the state enters `reconnecting` or `resyncing` from a state
// that is neither (see resyncStarts); the resync task reports `loaded` and `watching` as it goes
// and retries after `failed` until `watching` ends it (or `close`).
//
// This module is pure (no etcd3, no timers): test/unit/etcd-connection-state.test.ts drives it.

export type ConnectionState = 'starting' | 'connected' | 'disconnected' | 'reconnecting' | 'resyncing' | 'closed';

export type ConnectionEvent =
  /** A full read of the table succeeded (start()'s load or a resync's). */
  | { readonly type: 'loaded' }
  /** The route watch was created from the loaded revision: the mirror now follows etcd. */
  | { readonly type: 'watching' }
  /** A call gave up, a load failed or the watch stream broke: etcd is (for now) unreachable. */
  | { readonly type: 'failed'; readonly error: unknown }
  /** etcd answered again: a call succeeded or the route watch reconnected. */
  | { readonly type: 'reachable'; readonly reason: string }
  /** etcd cancelled the route watch (history compacted): its changes can no longer be replayed. */
  | { readonly type: 'cancelled'; readonly reason: string }
  | { readonly type: 'close' };

export interface StateChange {
  readonly from: ConnectionState;
  readonly to: ConnectionState;
  readonly event: ConnectionEvent;
}

/** What health().connected reports in each state (see the table above). */
export function isConnected(state: ConnectionState): boolean {
  return state === 'connected' || state === 'resyncing';
}

const RESYNC_STATES: ReadonlySet<ConnectionState> = new Set(['reconnecting', 'resyncing']);

/** True when this change starts a resync task (none runs in `from`, one runs in `to`). */
export function resyncStarts(change: StateChange): boolean {
  return !RESYNC_STATES.has(change.from) && RESYNC_STATES.has(change.to);
}

/**
 * The transition function. Every (state, event) pair not listed keeps the state.
 *
 *   starting      loaded -> connected (start() then creates the watch)
 *                 failed -> starting (start() retries with backoff)
 *   connected     failed -> disconnected
 *                 cancelled -> resyncing (starts a resync; etcd still answers)
 *   disconnected  reachable -> reconnecting (starts a resync: changes may have been missed while
 *                 the watch was down, or it was compacted away)
 *                 cancelled -> reconnecting (starts a resync)
 *   reconnecting  loaded -> resyncing; failed -> reconnecting (the resync retries)
 *   resyncing     watching -> connected (the resync is done); failed -> reconnecting
 *   any           close -> closed; closed ignores everything
 *
 * `reachable` in any other state changes nothing: while starting there is no watch to repair yet,
 * and while a resync runs it already reloads the table.
 */
export function nextState(state: ConnectionState, event: ConnectionEvent): ConnectionState {
  if (state === 'closed') return 'closed';
  if (event.type === 'close') return 'closed';
  switch (state) {
    case 'starting':
      return event.type === 'loaded' ? 'connected' : 'starting';
    case 'connected':
      if (event.type === 'failed') return 'disconnected';
      if (event.type === 'cancelled') return 'resyncing';
      return 'connected';
    case 'disconnected':
      if (event.type === 'reachable' || event.type === 'cancelled') return 'reconnecting';
      return 'disconnected';
    case 'reconnecting':
      return event.type === 'loaded' ? 'resyncing' : 'reconnecting';
    case 'resyncing':
      if (event.type === 'watching') return 'connected';
      if (event.type === 'failed') return 'reconnecting';
      return 'resyncing';
  }
}
