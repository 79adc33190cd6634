// The status page's script and stylesheet, compiled in: the page works
// offline and behind `script-src 'self'; style-src 'self'` (no inline code).
// The script only uses textContent and DOM calls, never innerHTML: event
// reasons are free text.

#include "sessiond/status_page.hpp"

namespace sessiond {
namespace {

const char* const kAppJs = R"js('use strict';
// sessiond status page: live updates from /events (Server-Sent Events) and
// the "Refresh now" button. Plain JavaScript, no library.
(function () {
  const ATTENTION = ['at_risk', 'retrying', 'failed', 'file_error', 'invalid'];
  const TYPES = ['registered', 'removed', 'logged_out', 'invalidated', 'at_risk', 'recovered',
                 'file_error', 'failed', 'paused', 'resumed'];
  const ERRORS = ['logged_out', 'at_risk', 'file_error', 'failed'];  // reasons that are errors
  const MAX_LOG = 50;
  let adminToken = null;  // asked once per page when a POST answers 401; never stored
  let countsTimer = null;

  function $(id) { return document.getElementById(id); }

  function badge(state) {
    const span = document.createElement('span');
    span.className = 'state state-' + state;
    span.textContent = state;
    return span;
  }

  function span(s) {
    s = Math.floor(Math.abs(s));
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
    return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
  }

  // Relative times ("3m ago", "in 2m") drift while the page is open.
  function updateTimes() {
    const now = Date.now();
    document.querySelectorAll('time[datetime]').forEach(function (t) {
      if (t.id === 'rendered') return;
      const at = Date.parse(t.getAttribute('datetime'));
      if (isNaN(at)) return;
      const d = (now - at) / 1000;
      t.textContent = d >= 0 ? span(d) + ' ago' : 'in ' + span(-d);
    });
  }

  function setLive(text, ok) {
    const el = $('live');
    if (!el) return;
    el.textContent = 'live updates: ' + text;
    el.className = ok ? 'ok' : 'bad';
  }

  // Counts come from /status (limit=0): events do not cover every transition
  // (pending -> active has none), so the page asks again after a burst.
  function refreshCounts() {
    countsTimer = null;
    fetch('/status?limit=0', {headers: authHeaders(), credentials: 'same-origin'})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (doc) {
          if (!doc) return;
          setCount('total', doc.totalSessions);
          setCount('live', doc.activeSessions);
          const by = doc.sessionsByState || {};
          let attention = 0;
          Object.keys(by).forEach(function (state) {
            setCount(state, by[state]);
            if (ATTENTION.indexOf(state) >= 0) attention += by[state];
          });
          const a = $('attention-count');
          if (a) a.textContent = String(attention);
        })
        .catch(function () {});
  }
  function scheduleCounts() {
    if (countsTimer === null) countsTimer = setTimeout(refreshCounts, 500);
  }
  function setCount(name, n) {
    const el = $('count-' + name);
    if (el && typeof n === 'number') el.textContent = String(n);
  }

  // An event's rows: its session in its site (ids are unique per site only;
  // rows carry data-site when the page shows several sites).
  function rowsFor(ev) {
    const sel = 'tr[data-session="' + CSS.escape(ev.session) + '"]';
    return Array.prototype.slice.call(document.querySelectorAll(sel)).filter(function (tr) {
      return !tr.dataset.site || !ev.site || tr.dataset.site === ev.site;
    });
  }

  function severalSites() {
    return document.body.dataset.sites && document.body.dataset.sites !== '0';
  }

  function sessionHref(session, site) {
    return '/s/' + encodeURIComponent(session) +
           (site && severalSites() ? '?site=' + encodeURIComponent(site) : '');
  }

  function cell(text) {
    const td = document.createElement('td');
    if (text !== undefined) td.textContent = text;
    return td;
  }

  function attentionRow(ev) {
    const tr = document.createElement('tr');
    tr.dataset.session = ev.session;
    if (ev.site && severalSites()) tr.dataset.site = ev.site;
    tr.dataset.state = ev.state;
    tr.className = 'new';
    const id = cell();
    id.className = 'id';
    const a = document.createElement('a');
    a.href = sessionHref(ev.session, ev.site);
    a.textContent = ev.session;
    id.appendChild(a);
    const st = cell();
    st.className = 'st';
    st.appendChild(badge(ev.state));
    const err = cell(ev.reason || '');
    err.className = 'err';
    tr.append(id, st, err, cell('\u2014'), cell('\u2014'), cell(''));
    return tr;
  }

  function applyToRows(ev) {
    rowsFor(ev).forEach(function (tr) {
      if (!ev.state) {
        tr.classList.add('gone');
        return;
      }
      tr.dataset.state = ev.state;
      const st = tr.querySelector('td.st');
      if (st) st.replaceChildren(badge(ev.state));
      const err = tr.querySelector('td.err');
      if (err && ev.reason && ERRORS.indexOf(ev.type) >= 0) err.textContent = ev.reason;
      tr.classList.toggle('resolved', ATTENTION.indexOf(ev.state) < 0 &&
                                      tr.closest('#attention-table') !== null);
    });
    const body = document.querySelector('#attention-table tbody');
    if (body && ev.state && ATTENTION.indexOf(ev.state) >= 0 &&
        !rowsFor(ev).some(function (tr) { return body.contains(tr); })) {
      body.insertBefore(attentionRow(ev), body.firstChild);
      const empty = $('attention-empty');
      if (empty) empty.hidden = true;
    }
  }

  function isThisSession(ev) {
    const site = document.body.dataset.site;
    return document.body.dataset.session === ev.session && (!site || !ev.site || site === ev.site);
  }

  function applyToSessionView(ev) {
    if (!isThisSession(ev)) return;
    const st = $('session-state');
    if (st && ev.state) st.replaceChildren(badge(ev.state));
    const err = $('session-error');
    if (err && ev.reason && ERRORS.indexOf(ev.type) >= 0) err.textContent = ev.reason;
  }

  function logEvent(ev) {
    const list = $('event-log');
    if (!list) return;
    if (document.body.dataset.view === 'session' && !isThisSession(ev)) return;
    const li = document.createElement('li');
    li.dataset.type = ev.type;
    li.dataset.session = ev.session || '';
    const t = new Date(ev.time);
    const when = isNaN(t) ? '' : t.toLocaleTimeString();
    const change = (ev.previousState || '\u2205') + ' \u2192 ' + (ev.state || '\u2205');
    li.textContent = when + ' ' + ev.type + ' ' + (ev.session || '') + ' (' + change + ')' +
                     (ev.reason ? ': ' + ev.reason : '');
    list.insertBefore(li, list.firstChild);
    while (list.children.length > MAX_LOG) list.removeChild(list.lastChild);
    const empty = $('events-empty');
    if (empty) empty.hidden = true;
  }

  function onEvent(e) {
    let ev;
    try { ev = JSON.parse(e.data); } catch (err) { return; }
    if (!ev || typeof ev.session !== 'string') return;
    ev.type = ev.type || e.type;
    logEvent(ev);
    applyToRows(ev);
    applyToSessionView(ev);
    scheduleCounts();
  }

  function connect() {
    if (!window.EventSource) return;
    const es = new EventSource('/events');
    es.onopen = function () { setLive('on', true); };
    es.onerror = function () {
      // EventSource reconnects by itself (with Last-Event-ID) unless the
      // server refused: then it is closed for good.
      setLive(es.readyState === EventSource.CLOSED ? 'unavailable' : 'reconnecting', false);
    };
    TYPES.forEach(function (t) { es.addEventListener(t, onEvent); });
    es.addEventListener('reset', scheduleCounts);
  }

  function authHeaders() {
    return adminToken ? {'Authorization': 'Bearer ' + adminToken} : {};
  }

  async function postRefresh(id, site) {
    const path = site ? '/sites/' + encodeURIComponent(site) + '/sessions/' : '/sessions/';
    return fetch(path + encodeURIComponent(id) + '/refresh',
                 {method: 'POST', headers: authHeaders(), credentials: 'same-origin'});
  }

  async function refreshNow(button) {
    const id = button.dataset.session;
    const site = button.dataset.site;
    const out = $('refresh-result');
    button.disabled = true;
    out.textContent = 'refreshing\u2026';
    try {
      let r = await postRefresh(id, site);
      if (r.status === 401) {
        const token = window.prompt('This sessiond needs its admin token to refresh a session:');
        if (!token) {
          out.textContent = 'not refreshed: no admin token given';
          return;
        }
        adminToken = token;
        r = await postRefresh(id, site);
        if (r.status === 401) adminToken = null;
      }
      let body = {};
      try { body = await r.json(); } catch (err) { body = {}; }
      out.textContent = (r.ok ? 'refreshed: ' : 'HTTP ' + r.status + ': ') +
                        (body.outcome || body.error || '');
      out.className = r.ok ? 'ok' : 'bad';
      await reloadSession(id);
    } catch (err) {
      out.textContent = 'request failed: ' + err;
      out.className = 'bad';
    } finally {
      button.disabled = false;
    }
  }

  function setTime(id, iso) {
    const el = $(id);
    if (!el) return;
    if (!iso) {
      el.textContent = '\u2014';
      return;
    }
    const t = document.createElement('time');
    t.setAttribute('datetime', iso);
    t.title = iso;
    el.replaceChildren(t);
  }

  async function reloadSession(id) {
    const r = await fetch('/sessions/' + encodeURIComponent(id),
                          {headers: authHeaders(), credentials: 'same-origin'});
    if (!r.ok) return;
    const s = await r.json();
    if (s.state && $('session-state')) $('session-state').replaceChildren(badge(s.state));
    if ($('session-error')) $('session-error').textContent = s.lastError || '\u2014';
    setTime('session-last', s.lastRefresh);
    setTime('session-next', s.nextRefresh);
    if ($('session-count')) $('session-count').textContent = String(s.refreshCount);
    if ($('session-retries')) $('session-retries').textContent = String(s.retryCount);
    updateTimes();
  }

  document.addEventListener('DOMContentLoaded', function () {
    const button = $('refresh-now');
    if (button) button.addEventListener('click', function () { refreshNow(button); });
    connect();
    setInterval(updateTimes, 15000);
    if (document.body.dataset.view === 'overview') setInterval(refreshCounts, 30000);
  });
})();
)js";

const char* const kAppCss =
    R"css(:root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #57606a; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1f2328; background: #fff; }
header { display: flex; gap: 1em; align-items: baseline; flex-wrap: wrap; padding: .6em 1em;
         background: #f6f8fa; border-bottom: 1px solid #d0d7de; }
header h1 { font-size: 1.2em; margin: 0; }
header a { color: inherit; text-decoration: none; }
header nav a { text-decoration: underline; margin-right: .5em; }
header nav a[aria-current] { font-weight: 600; text-decoration: none; }
main { padding: 0 1em; }
h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
.ok { color: var(--ok); }
.bad { color: var(--bad); }
.none, .hint, footer, .legend { color: var(--muted); }
footer { padding: 1em; font-size: .9em; }
ul.counts { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .5em; }
ul.counts li { border: 1px solid #d0d7de; border-radius: 6px; padding: .3em .7em; }
ul.counts a { color: inherit; text-decoration: none; }
ul.counts .n { font-weight: 600; font-size: 1.2em; }
ul.sites { list-style: none; padding: 0; }
ul.sites li { padding: .15em 0; }
tr.site-group th { background: #f6f8fa; font-weight: normal; }
.breaker { font-size: .85em; padding: 0 .4em; border-radius: 4px; background: #dafbe1; }
.breaker-open, .breaker-half_open { background: #ffebe9; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25em .5em; border-bottom: 1px solid #eaeef2; vertical-align: top; }
td.num { text-align: right; }
tfoot th, tfoot td { font-weight: 600; border-top: 2px solid #d0d7de; }
tr.failed { background: #ffebe9; }
td.err { max-width: 40em; overflow-wrap: anywhere; }
tr.new { background: #fff8c5; }
tr.resolved, tr.gone { opacity: .5; }
.state { font-size: .85em; padding: 0 .4em; border-radius: 4px; background: #eaeef2; }
.state-active { background: #dafbe1; }
.state-retrying, .state-pending, .state-paused { background: #fff8c5; }
.state-at_risk, .state-failed, .state-file_error, .state-invalid { background: #ffebe9; }
#refresh-chart rect.ok { fill: #8c959f; }
#refresh-chart rect.fail { fill: var(--bad); }
#refresh-chart .axis { stroke: #8c959f; }
#refresh-chart .label { font-size: 10px; fill: var(--muted); }
.key { display: inline-block; width: .8em; height: .8em; }
.key.ok { background: #8c959f; }
.key.fail { background: var(--bad); }
#event-log { max-height: 14em; overflow-y: auto; font-family: ui-monospace, monospace; font-size: .9em; }
nav.pager a { margin-right: 1em; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; }
dt { color: var(--muted); }
dd { margin: 0; }
)css";

}  // namespace

std::optional<UiAsset> ui_asset(const std::string& name) {
  if (name == "app.js") return UiAsset{"text/javascript; charset=utf-8", kAppJs};
  if (name == "app.css") return UiAsset{"text/css; charset=utf-8", kAppCss};
  return std::nullopt;
}

}  // namespace sessiond
