// How many TCP connections a Switchyard primary's etcd client keeps to each etcd member after a
// leader change under concurrent API writes.
//
// Contract (issue 11, soak: etcd members' fds flat): after the election the client holds at most one
// connection per member. Before the fix, etcd3 reset a live member's gRPC channels on every error
// that member answered during the election ("leader changed", "raft proposal dropped"); grpc-js
// closed the old HTTP/2 sessions gracefully, so the route watch and the lease keep-alive stayed on
// them, and the client kept 2-3 connections per member for good (bench/etcd-client-connections.mjs).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tcpSocketsOf } from '../helpers/proc-net.js';
import { startEtcd, type EtcdMember } from '../helpers/etcd.js';
import { startBackend, startSwitchyardProcess, waitFor } from '../helpers/servers.js';

/** Remote port -> number of TCP sockets `pid` holds to it. */
function tcpPeers(pid: number): Map<number, number> {
  const peers = new Map<number, number>();
  for (const s of tcpSocketsOf(pid)) if (!s.listening) peers.set(s.remotePort, (peers.get(s.remotePort) ?? 0) + 1);
  return peers;
}

test('etcd leader killed and restarted under concurrent writes: the primary keeps at most one connection per member', { timeout: 240_000 }, async (t) => {
  const etcd = await startEtcd(t, 3);
  const backend = await startBackend(t, 'CC');
  const r = await startSwitchyardProcess(t, ['--workers', '1', '--store', `etcd://${etcd.endpoints}`, '--store-prefix', '/client-connections/']);
  const perMember = (): Record<string, number> => {
    const peers = tcpPeers(r.pid);
    return Object.fromEntries(etcd.members.map((m: EtcdMember) => [m.name, peers.get(m.clientPort) ?? 0]));
  };

  let stop = false;
  let n = 0;
  const statuses = new Map<number, number>();
  const writer = async (k: number): Promise<void> => {
    while (!stop) {
      const res = await r.api('POST', `/api/routes/cc/${k}/${n++ % 20}`, { target: backend.url });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    }
  };
  // Concurrent writers (sequential writes alone did not strand connections): while some calls wait
  // on the dead leader, others get the election's errors from the live members.
  const writers = Array.from({ length: 16 }, (_, k) => writer(k));
  try {
    await waitFor(() => n >= 50, 30_000, 'writes before the kill');
    t.diagnostic(`before the kill: ${JSON.stringify(perMember())}`);
    const leader = await etcd.leader();
    await etcd.stop(leader, 'SIGKILL');
    const atKill = n;
    await waitFor(() => n >= atKill + 100, 60_000, 'writes across the election');
    await etcd.start(leader);
    await etcd.waitHealthy(leader, 30_000);
    const atRestart = n;
    // Until the client uses the restarted member again (a channel replaced while that member was
    // down is what stranded a connection to it).
    await waitFor(() => n >= atRestart + 200 && (tcpPeers(r.pid).get(leader.clientPort) ?? 0) >= 1, 60_000, 'writes after the restart, reaching the restarted member');
    t.diagnostic(`leader ${leader.name} killed and restarted; ${n} writes, statuses ${JSON.stringify([...statuses])}`);
  } finally {
    stop = true;
    await Promise.all(writers);
  }
  assert.ok((statuses.get(201) ?? 0) > 0, 'writes succeeded');

  // A replaced connection may take a moment to close (a channel reset while connecting is closed
  // once it connects or after 1 s); stranded ones never do.
  let last: Record<string, number> = {};
  await waitFor(
    () => {
      last = perMember();
      return Object.values(last).every((c) => c <= 1);
    },
    15_000,
    'at most one connection per etcd member',
  ).catch((e: unknown) => {
    throw new Error(`${(e as Error).message}; connections per member: ${JSON.stringify(last)}`);
  });
  t.diagnostic(`after: ${JSON.stringify(last)}`);
  assert.ok(Object.values(last).some((c) => c === 1), 'the client is connected to etcd at all (the count reads real sockets)');
  // The client still works over what it kept.
  assert.equal((await r.api('POST', '/api/routes/cc/final', { target: backend.url })).status, 201);
  assert.ok(Object.values(perMember()).every((c) => c <= 1), `still at most one per member: ${JSON.stringify(perMember())}`);
});
