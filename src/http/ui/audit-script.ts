/**
 * The auditor page's script, served as /ui/audit/app.js (no bundler, no
 * framework). It verifies the newest checkpoint's Ed25519 signature with
 * WebCrypto and the newest loaded events against its root with RFC 9162
 * inclusion proofs. Kept as a string so `tsc` ships it; it is plain ES2022.
 */
export const AUDIT_PAGE_SCRIPT = String.raw`
'use strict';
(function () {
  var TOKEN_KEY = 'latchkey.auditToken';
  var state = { events: [], cursor: null, filters: {} };
  var $ = function (id) { return document.getElementById(id); };
  var enc = new TextEncoder();

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  async function api(path) {
    var headers = { accept: 'application/json' };
    if (token()) headers.authorization = 'Bearer ' + token();
    var res = await fetch(path, { headers: headers });
    var text = await res.text();
    var body = text ? JSON.parse(text) : {};
    if (!res.ok) { var err = new Error(body.detail || res.statusText); err.status = res.status; throw err; }
    return body;
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') node.textContent = attrs[k]; else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return node;
  }

  // ---- canonical JSON (RFC 8785 for the values the log holds) and hashing ----
  function canonical(value) {
    if (value === null || typeof value !== 'object') return JSON.stringify(value);
    if (Array.isArray(value)) return '[' + value.map(canonical).join(',') + ']';
    return '{' + Object.keys(value).sort().map(function (k) { return JSON.stringify(k) + ':' + canonical(value[k]); }).join(',') + '}';
  }
  async function sha256(bytes) { return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)); }
  function concat(a, b, c) {
    var out = new Uint8Array(a.length + b.length + (c ? c.length : 0));
    out.set(a, 0); out.set(b, a.length); if (c) out.set(c, a.length + b.length);
    return out;
  }
  async function leafHash(bytes) { return sha256(concat(new Uint8Array([0]), bytes)); }
  async function nodeHash(l, r) { return sha256(concat(new Uint8Array([1]), l, r)); }
  function b64(bytes) { return btoa(String.fromCharCode.apply(null, Array.from(bytes))); }
  function unb64(text) { return Uint8Array.from(atob(text), function (c) { return c.charCodeAt(0); }); }
  function equal(a, b) { return a.length === b.length && a.every(function (x, i) { return x === b[i]; }); }

  // RFC 9162 2.1.3.2
  async function rootFromInclusion(index, size, leaf, proof) {
    if (index >= size) return null;
    var fn = index, sn = size - 1, r = leaf;
    for (var i = 0; i < proof.length; i++) {
      var p = proof[i];
      if (sn === 0) return null;
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        if (fn % 2 === 0) { while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); } }
      } else {
        r = await nodeHash(r, p);
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    return sn === 0 ? r : null;
  }

  // Signed note (C2SP): body, blank line, "— name base64(keyhash||sig)".
  async function verifyCheckpoint(note, verifierKey) {
    var parts = verifierKey.split('+');
    var name = parts[0], hashHex = parts[1], key = unb64(parts.slice(2).join('+'));
    if (key[0] !== 1 || key.length !== 33) throw new Error('not an Ed25519 verifier key');
    var keyHash = (await sha256(concat(enc.encode(name + '\n'), key))).slice(0, 4);
    if (Array.from(keyHash).map(function (x) { return x.toString(16).padStart(2, '0'); }).join('') !== hashHex) throw new Error('verifier key hash mismatch');
    var split = note.lastIndexOf('\n\n');
    var body = note.slice(0, split + 1);
    var lines = note.slice(split + 2).split('\n').filter(Boolean);
    var publicKey = await crypto.subtle.importKey('raw', key.slice(1), { name: 'Ed25519' }, false, ['verify']);
    for (var i = 0; i < lines.length; i++) {
      var m = /^\u2014 (\S+) (\S+)$/.exec(lines[i]);
      if (!m || m[1] !== name) continue;
      var blob = unb64(m[2]);
      if (!equal(blob.slice(0, 4), keyHash)) continue;
      if (await crypto.subtle.verify({ name: 'Ed25519' }, publicKey, blob.slice(4), enc.encode(body))) {
        var b = body.split('\n');
        return { origin: b[0], treeSize: Number(b[1]), rootHash: unb64(b[2]) };
      }
      throw new Error('the checkpoint signature does not verify');
    }
    throw new Error('the checkpoint is not signed by ' + name);
  }

  function setIntegrity(stateName, text) {
    var node = $('integrity');
    node.dataset.state = stateName;
    node.textContent = 'Integrity: ' + text;
  }

  async function checkIntegrity() {
    setIntegrity('checking', 'checking the signed checkpoint…');
    try {
      var key = await api('/v1/audit/key');
      var stored = await api('/v1/audit/checkpoint');
      var cp = await verifyCheckpoint(stored.note, key.verifierKey);
      var newest = state.events.filter(function (e) { return e.seq < cp.treeSize; }).slice(0, 5);
      for (var i = 0; i < newest.length; i++) {
        var e = newest[i];
        var proof = await api('/v1/audit/proof/inclusion?seq=' + e.seq + '&size=' + cp.treeSize);
        var leaf = await leafHash(enc.encode(canonical(e)));
        var root = await rootFromInclusion(e.seq, cp.treeSize, leaf, proof.proof.map(unb64));
        if (!root || !equal(root, cp.rootHash)) throw new Error('event ' + e.seq + ' is not in the signed tree');
      }
      setIntegrity('verified', 'log verified — checkpoint of ' + cp.treeSize + ' events signed by ' + key.keyName +
        (newest.length ? '; ' + newest.length + ' newest shown events proven included' : '') + ' (signed ' + stored.signedAt + ')');
    } catch (err) {
      setIntegrity('failed', 'NOT verified: ' + err.message);
    }
  }

  // ---- history, chart, detail ----
  function readFilters() {
    var f = {};
    new FormData($('filters')).forEach(function (value, key) {
      if (!value) return;
      f[key] = key === 'from' || key === 'to' ? new Date(value + 'Z').toISOString() : value;
    });
    return f;
  }

  async function loadEvents(more) {
    var q = new URLSearchParams(state.filters);
    q.set('order', 'desc'); q.set('limit', '200');
    if (more && state.cursor) q.set('cursor', state.cursor);
    var page = await api('/v1/audit/events?' + q.toString());
    state.events = more ? state.events.concat(page.events) : page.events;
    state.cursor = page.nextCursor;
    render();
  }

  function cell(text, cls) { var td = el('td', { text: text == null ? '' : String(text) }); if (cls) td.className = cls; return td; }

  function render() {
    var body = $('events').tBodies[0];
    body.replaceChildren();
    state.events.forEach(function (e) {
      var grant = el('td');
      if (e.grantId) {
        var b = el('button', { type: 'button', 'data-grant': e.grantId, 'aria-label': 'Open grant ' + e.grantId, text: e.grantId.slice(0, 8) });
        b.addEventListener('click', function () { openGrant(e.grantId); });
        grant.appendChild(b);
      }
      body.appendChild(el('tr', {}, [cell(e.seq), cell(e.time.replace('T', ' ').replace('Z', '')), cell(e.type), cell(e.outcome, 'outcome-' + e.outcome),
        cell(e.subject), cell(e.kind), cell(e.target), grant]));
    });
    $('count').textContent = state.events.length + ' events shown' + (state.cursor ? ' (more available)' : '');
    $('more').hidden = !state.cursor;
    renderChart();
  }

  var COLORS = ['#0969da', '#1a7f37', '#cf222e', '#9a6700', '#8250df', '#bf3989', '#1b7c83', '#57606a'];
  function renderChart() {
    var grants = state.events.filter(function (e) { return /^grant\.(issued|denied|failed|pending_approval)$/.test(e.type); });
    var hours = {}, series = {};
    grants.forEach(function (e) {
      var hour = e.time.slice(0, 13) + ':00';
      var key = (e.kind || 'unknown') + ' · ' + e.outcome;
      series[key] = true;
      hours[hour] = hours[hour] || {};
      hours[hour][key] = (hours[hour][key] || 0) + 1;
    });
    var hourList = Object.keys(hours).sort(), keys = Object.keys(series).sort();
    var box = $('chart');
    box.replaceChildren();
    if (!hourList.length) { box.appendChild(el('p', { text: 'No grant decisions in the shown events.' })); return; }
    var max = Math.max.apply(null, hourList.map(function (h) { return keys.reduce(function (s, k) { return s + (hours[h][k] || 0); }, 0); }));
    var W = 800, H = 200, pad = 30, bw = Math.min(48, Math.max(4, (W - pad) / hourList.length - 4));
    var NS = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + (H + 20));
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-labelledby', 'chart-title');
    hourList.forEach(function (h, i) {
      var y = H;
      keys.forEach(function (k, ki) {
        var n = hours[h][k] || 0;
        if (!n) return;
        var height = (n / max) * (H - 10);
        y -= height;
        var rect = document.createElementNS(NS, 'rect');
        rect.setAttribute('x', String(pad + i * (bw + 4))); rect.setAttribute('y', String(y));
        rect.setAttribute('width', String(bw)); rect.setAttribute('height', String(height));
        rect.setAttribute('fill', COLORS[ki % COLORS.length]);
        var title = document.createElementNS(NS, 'title'); title.textContent = h + ' UTC: ' + n + ' ' + k;
        rect.appendChild(title);
        svg.appendChild(rect);
      });
      var label = document.createElementNS(NS, 'text');
      label.setAttribute('x', String(pad + i * (bw + 4))); label.setAttribute('y', String(H + 14));
      label.setAttribute('font-size', '10'); label.setAttribute('fill', 'currentColor');
      label.textContent = h.slice(11, 13) + 'h';
      svg.appendChild(label);
    });
    var axis = document.createElementNS(NS, 'text');
    axis.setAttribute('x', '0'); axis.setAttribute('y', '12'); axis.setAttribute('font-size', '10'); axis.setAttribute('fill', 'currentColor');
    axis.textContent = String(max);
    svg.appendChild(axis);
    box.appendChild(svg);
    var legend = el('ul', { class: 'legend' });
    keys.forEach(function (k, ki) {
      var sw = el('span', { class: 'swatch', 'aria-hidden': 'true' }); sw.style.background = COLORS[ki % COLORS.length];
      legend.appendChild(el('li', {}, [sw, k]));
    });
    box.appendChild(legend);
  }

  async function openGrant(id) {
    var page = await api('/v1/audit/events?grantId=' + encodeURIComponent(id) + '&limit=1000');
    var events = page.events;
    var first = events[0] || {};
    var find = function (t) { return events.find(function (e) { return e.type === t; }); };
    var issued = find('grant.issued'), revoked = find('grant.revoked') || find('grant.expired');
    var approvals = events.filter(function (e) { return e.type === 'grant.approved' || e.type === 'grant.approval_denied'; });
    var facts = [
      ['Grant', id], ['Subject', first.subject], ['Issuer', first.issuer], ['Rule', first.rule || (issued && issued.rule)],
      ['Kind / target', (first.kind || '') + ' / ' + (first.target || '')],
      ['Provider reference', (issued && issued.providerRef) || events.map(function (e) { return e.providerRef; }).filter(Boolean)[0] || '—'],
      ['Expires', (issued && issued.expiresAt) || first.expiresAt || '—'],
      ['Approvals', approvals.length ? approvals.map(function (a) { return a.type.slice(6) + ' by ' + a.subject + ' at ' + a.time; }).join('; ') : 'none'],
      ['Revocation', revoked ? revoked.type.slice(6) + ' at ' + revoked.time + (revoked.details && revoked.details.revokedBy ? ' by ' + revoked.details.revokedBy : '') : 'not revoked'],
    ];
    var dl = $('detail-facts');
    dl.replaceChildren();
    facts.forEach(function (f) { dl.appendChild(el('dt', { text: f[0] })); dl.appendChild(el('dd', { text: f[1] == null ? '—' : String(f[1]) })); });
    var ol = $('detail-timeline');
    ol.replaceChildren();
    events.forEach(function (e) {
      ol.appendChild(el('li', { text: e.time + ' — ' + e.type + ' (' + e.outcome + ')' + (e.error ? ': ' + e.error.code : '') }));
    });
    $('detail-claims').textContent = JSON.stringify(first.claims || {}, null, 2);
    $('detail-scope').textContent = JSON.stringify(first.scope || (issued && issued.scope) || {}, null, 2);
    $('detail-title').textContent = 'Grant ' + id;
    $('history').hidden = true;
    $('detail').hidden = false;
    $('detail').focus();
  }

  async function start() {
    $('signin-error').textContent = '';
    try {
      await loadEvents(false);
      $('history').hidden = false;
      $('signin').hidden = true;
      await checkIntegrity();
    } catch (err) {
      $('signin-error').textContent = err.status === 401 || err.status === 403 ? 'This token may not read the audit log: ' + err.message : err.message;
      $('signin').hidden = false;
    }
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('signin-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
      start();
    });
    $('signout').addEventListener('click', function () { sessionStorage.removeItem(TOKEN_KEY); location.reload(); });
    $('filters').addEventListener('submit', function (ev) {
      ev.preventDefault();
      state.filters = readFilters();
      loadEvents(false).then(checkIntegrity).catch(function (err) { $('count').textContent = 'Could not load: ' + err.message; });
    });
    $('more').addEventListener('click', function () { loadEvents(true).catch(function (err) { $('count').textContent = err.message; }); });
    $('detail-close').addEventListener('click', function () { $('detail').hidden = true; $('history').hidden = false; });
    if (token()) start();
  });
})();
`;
