/* Delivery planning page: show only the stop-source fields that apply, and while a
 * plan is queued/solving poll GET /api/v1/routes/<id> (session cookie) to show progress;
 * reload when it is planned or failed. No inline handlers (strict CSP). */
(function () {
  'use strict';

  function syncSource() {
    var sel = document.getElementById('source');
    if (!sel) { return; }
    document.querySelectorAll('.source-filter').forEach(function (fs) {
      fs.hidden = fs.getAttribute('data-source') !== sel.value;
    });
  }

  function poll(section) {
    var url = section.getAttribute('data-api');
    var limit = parseFloat(section.getAttribute('data-time-limit')) || 10;
    var started = Date.now();
    var bar = document.getElementById('plan-progress');
    var text = document.getElementById('plan-progress-text');
    var badge = document.getElementById('plan-status');
    var delay = 700;

    function tick() {
      fetch(url, {credentials: 'same-origin', headers: {'Accept': 'application/json'}})
        .then(function (r) { return r.ok ? r.json() : Promise.reject(new Error('HTTP ' + r.status)); })
        .then(function (plan) {
          var secs = (Date.now() - started) / 1000;
          if (badge) { badge.textContent = plan.status; }
          if (plan.status === 'planned' || plan.status === 'failed') {
            if (bar) { bar.value = 100; }
            window.location.reload();
            return;
          }
          if (bar) { bar.value = Math.min(95, Math.round(100 * secs / (limit + 2))); }
          if (text) {
            text.textContent = (plan.status === 'queued' ? 'Queued' : 'Solving') + ' … ' +
              Math.round(secs) + ' s (limit ' + limit + ' s)';
          }
          window.setTimeout(tick, delay);
        })
        .catch(function (err) {
          if (text) { text.textContent = 'Lost contact with the server (' + err.message + '); retrying…'; }
          window.setTimeout(tick, 3000);
        });
    }
    tick();
  }

  document.addEventListener('DOMContentLoaded', function () {
    var sel = document.getElementById('source');
    if (sel) { sel.addEventListener('change', syncSource); syncSource(); }
    var btn = document.getElementById('plan-button');
    var form = document.getElementById('plan-form');
    if (form && btn) {
      form.addEventListener('submit', function () { btn.disabled = true; btn.textContent = 'Planning…'; });
    }
    document.querySelectorAll('.route-plan').forEach(function (section) {
      var st = section.getAttribute('data-plan-status');
      if (st === 'queued' || st === 'solving') { poll(section); }
    });
  });
}());
