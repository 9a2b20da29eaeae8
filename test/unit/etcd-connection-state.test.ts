// The etcd store's connection state machine (store/etcd-connection-state.ts) driven by events,
// without etcd: every documented transition, what health().connected reports in each state, when
// a resync starts, and EtcdConnection's dispatch/onState/call on a client whose etcd is not there.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import { ErrorCode, SwitchyardError } from '../../src/errors.js';
import {
  isConnected,
  nextState,
  resyncStarts,
  type ConnectionEvent,
  type ConnectionState,
  type StateChange,
} from '../../src/store/etcd-connection-state.js';
import { EtcdConnection } from '../../src/store/etcd-connection.js';

const ev = {
  loaded: { type: 'loaded' },
  watching: { type: 'watching' },
  failed: { type: 'failed', error: new Error('14 UNAVAILABLE: No connection established') },
  reachable: { type: 'reachable', reason: 'etcd reachable again' },
  cancelled: { type: 'cancelled', reason: 'watch cancelled' },
  close: { type: 'close' },
} as const satisfies Record<string, ConnectionEvent>;
type EventName = keyof typeof ev;
const STATES: readonly ConnectionState[] = ['starting', 'connected', 'disconnected', 'reconnecting', 'resyncing', 'closed'];

// The complete table: every (state, event) pair, so a new transition cannot slip in untested.
const TABLE: Record<ConnectionState, Record<EventName, ConnectionState>> = {
  starting: { loaded: 'connected', watching: 'starting', failed: 'starting', reachable: 'starting', cancelled: 'starting', close: 'closed' },
  connected: { loaded: 'connected', watching: 'connected', failed: 'disconnected', reachable: 'connected', cancelled: 'resyncing', close: 'closed' },
  disconnected: { loaded: 'disconnected', watching: 'disconnected', failed: 'disconnected', reachable: 'reconnecting', cancelled: 'reconnecting', close: 'closed' },
  reconnecting: { loaded: 'resyncing', watching: 'reconnecting', failed: 'reconnecting', reachable: 'reconnecting', cancelled: 'reconnecting', close: 'closed' },
  resyncing: { loaded: 'resyncing', watching: 'connected', failed: 'reconnecting', reachable: 'resyncing', cancelled: 'resyncing', close: 'closed' },
  closed: { loaded: 'closed', watching: 'closed', failed: 'closed', reachable: 'closed', cancelled: 'closed', close: 'closed' },
};

const DESC: Partial<Record<`${ConnectionState}.${EventName}`, string>> = {
  'starting.loaded': 'the first full read makes the store connected',
  'starting.failed': 'start() keeps retrying: still starting',
  'starting.reachable': 'no watch to repair before start() ends: no resync',
  'connected.failed': 'a call gave up or the watch broke: serve the last table, not connected',
  'connected.cancelled': 'compacted history while etcd answers: resync, still connected',
  'disconnected.reachable': 'etcd answers again (call or watch reconnect): resync, changes may have been missed',
  'disconnected.cancelled': 'a cancelled watch while down: resync',
  'reconnecting.loaded': 'the resync read the table: connected again while the new watch is created',
  'reconnecting.reachable': 'a resync already runs: no second one',
  'resyncing.watching': 'the new watch follows etcd: the resync is done',
  'resyncing.failed': 'the resync failed after its read: it retries, not connected',
  'resyncing.cancelled': 'a resync already runs: no second one',
};

for (const from of STATES) {
  for (const name of Object.keys(ev) as EventName[]) {
    const to = TABLE[from][name];
    const desc = DESC[`${from}.${name}`] ?? (from === 'closed' ? 'closed ignores every event' : name === 'close' ? 'close ends every state' : 'no effect');
    test(`etcd connection: ${from} --${name}--> ${to} (${desc})`, () => {
      assert.equal(nextState(from, ev[name]), to);
    });
  }
}

test('etcd connection: health().connected per state', () => {
  const connected = STATES.filter(isConnected);
  assert.deepEqual(connected, ['connected', 'resyncing']);
});

test('etcd connection: a resync starts exactly on entering a resync state from outside them', () => {
  const starts: string[] = [];
  for (const from of STATES) {
    for (const name of Object.keys(ev) as EventName[]) {
      const change: StateChange = { from, to: nextState(from, ev[name]), event: ev[name] };
      if (change.to !== change.from && resyncStarts(change)) starts.push(`${from}.${name}`);
    }
  }
  assert.deepEqual(starts.sort(), ['connected.cancelled', 'disconnected.cancelled', 'disconnected.reachable']);
});

// A whole outage as the store lives it: start, a broken watch, a failed write, etcd back, the
// resync's read failing once, then succeeding.
test('etcd connection: an outage and recovery walk through the states with one resync', () => {
  const story: [EventName, ConnectionState][] = [
    ['failed', 'starting'], // etcd unreachable at startup
    ['loaded', 'connected'],
    ['watching', 'connected'], // start() created its watch
    ['failed', 'disconnected'], // watch disconnected
    ['failed', 'disconnected'], // a write failed fast
    ['reachable', 'reconnecting'], // the watch reconnected: resync
    ['reachable', 'reconnecting'], // a call succeeded meanwhile: same resync
    ['failed', 'reconnecting'], // the resync's read failed: it retries
    ['loaded', 'resyncing'],
    ['cancelled', 'resyncing'], // the old watch's cancel arrives late: nothing new
    ['watching', 'connected'],
    ['close', 'closed'],
    ['reachable', 'closed'],
  ];
  let state: ConnectionState = 'starting';
  let resyncs = 0;
  for (const [name, expected] of story) {
    const to = nextState(state, ev[name]);
    if (resyncStarts({ from: state, to, event: ev[name] })) resyncs++;
    assert.equal(to, expected, `${state} --${name}-->`);
    state = to;
  }
  assert.equal(resyncs, 1);
});

const silent = createLogger({ level: 'error', write: () => {} });

test('EtcdConnection: dispatch tells onState listeners about changes only, and keeps the last error', (t) => {
  const conn = new EtcdConnection({ endpoints: ['127.0.0.1:1'], log: silent });
  t.after(() => conn.closeClient());
  const heard: string[] = [];
  conn.onState((c) => heard.push(`${c.from}->${c.to}:${c.event.type}`));
  assert.equal(conn.state, 'starting');
  conn.dispatch({ type: 'failed', error: new Error('first line\nsecond line') });
  assert.equal(conn.lastError, 'first line');
  conn.dispatch({ type: 'loaded' });
  assert.equal(conn.lastError, undefined, 'a full read clears the error');
  conn.dispatch({ type: 'watching' });
  conn.dispatch({ type: 'reachable', reason: 'x' });
  conn.dispatch({ type: 'cancelled', reason: 'watch cancelled' });
  conn.dispatch({ type: 'close' });
  assert.equal(conn.closed, true);
  assert.deepEqual(heard, ['starting->connected:loaded', 'connected->resyncing:cancelled', 'resyncing->closed:close']);
});

test('EtcdConnection: a call with no etcd listening fails fast with SWY_STORE_UNAVAILABLE and disconnects', async (t) => {
  const conn = new EtcdConnection({ endpoints: ['127.0.0.1:1'], log: silent, callTimeoutMs: 1000 });
  t.after(() => conn.closeClient());
  conn.dispatch({ type: 'loaded' });
  const t0 = Date.now();
  await assert.rejects(
    conn.call('read', () => conn.client.get('/x').string()),
    (e: unknown) => e instanceof SwitchyardError && e.code === ErrorCode.STORE_UNAVAILABLE && /route store \(etcd\) unavailable/.test(e.message),
  );
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  assert.equal(conn.state, 'disconnected');
  assert.ok(conn.lastError, 'the failure is recorded');
});
