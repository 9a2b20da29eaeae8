// Resident memory of a process group (every process whose stat field 5 is `pgid`), in KiB:
// run.sh starts each service in its own session, so this is the service with all its workers.
'use strict';
const fs = require('fs');

function rssKb(pgid) {
  if (!pgid) return 0;
  let total = 0;
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid) continue;
      const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) total += Number(m[1]);
    } catch { /* the process went away */ }
  }
  return total;
}

module.exports = { rssKb };
