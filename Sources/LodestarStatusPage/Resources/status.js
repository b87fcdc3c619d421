// Lodestar status page: refreshes the server-rendered page every second from GET /status (same origin only) and
// answers the "what would you answer" form from GET /explain. Data is only ever written with textContent and
// setAttribute on elements made with createElement: never parsed as HTML.
(function () {
  'use strict';
  var DASH = '\u2014';
  var lastGood = new Date();
  var refreshes = 0;

  function $(id) { return document.getElementById(id); }
  function num(v) { return typeof v === 'number' && isFinite(v); }
  function safe(s) { return String(s).replace(/[^A-Za-z0-9_-]/g, '_'); }
  function pct(v) { return num(v) ? (v * 100).toFixed(0) + ' %' : DASH; }
  function heard(ms) { return num(ms) ? (ms / 1000).toFixed(1) + ' s ago' : DASH; }
  function list(v) { return Array.isArray(v) ? v : []; }
  function two(n) { return (n < 10 ? '0' : '') + n; }
  function clock(d) { return two(d.getHours()) + ':' + two(d.getMinutes()) + ':' + two(d.getSeconds()); }
  function setText(id, v) { var e = $(id); if (e && v !== undefined && v !== null) e.textContent = String(v); }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // The banner: the cluster's note, or that the admin API cannot be reached.
  function banner(text, bad) {
    var b = $('cluster-note');
    if (!b) return;
    b.textContent = text;
    b.setAttribute('class', 'banner banner-' + (bad ? 'bad' : 'info'));
    if (text) b.removeAttribute('hidden'); else b.setAttribute('hidden', '');
  }
  function clusterBanner(c) {
    c = c || {};
    var bad = !!(c.gossip && !c.visible);
    var text = c.note || '';
    if (!text && bad) text = 'This DNS node cannot see the cluster: it has heard no other gossip member recently.';
    banner(text, bad);
  }

  // "ID — state, load N % of capacity C, cache hit ratio H %, origins healthy O %" (as the server writes it).
  function edgeTitle(e) {
    var parts = [String(e.state)];
    if (num(e.load)) parts.push('load ' + pct(e.load) + (num(e.capacity) ? ' of capacity ' + e.capacity : ''));
    else if (num(e.capacity)) parts.push('capacity ' + e.capacity);
    if (num(e.cacheHitRatio)) parts.push('cache hit ratio ' + pct(e.cacheHitRatio));
    if (num(e.healthyOrigins)) parts.push('origins healthy ' + pct(e.healthyOrigins));
    return e.id + ' \u2014 ' + parts.join(', ');
  }

  // One table row's cells: member, role, region, state (+ why), last heard, load, capacity, origin health, answers/s.
  var CELLS = ['member', 'role', 'region', 'state', 'heard', 'load', 'capacity', 'origins', 'rate'];
  function fillRow(tr, v) {
    if (tr.cells.length !== CELLS.length) {
      clear(tr);
      CELLS.forEach(function (c) { tr.appendChild(el('td', { 'class': c })); });
    }
    var cells = tr.cells;
    cells[0].textContent = v.member;
    cells[1].textContent = v.role;
    cells[2].textContent = v.region;
    clear(cells[3]);
    cells[3].appendChild(el('span', { 'class': 'badge' }, v.state));
    if (v.why.length) {
      var ul = el('ul', { 'class': 'why' });
      v.why.forEach(function (w) { ul.appendChild(el('li', null, w)); });
      cells[3].appendChild(ul);
    }
    cells[4].textContent = v.heard;
    cells[5].textContent = v.load;
    cells[6].textContent = v.capacity;
    cells[7].textContent = v.origins;
    cells[8].textContent = v.rate;
    tr.setAttribute('class', 'state-' + safe(v.state));
  }

  // Updates the rows of one tbody in place: keyed by a data attribute, new rows appended, vanished ones removed.
  function syncRows(tbodyId, key, prefix, items, view) {
    var body = $(tbodyId);
    if (!body) return;
    var rows = Object.create(null);
    Array.prototype.forEach.call(body.rows, function (r) { rows[r.getAttribute(key)] = r; });
    var seen = Object.create(null);
    items.forEach(function (it) {
      var id = String(it.id);
      seen[id] = true;
      var tr = rows[id];
      if (!tr) {
        tr = el('tr', { id: prefix + safe(id) });
        tr.setAttribute(key, id);
        body.appendChild(tr);
      }
      fillRow(tr, view(it));
    });
    Object.keys(rows).forEach(function (id) { if (!seen[id]) body.removeChild(rows[id]); });
  }

  function edgeView(e) {
    return {
      member: e.id, role: 'edge', region: e.region, state: e.state, why: list(e.why), heard: heard(e.lastHeardMs),
      load: pct(e.load), capacity: num(e.capacity) ? String(e.capacity) : DASH, origins: pct(e.healthyOrigins),
      rate: num(e.answersPerSecond) ? e.answersPerSecond.toFixed(1) : DASH
    };
  }
  function memberView(m) {
    return {
      member: m.id, role: m.role, region: DASH, state: m.status, why: [], heard: heard(m.lastHeardMs),
      load: DASH, capacity: DASH, origins: DASH, rate: DASH
    };
  }

  function apply(s) {
    var edges = list(s.edgeDetails);
    var table = $('members');
    if (table) table.setAttribute('data-refreshes', String(++refreshes));
    syncRows('edge-rows', 'data-edge', 'edge-', edges, edgeView);
    var dns = list(s.gossip && s.gossip.members).filter(function (m) { return m.role === 'dns'; });
    syncRows('member-rows', 'data-member', 'member-', dns, memberView);
    var byId = Object.create(null);
    edges.forEach(function (e) { byId[e.id] = e; });
    Array.prototype.forEach.call(document.querySelectorAll('#map circle.edge'), function (c) {
      var e = byId[c.getAttribute('data-edge')];
      if (!e) { c.setAttribute('class', 'edge state-unknown'); return; }
      c.setAttribute('class', 'edge state-' + safe(e.state));
      var t = c.querySelector('title');
      if (t) t.textContent = edgeTitle(e);
    });
    clusterBanner(s.cluster);
    setText('generated-at', s.generatedAt);
    if (s.config) {
      setText('config-version', s.config.version);
      setText('config-serial', s.config.serial);
      setText('config-loaded', s.config.loadedAt);
    }
    if (s.queries) {
      setText('queries-udp', s.queries.udp);
      setText('queries-tcp', s.queries.tcp);
    }
  }

  function poll() {
    var ctl = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = setTimeout(function () { if (ctl) ctl.abort(); }, 4000);
    fetch('/status', ctl ? { cache: 'no-store', signal: ctl.signal } : { cache: 'no-store' })
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .then(function (s) {
        apply(s);
        lastGood = new Date();
      })
      .catch(function () {
        banner("The status page cannot reach this DNS node's admin API (last good update " + clock(lastGood) + ')', true);
      })
      .then(function () {
        clearTimeout(timer);
        setTimeout(poll, 1000);
      });
  }

  // The "what would you answer" result, in the same structure the server renders.
  function locationLine(x) {
    var parts = [];
    if (x.client) parts.push('client ' + x.client + (num(x.geoPrefixLength) ? ' (GeoIP network /' + x.geoPrefixLength + ')' : ''));
    if (x.service) parts.push('service ' + x.service);
    var l = x.location;
    if (l && num(l.latitude) && num(l.longitude)) {
      var place = [l.city, l.country, l.continent].filter(function (p) { return p; }).join(', ');
      parts.push((place ? place + ' \u2014 ' : '') + l.latitude.toFixed(2) + ', ' + l.longitude.toFixed(2));
    } else {
      parts.push('location unknown');
    }
    if (x.placement) parts.push(x.placement);
    return parts.join(' \u00b7 ');
  }
  function answerLine(x) {
    var a = list(x.answer);
    return 'Answer: ' + (a.length ? a.join(', ') : 'none') + (num(x.ttlSeconds) ? ' \u00b7 TTL ' + x.ttlSeconds + ' s' : '') +
      (num(x.scopePrefixLength) ? ' \u00b7 ECS scope /' + x.scopePrefixLength : '');
  }
  function renderExplain(x) {
    var box = $('explain-result');
    if (!box) return;
    clear(box);
    var h = el('h3', null, 'For ');
    h.appendChild(el('code', { 'class': 'query' }, x.query || ''));
    box.appendChild(h);
    if (x.error) {
      box.appendChild(el('p', { 'class': 'error' }, x.error));
    } else {
      box.appendChild(el('p', { 'class': 'location' }, locationLine(x)));
      var cands = list(x.candidates);
      if (!cands.length) {
        box.appendChild(el('p', { 'class': 'muted' }, 'No candidate edge.'));
      } else {
        var table = el('table', { 'class': 'candidates' });
        var head = el('tr');
        ['#', 'Edge', 'Region', 'km', 'Health', 'Chosen'].forEach(function (t) { head.appendChild(el('th', null, t)); });
        table.appendChild(el('thead')).appendChild(head);
        var body = table.appendChild(el('tbody'));
        cands.forEach(function (c, i) {
          var tr = el('tr', c.chosen ? { 'class': 'chosen' } : null);
          [i + 1, c.edge, c.region, c.distanceKm, c.health].forEach(function (v) { tr.appendChild(el('td', null, v)); });
          tr.appendChild(el('td', { 'class': 'mark' }, c.chosen ? '\u2713 chosen' : ''));
          body.appendChild(tr);
        });
        box.appendChild(el('div', { 'class': 'table-wrap' })).appendChild(table);
      }
      box.appendChild(el('p', { id: 'explain-answer' }, answerLine(x)));
    }
    var trace = list(x.trace);
    if (trace.length) box.appendChild(el('pre', { 'class': 'trace' }, trace.join('\n')));
  }

  var form = $('explain');
  if (form) {
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var value = ($('client').value || '').trim();
      fetch('/explain?client=' + encodeURIComponent(value), { cache: 'no-store' })
        .then(function (r) {
          return r.json().catch(function () { return { query: value, error: 'the admin API answered HTTP ' + r.status }; });
        })
        .catch(function () { return { query: value, error: "cannot reach this DNS node's admin API" }; })
        .then(function (x) {
          renderExplain(x || { query: value, error: 'no answer' });
          try { history.replaceState(null, '', '/?client=' + encodeURIComponent(value)); } catch (e) { /* file: pages */ }
        });
    });
  }

  setTimeout(poll, 1000);
})();
