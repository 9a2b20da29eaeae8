// Soak and chaos run (issue 11, item 8): see test/soak/soak.ts for what it does and counts.
//
//   npx tsc -p tsconfig.json                 # the harness and the CLI under test live in dist/
//   DURATION=600 node bench/soak.mjs         # the long run (10 min + ~30 s of set-up and checks)
//   DURATION=60 node bench/soak.mjs          # a quick one
// Knobs (environment): DURATION (s, default 600), LOAD_RATE (req/s, 300), CHURN_RATE (changes/s, 50),
// STABLE_ROUTES (20), SAMPLE_MS (5000), WORKERS (default: the CLI's default, one per core),
// ETCD_DOWN_MS (how long the killed etcd member stays down; default 5% of the run, 3-10 s),
// ETCD_WARMUP (s, default 0: none): before t=0, 3 throwaway replicas on the same etcd cluster (prefix
// /soak-warmup/) carry the run's load and churn rates for this long, then stop; the cluster is then a
// long-running one, as in production, and not fresh at t=0 (test/soak/soak.ts, warmEtcd);
// ETCD_WARMUP_LEADER_KILL (1 or 0, default 1): the warm-up also SIGKILLs the etcd leader at 1/3 of it
// and restarts it after ETCD_DOWN_MS (the run's etcd chaos step, once);
// OUT (directory for soak.json and summary.md; default bench/results/soak-<timestamp>),
// LIVE_MEMORY=1 (replicas run with --inspect on a free loopback port, workers inherit it; every primary's and
// worker's live memory, heapUsed + external after full GCs, is read at the baseline and at the end,
// and the flatness verdict judges those processes on it instead of RSS; see test/soak/soak.ts).
// Exit status 0 only when every target is met (0 stable failures, no churn failure outside the
// chaos windows, no crash, consistent tables, fd/RSS flat within ±10% from minute 2 to the end;
// with LIVE_MEMORY=1, live memory instead of RSS for the Node processes).
// Flatness (test/soak/soak.ts, judgeFlat): RSS (VmRSS) of every process; fds without the ones that
// follow the load (a worker's pooled upstream sockets, checked instead against their bound of
// origins x accepted connections at every sample; the harness's own connections to etcd). The
// summary has a table with each process's change and a yes/no per target, RSS at every minute,
// and for etcd members the Go runtime's figures (/metrics at every sample).
// REJUDGE=dir/soak.json node bench/soak.mjs: judge and summarize a recorded run again (no run).
// Where a worker's memory goes, sample by sample: bench/memory-probe.mjs (NODE_OPTIONS=--import=...).

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const { runSoak, summarize, killAll, judgeFlat } = await import(join(here, '..', 'dist', 'test', 'soak', 'soak.js'));

if (process.env.REJUDGE) {
  const report = JSON.parse(readFileSync(process.env.REJUDGE, 'utf8'));
  report.verdict.flatDetail = judgeFlat(report.processes);
  report.verdict.flat = report.verdict.flatDetail.length === 0;
  writeFileSync(process.env.REJUDGE, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(join(dirname(process.env.REJUDGE), 'summary.md'), summarize(report) + '\n');
  process.stdout.write(summarize(report) + '\n');
  process.exit(0);
}

const env = (name, dflt) => (process.env[name] === undefined || process.env[name] === '' ? dflt : Number(process.env[name]));
const options = {
  durationS: env('DURATION', 600),
  loadRate: env('LOAD_RATE', 300),
  churnRate: env('CHURN_RATE', 50),
  stableRoutes: env('STABLE_ROUTES', 20),
  sampleMs: env('SAMPLE_MS', 5000),
  workers: env('WORKERS', undefined),
  etcdDownMs: env('ETCD_DOWN_MS', undefined),
  liveMemory: env('LIVE_MEMORY', 0) === 1,
  etcdWarmupS: env('ETCD_WARMUP', undefined),
  etcdWarmupLeaderKill: process.env.ETCD_WARMUP_LEADER_KILL === undefined || process.env.ETCD_WARMUP_LEADER_KILL === '' ? undefined : process.env.ETCD_WARMUP_LEADER_KILL !== '0',
  log: (line) => process.stderr.write(`[soak] ${line}\n`),
};
for (const k of Object.keys(options)) if (options[k] === undefined) delete options[k];

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    process.stderr.write(`[soak] ${sig}: killing every process the run started\n`);
    void killAll().finally(() => process.exit(130));
  });
}

const stamp = new Date().toISOString().replace(/[-:]/g, '').slice(0, 13).replace('T', '-');
const out = process.env.OUT || join(here, 'results', `soak-${stamp}`);
const report = await runSoak(options);
const summary = summarize(report);
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'soak.json'), JSON.stringify(report, null, 2) + '\n');
writeFileSync(join(out, 'summary.md'), summary + '\n');
process.stdout.write(summary + `\n\nwritten to ${out}/soak.json and summary.md\n`);
const v = report.verdict;
process.exit(v.zeroStableFailures && v.churnOkOutsideChaos && v.noCrash && v.consistent && v.flat ? 0 : 1);
