// preload: on SIGUSR2 write memory + loaded modules to $PROBE_OUT.<n>.json
import { createRequire } from 'node:module';
import { writeFileSync, readFileSync } from 'node:fs';
import v8 from 'node:v8';
const req = createRequire(import.meta.url);
let n = 0;
const esm = new Set();
process.on('SIGUSR2', () => {
  const smaps = readFileSync('/proc/self/smaps_rollup', 'utf8');
  const out = {
    mu: process.memoryUsage(),
    heap: v8.getHeapStatistics(),
    spaces: v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size, s.space_size]),
    code: v8.getHeapCodeStatistics(),
    smaps,
    cjs: Object.keys(req.cache),
  };
  writeFileSync(`${process.env.PROBE_OUT}.${n++}.json`, JSON.stringify(out, null, 1));
});
process.on('SIGWINCH', () => { v8.writeHeapSnapshot(`${process.env.PROBE_OUT}.heapsnapshot`); });
