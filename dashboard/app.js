// Switchyard dashboard (served at /dashboard/ by the API server; no build step, no dependencies).
//
// Data comes from GET /dashboard/api/events (Server-Sent Events): `hello` (the whole table and
// status), then `routes` (table diffs), `reset` (whole table again) and `tick` (changed per-route
// figures + status). Everything from the server is written with textContent, never as HTML: route
// paths, targets and data are user input. The route list is virtualised: only the rows in view
// exist in the DOM, so 10,000+ routes stay responsive.

const ROW_H = 28;
const OVERSCAN = 10;

const $ = (id) => document.getElementById(id);
const text = (el, value) => {
  const s = value === undefined || value === null ? '' : String(value);
  if (el.textContent !== s) el.textContent = s;
};

/** path -> { path, target, data, dataText, la, rate, err, lat, req, errs } */
const routes = new Map();
let status = null;
let clockSkew = 0; // server time - local time
let view = [];
let viewDirty = true;
let renderQueued = false;
let source = null;
const rowPool = [];

// ---------- formatting ----------
function fmtRate(x) {
  if (!x) return '0';
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}
function fmtMs(x) {
  if (!x) return '–';
  return x >= 1000 ? (x / 1000).toFixed(2) + ' s' : x >= 10 ? x.toFixed(0) + ' ms' : x.toFixed(1) + ' ms';
}
function fmtBytes(n) {
  if (n === undefined || n === null) return '–';
  const mb = n / (1024 * 1024);
  return mb >= 1024 ? (mb / 1024).toFixed(2) + ' GiB' : mb.toFixed(1) + ' MiB';
}
function fmtAgo(t) {
  if (!t) return 'never';
  const s = Math.max(0, Math.round((Date.now() + clockSkew - t) / 1000));
  if (s < 60) return s + 's ago';
  if (s < 3600) return Math.floor(s / 60) + 'm ago';
  if (s < 86400) return Math.floor(s / 3600) + 'h ago';
  return Math.floor(s / 86400) + 'd ago';
}
function fmtUptime(s) {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return (d ? d + 'd ' : '') + (h || d ? h + 'h ' : '') + m + 'm ' + (s % 60) + 's';
}

// ---------- routes model ----------
function setRoute(row) {
  const [path, target, data, la, rate, err, lat, req, errs] = row;
  routes.set(path, {
    path,
    target,
    data,
    dataText: data ? JSON.stringify(data) : '',
    la: la || 0,
    rate: rate || 0,
    err: err || 0,
    lat: lat || 0,
    req: req || 0,
    errs: errs || 0,
  });
}

function replaceAll(rows) {
  routes.clear();
  for (const r of rows) setRoute(r);
  viewDirty = true;
}

function applyLive(live) {
  for (const [path, rate, err, lat, req, errs, la] of live) {
    const r = routes.get(path);
    if (!r) continue;
    r.rate = rate;
    r.err = err;
    r.lat = lat;
    r.req = req;
    r.errs = errs;
    if (la && la > r.la) r.la = la;
  }
  const sort = $('sort').value;
  if ($('filter').value !== 'all' || sort !== 'path') viewDirty = true;
}

function computeView() {
  const q = $('search').value.trim().toLowerCase();
  const filter = $('filter').value;
  const sort = $('sort').value;
  const out = [];
  for (const r of routes.values()) {
    if (filter === 'active' && !(r.rate > 0)) continue;
    if (filter === 'errors' && !(r.err > 0 || r.errs > 0)) continue;
    if (filter === 'idle' && r.rate > 0) continue;
    if (q && !r.path.toLowerCase().includes(q) && !String(r.target).toLowerCase().includes(q) && !r.dataText.toLowerCase().includes(q)) continue;
    out.push(r);
  }
  const byPath = (a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  const by = {
    path: byPath,
    rate: (a, b) => b.rate - a.rate || byPath(a, b),
    errors: (a, b) => b.err - a.err || b.errs - a.errs || byPath(a, b),
    latency: (a, b) => b.lat - a.lat || byPath(a, b),
    activity: (a, b) => b.la - a.la || byPath(a, b),
  }[sort];
  out.sort(by);
  view = out;
  viewDirty = false;
  text($('route-count'), `${out.length.toLocaleString('en')} of ${routes.size.toLocaleString('en')} routes`);
}

// ---------- rendering ----------
function makeRow() {
  const el = document.createElement('div');
  el.className = 'row route-row';
  el.dataset.testid = 'route-row';
  const cells = {};
  for (const [name, cls] of [
    ['path', 'path'],
    ['target', 'target'],
    ['la', 'la'],
    ['rate', 'num rate'],
    ['err', 'num err'],
    ['lat', 'num lat'],
    ['req', 'num req'],
    ['data', 'data'],
  ]) {
    const span = document.createElement('span');
    span.className = cls;
    el.appendChild(span);
    cells[name] = span;
  }
  el._cells = cells;
  return el;
}

function render() {
  renderQueued = false;
  if (viewDirty) computeView();
  const vp = $('viewport');
  const spacer = $('spacer');
  spacer.style.height = view.length * ROW_H + 'px';
  const first = Math.max(0, Math.floor(vp.scrollTop / ROW_H) - OVERSCAN);
  const count = Math.min(view.length - first, Math.ceil(vp.clientHeight / ROW_H) + 2 * OVERSCAN);
  while (rowPool.length < count) {
    const el = makeRow();
    spacer.appendChild(el);
    rowPool.push(el);
  }
  for (let i = 0; i < rowPool.length; i++) {
    const el = rowPool[i];
    if (i >= count) {
      if (!el.hidden) {
        el.hidden = true;
        delete el.dataset.path;
      }
      continue;
    }
    const r = view[first + i];
    el.hidden = false;
    el.style.transform = `translateY(${(first + i) * ROW_H}px)`;
    el.dataset.path = r.path;
    const c = el._cells;
    text(c.path, r.path);
    c.path.title = r.path;
    text(c.target, r.target);
    c.target.title = r.target;
    text(c.la, fmtAgo(r.la));
    text(c.rate, fmtRate(r.rate));
    text(c.err, fmtRate(r.err));
    text(c.lat, fmtMs(r.lat));
    text(c.req, r.req.toLocaleString('en'));
    text(c.data, r.dataText);
    c.data.title = r.dataText;
    el.classList.toggle('hot', r.rate > 0);
    el.classList.toggle('errs', r.err > 0);
  }
  renderStatus();
}

function scheduleRender() {
  if (!renderQueued) {
    renderQueued = true;
    requestAnimationFrame(render);
  }
}

function tableRows(tbody, rows) {
  // Rebuild small tables (replicas, workers, xDS clients: a handful of rows) from text cells.
  const frag = document.createDocumentFragment();
  for (const cells of rows) {
    const tr = document.createElement('tr');
    for (const c of cells) {
      const td = document.createElement('td');
      td.textContent = c === undefined || c === null ? '' : String(c);
      tr.appendChild(td);
    }
    frag.appendChild(tr);
  }
  tbody.replaceChildren(frag);
}

function renderStatus() {
  if (!status) return;
  const s = status;
  text($('version'), 'v' + s.version);
  const health = $('health');
  health.hidden = false;
  text(health, s.health === 'ok' ? 'healthy' : 'degraded');
  health.className = 'badge ' + (s.health === 'ok' ? 'ok' : 'bad');
  text($('traffic-rate'), fmtRate(s.traffic.rate));
  text($('traffic-errors'), fmtRate(s.traffic.errorRate));
  text($('traffic-conns'), s.traffic.connections);
  text($('traffic-ws'), s.traffic.websockets);
  text($('store-kind'), s.store.kind);
  text($('store-state'), s.store.connected ? 'connected' : 'stale (unreachable)');
  $('store-state').className = s.store.connected ? '' : 'error';
  text($('store-revision'), s.store.revision);
  text($('store-error'), s.store.lastError || '–');
  text($('table-version'), s.table.version);
  text($('table-routes'), s.table.routes.toLocaleString('en'));
  text($('table-invalid'), s.table.invalid);
  const p = s.process;
  text($('proc-uptime'), fmtUptime(p.uptimeS));
  text($('proc-mem'), `${fmtBytes(p.rss)} RSS, ${fmtBytes(p.heapUsed)} heap`);
  text($('proc-cpu'), p.cpuPct + ' %');
  text($('proc-loop'), p.eventLoopP99Ms + ' ms');
  // (Worker threads share this process: its RSS above covers them; their rows show each one's heap.)
  text($('proc-workers'), p.workers.length ? p.workers.length : 'in process');

  $('workers-panel').hidden = p.workers.length === 0;
  if (p.workers.length) {
    tableRows(
      $('workers'),
      p.workers.map((w) => [
        w.threadId !== undefined ? `thread ${w.threadId}` : `pid ${w.pid}`,
        w.listening ? 'yes' : 'no',
        w.applied,
        w.threadId !== undefined ? `${fmtBytes(w.vitals?.heapUsed)} heap` : `${fmtBytes(w.vitals?.rss)} RSS`,
        w.vitals?.connections ?? '–',
        w.vitals?.websockets ?? '–',
      ]),
    );
  }

  $('replicas-panel').hidden = !s.replicas;
  if (s.replicas) {
    tableRows(
      $('replicas'),
      // Revisions only: a replica that loaded the table later serves a higher revision with the same
      // routes, so "behind" cannot be told from the numbers alone (use POST ...?wait=all for that).
      s.replicas.map((r) => [r.id, r.revision]),
    );
  }

  $('xds-panel').hidden = !s.xds;
  if (s.xds) {
    const x = s.xds;
    const clients = x.clients || [];
    text($('xds-summary'), `${clients.length} connected, table version ${x.tableVersion ?? '–'}`);
    const rows = [];
    for (const c of clients) {
      for (const [type, t] of Object.entries(c.types || {})) {
        rows.push([
          c.node?.id ?? '',
          c.node?.cluster ?? '',
          c.connectedAt ? fmtAgo(Date.parse(c.connectedAt)) : '',
          type,
          t.sentVersion ?? '–',
          t.ackedVersion ?? '–',
          `${t.acks} / ${t.nacks}${t.waitingForAck ? ' (waiting)' : ''}`,
          t.lastNack ? t.lastNack.message : '',
        ]);
      }
    }
    tableRows($('xds-clients'), rows);
    const un = x.untranslatable || [];
    text($('xds-untranslatable'), un.length ? `${un.length} route(s) not sent to Envoy: ` + un.map((u) => `${u.path} (${u.reason})`).join('; ') : '');
  }
}

// ---------- certificates (ACME) ----------
// Fetched from api/certificates on connect and then at most every CERTS_EVERY_MS while ticks
// arrive (the store read behind it is not free; certificates change on a scale of hours).
const CERTS_EVERY_MS = 10_000;
let certsAt = 0;
let certsBusy = false;

function fmtTime(t) {
  return t ? new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '–';
}

async function refreshCerts(force) {
  if (certsBusy || (!force && Date.now() - certsAt < CERTS_EVERY_MS)) return;
  certsBusy = true;
  certsAt = Date.now();
  try {
    const r = await fetch('api/certificates', { credentials: 'same-origin', cache: 'no-store' });
    if (r.status !== 200) return;
    renderCerts(await r.json());
  } catch {
    // unreachable: the next tick tries again
  } finally {
    certsBusy = false;
  }
}

function renderCerts(m) {
  // Answers received, for tests (document.body.dataset.certs).
  document.body.dataset.certs = String(Number(document.body.dataset.certs || 0) + 1);
  $('certs-panel').hidden = !m.enabled;
  if (!m.enabled) return;
  tableRows(
    $('certs'),
    m.certificates.map((c) => [
      c.name,
      c.served ? 'yes' : 'no',
      fmtTime(c.notBefore),
      fmtTime(c.notAfter),
      fmtTime(c.nextRenewalAt),
      c.attempts,
      c.lastError || '–',
      fmtTime(c.lastErrorAt),
    ]),
  );
}

// ---------- live connection ----------
function setConn(state) {
  const el = $('conn');
  el.hidden = false;
  text(el, state);
  el.className = 'badge ' + (state === 'live' ? 'ok' : 'warn');
}

function onStatus(s) {
  status = s;
  clockSkew = s.time - Date.now();
}

function connect() {
  if (source) source.close();
  source = new EventSource('api/events');
  source.addEventListener('hello', (e) => {
    const m = JSON.parse(e.data);
    document.body.dataset.hellos = String(Number(document.body.dataset.hellos || 0) + 1);
    replaceAll(m.routes);
    onStatus(m.status);
    setConn('live');
    scheduleRender();
    refreshCerts(true);
  });
  source.addEventListener('reset', (e) => {
    replaceAll(JSON.parse(e.data).routes);
    scheduleRender();
  });
  source.addEventListener('routes', (e) => {
    const m = JSON.parse(e.data);
    for (const p of m.del) routes.delete(p);
    for (const r of m.set) setRoute(r);
    viewDirty = true;
    scheduleRender();
  });
  source.addEventListener('tick', (e) => {
    const m = JSON.parse(e.data);
    // Updates received, for tests and the curious (document.body.dataset.ticks).
    document.body.dataset.ticks = String(Number(document.body.dataset.ticks || 0) + 1);
    applyLive(m.live);
    onStatus(m.status);
    scheduleRender();
    refreshCerts(false);
  });
  source.onerror = async () => {
    setConn('reconnecting');
    // EventSource retries by itself; if the session is gone, go back to the login form instead.
    if (!(await checkSession())) {
      source.close();
      source = null;
      showLogin();
    }
  };
}

async function checkSession() {
  try {
    const r = await fetch('api/session', { credentials: 'same-origin', cache: 'no-store' });
    return r.status === 204;
  } catch {
    return true; // server unreachable: keep retrying the stream
  }
}

function showLogin(message, form = 'login') {
  $('app-view').hidden = true;
  $('logout').hidden = true;
  $('conn').hidden = true;
  $('login-view').hidden = false;
  for (const f of ['login', 'user']) {
    const err = $(`${f}-error`);
    const mine = f === form && !!message;
    err.hidden = !mine;
    text(err, mine ? message : '');
  }
  $(form === 'user' ? 'user-name' : 'login-token').focus();
}

/** POST login with `body`; the answer's status, or 0 when the server is unreachable. */
async function signIn(body) {
  try {
    const r = await fetch('login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), credentials: 'same-origin' });
    return { status: r.status, retryAfter: r.headers.get('retry-after') };
  } catch {
    return { status: 0, retryAfter: null };
  }
}

function signInFailed(r, invalid) {
  if (r.status === 401) return invalid;
  if (r.status === 429) return `Too many failed attempts: try again in ${r.retryAfter || 'a few'} seconds.`;
  return `Sign-in failed (${r.status || 'server unreachable'}).`;
}

$('user-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const r = await signIn({ user: $('user-name').value, password: $('user-password').value });
  $('user-password').value = '';
  if (r.status === 204) showApp();
  else showLogin(signInFailed(r, 'Invalid user or password.'), 'user');
});

function showApp() {
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  $('logout').hidden = false;
  connect();
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const r = await signIn({ token: $('login-token').value });
  if (r.status === 204) {
    $('login-token').value = '';
    showApp();
  } else {
    showLogin(signInFailed(r, 'Invalid token.'));
  }
});

$('logout').addEventListener('click', async () => {
  if (source) source.close();
  source = null;
  await fetch('logout', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}', credentials: 'same-origin' });
  routes.clear();
  view = [];
  showLogin();
});

for (const id of ['search', 'filter', 'sort']) {
  $(id).addEventListener('input', () => {
    viewDirty = true;
    $('viewport').scrollTop = 0;
    scheduleRender();
  });
}
$('viewport').addEventListener('scroll', scheduleRender, { passive: true });
window.addEventListener('resize', scheduleRender);
// "Last activity" is relative: refresh it even when nothing else changes.
setInterval(scheduleRender, 5000);

checkSession().then((ok) => (ok ? showApp() : showLogin()));
