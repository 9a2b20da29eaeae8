#!/usr/bin/env node
// Summarise a V8 .cpuprofile (node --cpu-prof): self time by category and by function
// (summary.md), folded stacks (folded.txt: "frame;frame;frame samples" per line, what flamegraph
// tools read) and a self-contained flamegraph (flamegraph.svg, widths = share of samples).
//   node bench/profile-summary.mjs PROFILE.cpuprofile OUTDIR
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [file, out] = process.argv.slice(2);
if (!file || !out) {
  console.error('usage: profile-summary.mjs PROFILE.cpuprofile OUTDIR');
  process.exit(2);
}
const prof = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
// Self samples per node, from the sample list (hitCount is not always filled in).
const self = new Map();
for (const id of prof.samples) self.set(id, (self.get(id) ?? 0) + 1);
const total = prof.samples.length;

function category(cf) {
  const { url, functionName } = cf;
  if (url.includes('/dist/src/')) return 'switchyard';
  if (/^\(.*\)$/.test(functionName) && !url) return functionName; // (garbage collector), (program), (idle)
  if (/node:_http|node:http/.test(url)) return 'node http';
  if (/node:net|node:internal\/stream|node:stream|node:internal\/streams/.test(url)) return 'node net/streams';
  if (url.startsWith('node:')) return 'node other';
  if (!url) return 'native / V8 builtins';
  return 'other js';
}
const label = (cf) => `${cf.functionName || '(anonymous)'} ${cf.url.replace(/^.*\/dist\//, 'dist/').replace(/^file:\/\//, '')}:${cf.lineNumber + 1}`;

const cats = new Map();
const funcs = new Map();
for (const [id, n] of self) {
  const cf = byId.get(id).callFrame;
  const c = category(cf);
  cats.set(c, (cats.get(c) ?? 0) + n);
  const l = label(cf);
  funcs.set(l, (funcs.get(l) ?? 0) + n);
}
const pct = (n) => ((100 * n) / total).toFixed(1) + '%';
const idle = cats.get('(idle)') ?? 0;
const busy = total - idle;
const pctBusy = (n) => ((100 * n) / busy).toFixed(1) + '%';
let md = `# CPU profile: ${file.split('/').pop()}\n\n${total} samples, ${busy} not idle. Shares below are of the non-idle samples.\n\n`;
md += '| category (self time) | share |\n|---|---:|\n';
for (const [c, n] of [...cats].sort((a, b) => b[1] - a[1])) if (c !== '(idle)') md += `| ${c} | ${pctBusy(n)} |\n`;
md += '\n| top functions (self time) | share |\n|---|---:|\n';
for (const [f, n] of [...funcs].sort((a, b) => b[1] - a[1]).filter(([f]) => !f.startsWith('(idle)')).slice(0, 30)) md += `| \`${f}\` | ${pctBusy(n)} |\n`;
writeFileSync(join(out, 'summary.md'), md);

// Folded stacks: one line per node with self samples.
const stackOf = (id) => {
  const names = [];
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const cf = byId.get(cur).callFrame;
    if (cf.functionName === '(root)') break;
    names.push((cf.functionName || '(anonymous)').replace(/[; ]/g, '_'));
  }
  return names.reverse().join(';');
};
const folded = [];
for (const [id, n] of self) if (byId.get(id).callFrame.functionName !== '(idle)') folded.push(`${stackOf(id)} ${n}`);
writeFileSync(join(out, 'folded.txt'), folded.join('\n') + '\n');

// Flamegraph: inclusive samples per node, laid out root at the bottom.
const inclusive = new Map();
const incl = (id) => {
  if (inclusive.has(id)) return inclusive.get(id);
  const n = byId.get(id);
  let s = n.callFrame.functionName === '(idle)' ? 0 : self.get(id) ?? 0;
  for (const c of n.children ?? []) s += incl(c);
  inclusive.set(id, s);
  return s;
};
const root = prof.nodes[0].id;
incl(root);
const W = 1600;
const H = 16;
const colors = { switchyard: '#e8743b', 'node http': '#5b8def', 'node net/streams': '#47b39c', 'node other': '#9aa5b1', 'native / V8 builtins': '#f2c14e', 'other js': '#b07cc6' };
const rects = [];
let maxDepth = 0;
const lay = (id, x, depth) => {
  const w = (incl(id) / Math.max(busy, 1)) * W;
  if (w < 0.5) return;
  const cf = byId.get(id).callFrame;
  maxDepth = Math.max(maxDepth, depth);
  rects.push({ x, depth, w, cf, n: incl(id) });
  let cx = x;
  for (const c of byId.get(id).children ?? []) {
    lay(c, cx, depth + 1);
    cx += (incl(c) / Math.max(busy, 1)) * W;
  }
};
lay(root, 0, 0);
const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const height = (maxDepth + 1) * H + 40;
let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" font-family="monospace" font-size="11">\n`;
svg += `<text x="4" y="14">Switchyard CPU flamegraph (${busy} samples; orange = Switchyard's own code, blue = node http, green = net/streams, yellow = native/V8)</text>\n`;
for (const r of rects) {
  const y = height - (r.depth + 1) * H;
  const name = r.cf.functionName || '(anonymous)';
  const fill = r.depth === 0 ? '#ddd' : colors[category(r.cf)] ?? '#ccc';
  svg += `<g><title>${esc(label(r.cf))}: ${pctBusy(r.n)}</title><rect x="${r.x.toFixed(1)}" y="${y}" width="${r.w.toFixed(1)}" height="${H - 1}" fill="${fill}"/>`;
  if (r.w > 40) svg += `<text x="${(r.x + 2).toFixed(1)}" y="${y + 11}">${esc(name.slice(0, Math.floor(r.w / 7)))}</text>`;
  svg += '</g>\n';
}
svg += '</svg>\n';
writeFileSync(join(out, 'flamegraph.svg'), svg);
console.log(md);
