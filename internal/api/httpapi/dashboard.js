// replicant dashboard: polls /v1/cluster (this node's status plus the
// leader's, relayed by this node) once a second and draws it. No library:
// the page must build and run without an npm toolchain.
//
// When the node the page came from stops answering, the page keeps going
// through the other members it learned of (they allow this page's origin
// by CORS) and says since when its own node is unreachable.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 1000;
  const FETCH_TIMEOUT_MS = 2500;
  const KEEP_MS = 10 * 60 * 1000; // history kept in the page
  const COLORS = ['#1a56c4', '#d1495b', '#2a9d8f', '#e9a03b', '#7b2cbf', '#6c757d', '#3d405b', '#81b29a'];

  const st = {
    pageNode: null, // id of the node this page was loaded from
    nodes: new Map(), // id -> base URL of every member learned of
    originDownSince: null,
    hist: { node: null, samples: [] },
    histFull: true, // next request asks for the whole history
    events: [], // every timeline event seen, merged across observers
    asked: false,
  };

  // With --requirepass the API wants a bearer token: ask once, keep it for
  // this tab only.
  function authHeaders() {
    const p = sessionStorage.getItem('replicant-pass');
    return p ? { Authorization: 'Bearer ' + p } : {};
  }

  async function getJSON(base, path) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    try {
      let r = await fetch(base + path, { headers: authHeaders(), signal: ctl.signal, cache: 'no-store' });
      if (r.status === 401 && !st.asked) {
        st.asked = true;
        const p = prompt('This replicant requires a password (--requirepass):');
        if (p) {
          sessionStorage.setItem('replicant-pass', p);
          r = await fetch(base + path, { headers: authHeaders(), signal: ctl.signal, cache: 'no-store' });
        }
      }
      if (!r.ok) throw new Error(base + ' answered ' + r.status);
      return await r.json();
    } finally {
      clearTimeout(timer);
    }
  }

  // A member's dashboard URL from its HTTP address; a wildcard bind is
  // reached by the host name this page was opened with.
  function baseURL(addr) {
    if (!addr) return '';
    const m = addr.match(/^(.*):(\d+)$/);
    if (!m) return location.protocol + '//' + addr;
    const host = m[1];
    if (host === '' || host === '0.0.0.0' || host === '[::]' || host === '::') {
      return location.protocol + '//' + location.hostname + ':' + m[2];
    }
    return location.protocol + '//' + addr;
  }

  function learnNodes(view) {
    for (const s of [view.self, view.leader]) {
      if (!s) continue;
      if (s.http) st.nodes.set(s.id, baseURL(s.http));
      for (const m of s.members || []) if (m.http) st.nodes.set(m.id, baseURL(m.http));
    }
  }

  function mergeHistory(h, since) {
    if (!h) return;
    const samples = h.samples || [];
    if (h.node !== st.hist.node) {
      st.hist = { node: h.node, samples: samples };
      // A since= meant for another node's samples left a gap: ask again.
      st.histFull = since > 0;
    } else {
      const last = st.hist.samples.length ? st.hist.samples[st.hist.samples.length - 1].t : 0;
      for (const s of samples) if (s.t > last) st.hist.samples.push(s);
      st.histFull = false;
    }
    const floor = Date.now() - KEEP_MS;
    while (st.hist.samples.length && st.hist.samples[0].t < floor) st.hist.samples.shift();
  }

  async function tick() {
    const n = st.hist.samples.length;
    const since = st.histFull || n === 0 ? 0 : st.hist.samples[n - 1].t;
    const path = '/v1/cluster?since=' + since;
    let view = null;
    try {
      view = await getJSON(location.origin, path);
      st.originDownSince = null;
    } catch (e) {
      if (!st.originDownSince) st.originDownSince = new Date();
      for (const [id, base] of st.nodes) {
        if (!base || base === location.origin) continue;
        try {
          view = await getJSON(base, path);
          break;
        } catch (e2) { /* try the next member */ }
      }
    }
    if (!view) {
      renderDown();
      return;
    }
    if (!st.originDownSince) st.pageNode = view.node;
    learnNodes(view);
    mergeHistory(view.history, since);
    render(view);
  }

  async function loop() {
    try {
      await tick();
    } catch (e) {
      // A rendering bug must not stop the page: say it and go on.
      banners([['page-error', 'bad', 'dashboard error: ' + e]]);
    }
    setTimeout(loop, POLL_MS);
  }

  function fmtTime(d) {
    return new Date(d).toLocaleTimeString([], { hour12: false });
  }

  function fmtBytes(b) {
    if (!b) return '0 B';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return (i ? b.toFixed(1) : b) + ' ' + u[i];
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  function cell(tr, v, cls) {
    const td = el('td', v, cls);
    tr.appendChild(td);
    return td;
  }

  function banners(list) {
    const box = $('banners');
    box.replaceChildren();
    for (const [kind, cls, msg] of list) {
      const d = el('div', msg, 'banner ' + cls);
      d.dataset.kind = kind;
      box.appendChild(d);
    }
  }

  function renderDown() {
    const since = st.originDownSince ? fmtTime(st.originDownSince) : '';
    const who = st.pageNode || location.host;
    banners([['origin-down', 'bad', who + ' unreachable since ' + since + ', and no other member answers (' +
      ([...st.nodes.keys()].join(', ') || 'none known') + '); still trying']]);
    document.body.classList.add('stale');
  }

  function render(v) {
    document.body.classList.remove('stale');
    const self = v.self;
    const L = v.leader || null;
    const main = L || self;
    const mode = self.mode || 'single-leader';
    const leaderless = mode === 'leaderless';
    $('mode').textContent = mode + ' mode';
    document.body.classList.toggle('leaderless', leaderless);

    let via;
    if (leaderless) via = 'Node ' + v.node + "'s view (leaderless: every node coordinates)";
    else if (L) via = 'The cluster as leader ' + L.id + ' reports it' + (L.id === v.node ? '' : ', relayed by ' + v.node);
    else via = v.node + "'s own view: no leader reachable";
    if (st.originDownSince) via += ' · this page came from ' + (st.pageNode || location.host);
    $('via').textContent = via + ' · ' + fmtTime(Date.now());

    // Banners: what an operator must see first.
    const b = [];
    if (st.originDownSince) {
      b.push(['origin-down', 'bad', (st.pageNode || location.host) + ' unreachable since ' + fmtTime(st.originDownSince) +
        '; showing the cluster through ' + v.node + ', still trying ' + (st.pageNode || location.host)]);
    }
    if (self.state === 'removed') b.push(['removed', 'bad', self.id + ' was removed from the cluster and serves nothing']);
    if (self.state === 'no-quorum') b.push(['no-quorum', 'bad', 'No quorum: ' + (self.reason || 'the control plane has no majority')]);
    if (!leaderless) {
      if (!L) {
        const why = self.leader ? (v.leader_error || ('leader ' + self.leader + ' not reachable')) : 'no leader is appointed';
        b.push(['no-leader', 'bad', 'No leader: ' + why + '. Writes wait up to --write-timeout, then fail; the controller appoints a new leader after --failover-timeout if the control plane has a quorum.']);
      } else if (L.state === 'lease-expired') {
        b.push(['lease-expired', 'bad', 'Leader ' + L.id + ': ' + (L.reason || 'lease expired')]);
      }
      if (L && L.writes_blocked) {
        b.push(['writes-blocked', 'bad', 'Writes blocked: ' + (L.blocked_reason || 'the commit policy cannot be met') +
          '. With sync_fallback ' + L.sync_fallback + ', writes wait up to the write timeout, then fail.']);
      }
      if (main.fallback_active) {
        b.push(['fallback-async', 'loud', 'FALLBACK TO ASYNC: commits no longer wait for synchronous followers (' + main.sync_policy +
          ', sync_fallback async). Acknowledged writes may be lost in a failover until the followers are back.']);
      }
    }
    banners(b);

    // Summary.
    $('leader').textContent = leaderless ? '— (leaderless)' : (L ? L.id : (self.leader ? self.leader + ' (unreachable)' : 'none'));
    $('epoch').textContent = main.epoch;
    $('policy').textContent = main.sync_policy || '—';
    $('ack').textContent = main.ack || '—';
    $('fallback').textContent = main.sync_fallback ? (main.sync_fallback === 'block' ? 'block (writes wait)' : 'async (commit anyway)') : '—';
    $('syncset').textContent = (main.sync_set || []).join(', ') || 'none';
    $('n-replicas').textContent = main.replicas || '—';
    $('lsns-label').textContent = leaderless ? 'local log LSN (writes stored here)' : 'commit LSN · last LSN';
    $('lsns').textContent = leaderless ? main.last_lsn : main.commit_lsn + ' · ' + main.last_lsn;
    $('controller').textContent = main.controller || (leaderless ? '—' : 'none');

    renderNodes(v, main);
    renderCharts(leaderless);
    renderSites(main, mode === 'multi-leader');
    renderRing(self, leaderless);
    renderTimeline(v);
  }

  function renderNodes(v, main) {
    const self = v.self;
    const rows = [];
    if (main.role === 'leader' || main.mode === 'leaderless') {
      rows.push({ id: main.id, role: main.role, sync: false, healthy: true, state: main.state, received_lsn: main.last_lsn,
        durable_lsn: main.last_lsn, applied_lsn: main.applied_lsn, lag_entries: 0, lag_seconds: 0, lag_bytes: 0, http: main.http, self: true });
    } else {
      rows.push({ id: self.id, role: self.role, sync: (self.sync_set || []).includes(self.id), healthy: self.state === 'streaming',
        state: self.state, applied_lsn: self.applied_lsn, lag_entries: null, lag_seconds: self.lag_seconds, http: self.http, self: true, reason: self.reason });
    }
    for (const m of main.members || []) rows.push(m);
    $('nodes-note').textContent = main === self && main.role !== 'leader' && main.mode !== 'leaderless'
      ? '(this node\'s own view: other rows may be stale)' : '';
    const tb = $('nodes');
    tb.replaceChildren();
    for (const m of rows) {
      const tr = el('tr');
      tr.dataset.node = m.id;
      const td = cell(tr, '');
      const base = st.nodes.get(m.id) || baseURL(m.http);
      const a = el('a', m.id);
      if (base) a.href = base + '/';
      td.appendChild(a);
      const notes = [];
      if (m.id === st.pageNode) notes.push('this page');
      if (m.id === v.node && v.node !== st.pageNode) notes.push('answering');
      if (notes.length) td.appendChild(el('small', ' (' + notes.join(', ') + ')'));
      cell(tr, m.role || '');
      cell(tr, main.mode === 'leaderless' ? '—' : (m.role === 'leader' ? '—' : (m.sync ? 'sync' : 'async')), m.sync ? 'ok' : '');
      cell(tr, m.healthy ? 'yes' : 'no', m.healthy ? 'ok' : 'bad');
      const stTd = cell(tr, m.state || '');
      if (m.reason) stTd.title = m.reason;
      // A follower's own rows for its peers hold positions only from a
      // fresh view relayed by the leader; without one they are unknown.
      const known = m.self || main.role === 'leader' || m.view_age_seconds > 0;
      const lsns = !known ? '—' : (m.received_lsn === undefined ? String(m.applied_lsn) : [m.received_lsn, m.durable_lsn, m.applied_lsn].join(' · '));
      cell(tr, lsns, 'num');
      cell(tr, !known || m.lag_entries === null || m.lag_entries === undefined ? '—' : m.lag_entries, 'num');
      cell(tr, known ? (m.lag_seconds || 0).toFixed(3) : '—', 'num');
      cell(tr, !known || m.lag_bytes === undefined ? '—' : fmtBytes(m.lag_bytes), 'num');
      const prog = cell(tr, '');
      if (m.state === 'snapshotting') {
        prog.textContent = 'snapshot: ' + fmtBytes(m.snapshot_bytes || 0) + ' sent';
      } else if (main.role === 'leader' && m.role === 'follower' && m.lag_entries > 0 && main.last_lsn > 0) {
        const p = el('progress');
        p.max = main.last_lsn;
        p.value = Math.min(m.applied_lsn, main.last_lsn);
        prog.appendChild(p);
        prog.appendChild(el('span', ' ' + (100 * p.value / p.max).toFixed(1) + '% (' + m.lag_entries + ' behind)'));
      }
      if (m.reason && !m.self) prog.appendChild(el('small', ' ' + m.reason));
      tb.appendChild(tr);
    }
    // This node's own install/catch-up, which only it knows in detail.
    const sp = $('self-progress');
    if (self.state === 'snapshotting' || self.state === 'catching-up') {
      let t = self.id + ' is ' + self.state;
      if (self.snapshot) t += ': snapshot at LSN ' + self.snapshot.lsn + ', ' + fmtBytes(self.snapshot.bytes) + ' received';
      if (L && L.last_lsn) t += '; applied ' + self.applied_lsn + ' of the leader\'s ' + L.last_lsn;
      sp.textContent = t;
    } else {
      sp.textContent = '';
    }
  }

  // chart draws series [{name, points: [[tMs, value]]}] into an SVG over
  // the last windowSec seconds. A gap of more than three sample intervals
  // breaks a line (the node was down or the page had no data).
  function chart(svg, series, windowSec, unit) {
    const W = 560, H = 200, L = 56, R = 8, T = 10, B = 22;
    const now = Date.now(), t0 = now - windowSec * 1000;
    let ymax = 0;
    for (const s of series) for (const [t, y] of s.points) if (t >= t0 && y > ymax) ymax = y;
    ymax = niceMax(ymax);
    const x = (t) => L + (W - L - R) * (t - t0) / (now - t0);
    const y = (v) => T + (H - T - B) * (1 - v / ymax);
    const ns = 'http://www.w3.org/2000/svg';
    const mk = (tag, attrs, text) => {
      const e = document.createElementNS(ns, tag);
      for (const k in attrs) e.setAttribute(k, attrs[k]);
      if (text !== undefined) e.textContent = text;
      return e;
    };
    svg.replaceChildren();
    for (let i = 0; i <= 4; i++) {
      const v = ymax * i / 4;
      svg.appendChild(mk('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }));
      svg.appendChild(mk('text', { x: L - 4, y: y(v) + 4, 'text-anchor': 'end' }, fmtNum(v) + (i === 4 ? ' ' + unit : '')));
    }
    for (let i = 0; i <= 4; i++) {
      const t = t0 + (now - t0) * i / 4;
      const ago = Math.round((now - t) / 1000);
      svg.appendChild(mk('text', { x: x(t), y: H - 6, 'text-anchor': i === 0 ? 'start' : (i === 4 ? 'end' : 'middle') }, ago ? '-' + ago + 's' : 'now'));
    }
    const gap = 3500;
    series.forEach((s, i) => {
      let seg = [], prevT = null;
      const flush = () => {
        if (seg.length > 1) svg.appendChild(mk('polyline', { points: seg.join(' '), fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 1.8 }));
        else if (seg.length === 1) {
          const [px, py] = seg[0].split(',');
          svg.appendChild(mk('circle', { cx: px, cy: py, r: 2, fill: COLORS[i % COLORS.length] }));
        }
        seg = [];
      };
      for (const [t, v] of s.points) {
        if (t < t0) continue;
        if (prevT !== null && t - prevT > gap) flush();
        seg.push(x(t).toFixed(1) + ',' + y(v).toFixed(1));
        prevT = t;
      }
      flush();
    });
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  function fmtNum(v) {
    if (v >= 1e6) return (v / 1e6).toFixed(1) + 'M';
    if (v >= 1e4) return (v / 1e3).toFixed(0) + 'k';
    if (v >= 100 || v === 0) return v.toFixed(0);
    return v.toPrecision(2);
  }

  // In leaderless mode the "lag" of a node is the hints this node keeps
  // for it (writes it missed); the samples carry them as entries.
  function renderCharts(leaderless) {
    st.leaderless = leaderless;
    const windowSec = Number($('window').value);
    $('lag-title').textContent = leaderless ? 'Hints pending' : 'Replication lag';
    $('lag-of').textContent = leaderless ? 'node' : 'follower' + (st.hist.samples.some((s) => Object.keys(s.lag || {}).some((k) => k.startsWith('link:'))) ? ' or link' : '');
    $('lagunit').hidden = leaderless;
    const unit = leaderless ? 'entries' : $('lagunit').value;
    const samples = st.hist.samples;
    const byID = new Map();
    for (const s of samples) {
      for (const id in s.lag || {}) {
        if (!byID.has(id)) byID.set(id, []);
        byID.get(id).push([s.t, s.lag[id][unit] || 0]);
      }
    }
    const series = [...byID.keys()].sort().map((id) => ({ name: id, points: byID.get(id) }));
    chart($('lagchart'), series, windowSec, unit === 'seconds' ? 's' : (unit === 'bytes' ? 'B' : ''));
    const lg = $('laglegend');
    lg.replaceChildren();
    series.forEach((s, i) => {
      const sp = el('span', s.name);
      const sw = el('i');
      sw.style.background = COLORS[i % COLORS.length];
      sp.prepend(sw);
      lg.appendChild(sp);
    });
    if (!series.length) lg.appendChild(el('span', (leaderless ? 'no hints' : 'no follower lag') + ' reported by ' + (st.hist.node || 'this node')));

    // Throughput: committed LSN advance per second between samples (one
    // entry per write command; group commit batches entries, not counts).
    const pts = [];
    for (let i = 1; i < samples.length; i++) {
      const a = samples[i - 1], b = samples[i];
      const dt = (b.t - a.t) / 1000;
      if (dt <= 0) continue;
      pts.push([b.t, Math.max(0, (b.commit_lsn - a.commit_lsn) / dt)]);
    }
    chart($('tputchart'), [{ name: 'entries/s', points: pts }], windowSec, '/s');
    $('tputnow').textContent = pts.length ? 'now ' + pts[pts.length - 1][1].toFixed(1) + ' entries/s, from ' + st.hist.node + "'s samples" : '';
  }

  function renderSites(s, on) {
    $('sites').hidden = !on;
    if (!on) return;
    $('site').textContent = s.site || '';
    $('token').textContent = s.token || '';
    $('conflicts').textContent = s.conflicts || 0;
    const lb = $('links');
    lb.replaceChildren();
    for (const l of s.links || []) {
      const tr = el('tr');
      cell(tr, l.site);
      cell(tr, l.state, l.state === 'streaming' ? 'ok' : (l.state === 'idle' ? '' : 'bad'));
      cell(tr, l.connected || '');
      cell(tr, l.lag_entries, 'num');
      cell(tr, (l.lag_seconds || 0).toFixed(3), 'num');
      cell(tr, l.applied_origin_lsn, 'num');
      cell(tr, l.remote_lsn, 'num');
      cell(tr, l.reason || '');
      lb.appendChild(tr);
    }
    if (!(s.links || []).length) {
      const tr = el('tr');
      cell(tr, 'no incoming links: add one with replicant link add --peer ADDR').colSpan = 8;
      lb.appendChild(tr);
    }
  }

  function renderRing(s, on) {
    $('ringview').hidden = !on;
    if (!on) return;
    $('replicas').textContent = s.replicas;
    const byID = {};
    for (const m of s.members || []) byID[m.id] = m;
    const rb = $('ring');
    rb.replaceChildren();
    for (const r of s.ring || []) {
      const m = byID[r.id] || {};
      const tr = el('tr');
      const td = cell(tr, '');
      const a = el('a', r.id);
      const base = st.nodes.get(r.id);
      if (base) a.href = base + '/';
      td.appendChild(a);
      if (r.id === s.id) td.appendChild(el('small', ' (this node)'));
      cell(tr, (100 * r.share).toFixed(1) + '%', 'num');
      cell(tr, (100 * r.primary).toFixed(1) + '%', 'num');
      cell(tr, r.ranges, 'num');
      cell(tr, r.healthy ? 'yes' : 'no', r.healthy ? 'ok' : 'bad');
      cell(tr, m.hints_pending === undefined ? '—' : m.hints_pending, 'num');
      cell(tr, m.last_anti_entropy ? fmtTime(m.last_anti_entropy) : 'never', m.last_anti_entropy ? '' : 'warn');
      rb.appendChild(tr);
    }
    const re = s.rebalance;
    $('rebalance').textContent = re ? ('data movement: ' + re.state + ', ' + re.keys_moved + ' keys moved, ' + re.keys_failed +
      ' failed, of ' + re.keys_scanned + ' scanned' + (re.error ? ' (' + re.error + ')' : '')) : '';
  }

  const BAD = new Set(['leader-changed', 'leader-lost', 'writes-blocked', 'fallback-engaged', 'follower-unhealthy', 'sync-demoted', 'member-removed', 'link-removed']);
  const GOOD = new Set(['writes-unblocked', 'fallback-cleared', 'follower-healthy', 'sync-promoted', 'member-added', 'link-added']);

  // The page keeps every event it saw (the leader that recorded one may
  // be gone since); an event several nodes observed is shown once, with
  // who saw it.
  function mergeEvents(list, observer) {
    for (const e of list || []) {
      const t = Date.parse(e.time);
      const same = st.events.find((x) => x.kind === e.kind && x.message === e.message && Math.abs(x.t - t) < 10000);
      if (same) {
        same.seen.add(observer);
        continue;
      }
      st.events.push({ t: t, kind: e.kind, message: e.message, epoch: e.epoch, seen: new Set([observer]) });
    }
    st.events.sort((a, b) => a.t - b.t);
    if (st.events.length > 300) st.events.splice(0, st.events.length - 300);
  }

  function renderTimeline(v) {
    if (v.leader) mergeEvents(v.leader.timeline, v.leader.id);
    if (!v.leader || v.leader.id !== v.self.id) mergeEvents(v.self.timeline, v.self.id);
    const ol = $('timeline');
    ol.replaceChildren();
    for (let i = st.events.length - 1; i >= 0; i--) {
      const e = st.events[i];
      const li = el('li', null, BAD.has(e.kind) ? 'bad' : (GOOD.has(e.kind) ? 'ok' : ''));
      li.dataset.kind = e.kind;
      if (e.epoch) li.dataset.epoch = e.epoch;
      li.appendChild(el('time', fmtTime(e.t)));
      li.appendChild(el('span', e.kind, 'kind'));
      li.appendChild(el('span', e.message));
      li.appendChild(el('small', 'seen by ' + [...e.seen].sort().join(', ') + (e.epoch ? ' · epoch ' + e.epoch : '')));
      ol.appendChild(li);
    }
    if (!st.events.length) ol.appendChild(el('li', 'nothing happened yet since these nodes started'));
  }

  $('window').addEventListener('change', () => renderCharts(!!st.leaderless));
  $('lagunit').addEventListener('change', () => renderCharts(!!st.leaderless));
  loop();
})();
