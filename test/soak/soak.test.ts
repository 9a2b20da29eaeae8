// The short soak-and-chaos run for CI (issue 11, item 8); the long run is `DURATION=600 node
// bench/soak.mjs`, its figures in bench/README.md. Same harness (test/soak/soak.ts): 3-member etcd,
// 3 replicas (real CLI, 2 workers each), steady load on stable routes, route churn through the
// APIs, one replica SIGKILLed and restarted at 1/3, the etcd leader SIGKILLed and restarted at 2/3.
// Asserted (counts, not timings, so a slow machine does not fail it): no failed stable-route
// request on a live replica, no churn write failed outside a chaos window and writes succeed after
// it, no process crashed or outlived its primary, every replica ends on the acknowledged table.
// fd/RSS flatness needs minutes and is only reported here (t.diagnostic), judged on the long run.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { killAll, runSoak, summarize } from './soak.js';

test('soak (short): steady load, route churn, replica kill -9 and etcd leader kill: 0 failed stable requests', { timeout: 240_000 }, async (t) => {
  t.after(killAll);
  const report = await runSoak({
    durationS: 45,
    loadRate: 100,
    churnRate: 25,
    sampleMs: 3000,
    workers: 2,
    etcdDownMs: 3000,
    log: (line) => t.diagnostic(line),
  });
  for (const line of summarize(report).split('\n')) t.diagnostic(line);

  assert.equal(report.chaos.length, 2, 'both chaos steps ran');
  assert.ok(report.chaos.every((c) => c.readyS !== undefined), 'every killed process came back');
  assert.deepEqual(report.load.failures, [], 'no failed stable-route request');
  assert.equal(report.load.failed, 0);
  // The load ran on every replica, also on the restarted one (r2 counts both incarnations).
  assert.ok(report.load.ok >= 100 * 45 * 0.5, `load ran (${report.load.ok} ok)`);
  for (const [name, v] of Object.entries(report.load.perReplica)) assert.ok(v.ok > 100, `${name} served load (${v.ok})`);
  assert.deepEqual(report.churn.failures.filter((f) => !f.where.endsWith('(chaos window)')), [], 'no churn failure outside the chaos windows');
  assert.ok(report.churn.ok >= 25 * 45 * 0.5, `churn ran (${report.churn.ok} ok)`);
  assert.ok(report.churn.okAfterLastChaos > 0, 'churn writes succeed after the etcd member is back');
  assert.deepEqual(report.unexpectedExits, [], 'no process crashed');
  assert.deepEqual(report.orphanWorkers, [], "no worker outlived its killed primary");
  assert.ok(report.consistency.ok, report.consistency.detail);
});
