// Soak and chaos run (issue 11, item 8): see test/soak/soak.ts for what it does and counts.
//
//   npx tsc -p tsconfig.json                 # the harness and the CLI under test live in dist/
//   DURATION=600 node bench/soak.mjs         # the long run (10 min + ~30 s of set-up and checks)
//   DURATION=60 node bench/soak.mjs          # a quick one
// Knobs (environment): DURATION (s, default 600), LOAD_RATE (req/s, 300), CHURN_RATE (changes/s, 50),
// STABLE_ROUTES (20), SAMPLE_MS (5000), WORKERS (default: the CLI's default, one per core),
// ETCD_DOWN_MS (how long the killed etcd member stays down; default 5% of the run, 3-10 s),
// OUT (directory for soak.json and summary.md; default bench/results/soak-<timestamp>),
// LIVE_MEMORY=1 (replicas run with --inspect on a free loopback port, workers inherit it; every primary's and
// worker's live memory, heapUsed + external after full GCs, is read at the baseline and at the end,
// and the flatness verdict judges those processes on it instead of RSS; see test/soak/soak.ts).
// Exit status 0 only when every target is met (0 stable failures, no churn failure outside the
// chaos windows, no crash, consistent tables, fd/RSS flat within ±10% from minute 2 to the end;
// with LIVE_MEMORY=1, live memory instead of RSS for the Node processes).

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const { runSoak, summarize, killAll } = await import(join(here, '..', 'dist', 'test', 'soak', 'soak.js'));

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
