// `perf script -F comm,tid,ip,sym,dso` text (bench/perf-profile.sh) -> a markdown summary of the
// main thread's on-CPU samples: kernel vs user (by the leaf frame), the syscalls the kernel time
// is under, then among user-leaf samples the inclusive and self shares of the top frames.
//   node bench/perf-summary.mjs perf.txt "title" > summary.md
import { readFileSync } from 'node:fs';

const [file, title = ''] = process.argv.slice(2);
const blocks = readFileSync(file, 'utf8').split('\n\n');
const frame = (l) => {
  const m = /^\s*[0-9a-f]+ (.*) \((.*)\)$/.exec(l);
  if (!m) return null;
  const sym = m[1].replace(/\+0x[0-9a-f]+$/, '').replace(/file:\/\/\/\S*\/dist\//, 'dist/');
  return { sym, kernel: m[2].includes('kernel') };
};
let all = 0;
let kernel = 0;
const bySyscall = new Map();
const incl = new Map();
const self = new Map();
let user = 0;
const add = (m, k) => m.set(k, (m.get(k) ?? 0) + 1);
for (const b of blocks) {
  const lines = b.trim().split('\n');
  if (!lines[0]?.startsWith('MainThread') && !lines[0]?.startsWith('node')) continue;
  const frames = lines.slice(1).map(frame).filter(Boolean);
  if (frames.length === 0) continue;
  all++;
  if (frames[0].kernel) {
    kernel++;
    const u = frames.find((f) => !f.kernel);
    add(bySyscall, u ? u.sym : '(kernel only)');
    continue;
  }
  user++;
  const seen = new Set();
  for (const f of frames) if (!seen.has(f.sym)) (seen.add(f.sym), add(incl, f.sym));
  add(self, frames[0].sym);
}
const pct = (n, d) => `${((100 * n) / d).toFixed(1)}%`;
const table = (m, d, k, skip = () => false) =>
  [...m].filter(([s]) => !skip(s)).sort((a, b) => b[1] - a[1]).slice(0, k).map(([s, n]) => `| \`${s.replaceAll('|', '\\|')}\` | ${pct(n, d)} |`).join('\n');
const plumbing = (s) => /^(uv_run|uv__io_poll|node::Start|node::NodeMainInstance::Run|node::SpinEventLoopInternal|__libc_start_call_main|_start)$/.test(s);
console.log(`# perf profile (on-CPU samples of the proxy's main thread): ${title}

${all} samples: kernel ${pct(kernel, all)} (leaf frame in the kernel), user ${pct(user, all)}.

| kernel time under (first user frame) | share of all samples |
|---|---:|
${table(bySyscall, all, 8)}

## User-leaf samples: inclusive (top 60, event-loop plumbing left out)

| frame | share of user samples |
|---|---:|
${table(incl, user, 60, plumbing)}

## User-leaf samples: self (top 30)

| frame | share of user samples |
|---|---:|
${table(self, user, 30)}`);
