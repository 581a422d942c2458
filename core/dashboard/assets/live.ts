/**
 * The dashboard's one script, shipped as a string (served from `<base>/assets/live.js`; the CSP
 * allows scripts from `self` only, never inline). Pages work without it; it adds:
 * - live refresh: every `data-refresh-ms` (2 s) it fetches the page's live region
 *   (`?fragment=1`) and swaps it in place, keeping the scroll position, open <details>, checked
 *   boxes and focus; it skips a turn while the user types in a field, while the tab is hidden,
 *   or when the "Live" box is unticked, and backs off while the server fails;
 * - "select all" boxes and a confirm() for forms that ask for one.
 */
export const LIVE_JS = `'use strict';
(function () {
  var body = document.body;
  var region = document.getElementById('live');
  var stateEl = document.querySelector('[data-refresh-state]');
  var toggle = document.getElementById('live-toggle');
  var baseMs = Number(body.getAttribute('data-refresh-ms')) || 2000;
  var delayMs = baseMs;
  var busy = false;
  // Ticked rows by form and value; kept across swaps because the boxes themselves are replaced.
  var selected = {};

  function keyOf(box) { return (box.getAttribute('form') || '') + '|' + box.name + '|' + box.value; }

  function setState(text, failing) {
    if (!stateEl) return;
    stateEl.textContent = text;
    stateEl.classList.toggle('failing', !!failing);
  }

  function rowBoxes(scope) { return (scope || document).querySelectorAll('input[type=checkbox][data-select]'); }

  document.addEventListener('change', function (e) {
    var t = e.target;
    if (!(t instanceof HTMLInputElement) || t.type !== 'checkbox') return;
    if (t.hasAttribute('data-select')) {
      if (t.checked) selected[keyOf(t)] = true; else delete selected[keyOf(t)];
    } else if (t.hasAttribute('data-select-all')) {
      rowBoxes(region).forEach(function (b) {
        b.checked = t.checked;
        if (b.checked) selected[keyOf(b)] = true; else delete selected[keyOf(b)];
      });
    } else if (t === toggle) {
      try { sessionStorage.setItem('bgtasks-live', t.checked ? '1' : '0'); } catch (_) { /* storage off */ }
      setState(t.checked ? 'Live' : 'Paused', false);
    }
  });

  document.addEventListener('submit', function (e) {
    var form = e.target;
    var submitter = e.submitter;
    var question = (submitter && submitter.getAttribute('data-confirm')) || (form && form.getAttribute && form.getAttribute('data-confirm'));
    if (question && !window.confirm(question)) e.preventDefault();
  });

  if (toggle) {
    try { if (sessionStorage.getItem('bgtasks-live') === '0') toggle.checked = false; } catch (_) { /* storage off */ }
  }
  if (!region) return;

  rowBoxes(region).forEach(function (b) { if (b.checked) selected[keyOf(b)] = true; });

  function typing() {
    var a = document.activeElement;
    if (!a) return false;
    if (a.tagName === 'TEXTAREA' || a.tagName === 'SELECT') return true;
    if (a.tagName !== 'INPUT') return false;
    return ['checkbox', 'radio', 'submit', 'button', 'reset'].indexOf(a.type) < 0;
  }

  function swap(htmlText) {
    var x = window.scrollX, y = window.scrollY;
    var open = {};
    region.querySelectorAll('details[data-key]').forEach(function (d) { open[d.getAttribute('data-key')] = d.open; });
    var focused = document.activeElement;
    var focusKey = focused && region.contains(focused) && focused.name ? keyOf(focused) : null;
    region.innerHTML = htmlText;
    region.querySelectorAll('details[data-key]').forEach(function (d) {
      var k = d.getAttribute('data-key');
      if (Object.prototype.hasOwnProperty.call(open, k)) d.open = open[k];
    });
    var all = true, any = false;
    rowBoxes(region).forEach(function (b) {
      b.checked = !!selected[keyOf(b)];
      all = all && b.checked; any = true;
      if (focusKey && keyOf(b) === focusKey) b.focus({ preventScroll: true });
    });
    region.querySelectorAll('input[data-select-all]').forEach(function (b) { b.checked = any && all; });
    window.scrollTo(x, y);
  }

  function schedule() { window.setTimeout(tick, delayMs); }

  function tick() {
    if (busy) return schedule();
    if (toggle && !toggle.checked) return schedule();
    if (document.hidden) return schedule();
    if (typing()) { setState('Paused while you type', false); return schedule(); }
    var url = new URL(window.location.href);
    url.searchParams.set('fragment', '1');
    busy = true;
    fetch(url.toString(), { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'text/html' } })
      .then(function (res) {
        if (res.status === 401 || res.status === 403) { setState('Stopped: sign in again (reload)', true); delayMs = 0; return null; }
        // A 404 fragment is real content (the task is gone); other failures keep what is shown.
        if (!res.ok && res.status !== 404) throw new Error('HTTP ' + res.status);
        return res.text();
      })
      .then(function (text) {
        if (text === null) return;
        if (!typing()) swap(text);
        delayMs = baseMs;
        setState('Live · updated ' + new Date().toISOString().slice(11, 19) + ' UTC', false);
      })
      .catch(function () {
        delayMs = Math.min(delayMs * 2, 30000);
        setState('Refresh failing; retrying in ' + Math.round(delayMs / 1000) + ' s', true);
      })
      .then(function () { busy = false; if (delayMs > 0) schedule(); });
  }
  schedule();
})();
`;
