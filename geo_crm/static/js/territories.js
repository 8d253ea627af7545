/* /map/territories: create / split / delete / build from regions / merge / users, and the
 * suggested alignment shown beside the current one. API errors are shown as text. */
(function () {
  'use strict';
  var main = document.getElementById('terr-main');
  if (!main) { return; }
  var map = window[main.dataset.mapId];
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || '';
  var st = document.getElementById('t-status');
  var drawn = {polygon: null, line: null};
  var suggestion = null, suggestionLayer = null;

  function call(method, url, body) {
    return fetch(url, {method: method, credentials: 'same-origin',
      headers: {'Content-Type': 'application/json', 'X-CSRFToken': csrf, 'Accept': 'application/json'},
      body: body === undefined ? undefined : JSON.stringify(body)}).then(function (r) {
      if (r.status === 204) { return {ok: true, data: null}; }
      return r.json().then(function (d) { return {ok: r.ok, status: r.status, data: d}; });
    });
  }
  function report(res, okText) {
    if (!st) { return res; }
    if (res.ok) { st.textContent = okText; setTimeout(function () { window.location.reload(); }, 600); }
    else {
      var e = (res.data && res.data.error) || {};
      st.textContent = (e.message || 'error') + ((e.fields || []).length ? ' — ' + e.fields.map(function (f) { return f.problem; }).join('; ') : '');
    }
    return res;
  }
  function val(id) { var el = document.getElementById(id); return el ? el.value : ''; }
  function selected(id) {
    var el = document.getElementById(id);
    return el ? Array.prototype.filter.call(el.options, function (o) { return o.selected; }).map(function (o) { return +o.value; }) : [];
  }
  function on(id, fn) { var el = document.getElementById(id); if (el) { el.addEventListener('click', fn); } }

  main.addEventListener('geocrm:draw', function (e) {
    var d = e.detail || {};
    if (d.action === 'remove') { drawn.polygon = drawn.line = null; }
    else if (d.geojson && d.geojson.geometry && d.geojson.geometry.type === 'LineString') { drawn.line = d.geojson.geometry; }
    else if (d.geojson && d.geojson.geometry) { drawn.polygon = d.geojson.geometry; }
    var c = document.getElementById('t-create'), s = document.getElementById('t-split');
    if (c) { c.disabled = !drawn.polygon; }
    if (s) { s.disabled = !drawn.line; }
  });
  on('t-create', function () {
    call('POST', '/api/v1/territories', {name: val('t-name'), geometry: drawn.polygon,
      allow_overlap: document.getElementById('t-overlap').checked}).then(function (r) { report(r, 'Saved'); });
  });
  on('t-split', function () {
    call('POST', '/api/v1/territories/' + val('t-target') + '/split', {line: drawn.line}).then(function (r) { report(r, 'Split'); });
  });
  on('t-delete', function () {
    call('DELETE', '/api/v1/territories/' + val('t-target')).then(function (r) { report(r, 'Deleted'); });
  });
  on('t-from-regions', function () {
    call('POST', '/api/v1/territories/from-regions', {name: val('t-name'), region_ids: selected('t-regions'),
      allow_overlap: document.getElementById('t-overlap').checked}).then(function (r) { report(r, 'Saved'); });
  });
  on('t-merge-btn', function () {
    call('POST', '/api/v1/territories/merge', {territory_ids: selected('t-merge'), name: val('t-name') || undefined})
      .then(function (r) { report(r, 'Merged'); });
  });
  on('t-users-btn', function () {
    call('PUT', '/api/v1/territories/' + val('t-target') + '/users', {user_ids: selected('t-users')})
      .then(function (r) { report(r, 'Assigned'); });
  });

  var form = document.getElementById('suggest-form');
  if (form) {
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var msg = document.getElementById('suggest-status');
      msg.textContent = '…';
      var q = new URLSearchParams(new FormData(form));
      fetch('/api/v1/territories/suggest?' + q.toString(), {credentials: 'same-origin'}).then(function (r) {
        return r.json().then(function (d) { return {ok: r.ok, data: d}; });
      }).then(function (res) {
        if (!res.ok) { msg.textContent = (res.data.error && res.data.error.message) || 'error'; return; }
        suggestion = res.data;
        if (suggestionLayer) { map.removeLayer(suggestionLayer); }
        suggestionLayer = L.geoJSON(suggestion, {style: function (f) {
          return {color: f.properties.color, weight: 3, dashArray: '6 4', fillOpacity: 0.15};
        }, onEachFeature: function (f, layer) {
          layer.bindTooltip(function () { var s = document.createElement('span'); s.textContent = f.properties.name + ': ' + f.properties.load; return s; });
        }}).addTo(map);
        var tb = document.querySelector('#suggest-table tbody');
        tb.textContent = '';
        suggestion.features.forEach(function (f) {
          var tr = document.createElement('tr');
          [f.properties.name, f.properties.load, f.properties.cells].forEach(function (v) {
            var td = document.createElement('td'); td.textContent = String(v); tr.appendChild(td);
          });
          tb.appendChild(tr);
        });
        document.getElementById('suggest-table').hidden = false;
        var imb = suggestion.properties.imbalance;
        msg.textContent = 'max/min ' + imb.max_min_ratio + ', CV ' + imb.cv + ' (' + suggestion.properties.metric + ')';
        var acc = document.getElementById('suggest-accept');
        if (acc) { acc.hidden = false; }
      });
    });
  }
  on('suggest-accept', function () {
    if (!suggestion) { return; }
    var msg = document.getElementById('suggest-status');
    call('POST', '/api/v1/territories/suggest/accept', suggestion).then(function (res) {
      if (res.ok) { msg.textContent = 'Accepted'; setTimeout(function () { window.location.reload(); }, 600); }
      else { msg.textContent = (res.data.error && res.data.error.message) || 'error'; }
    });
  });
  window.GeoCrmTerritories = {map: map, drawn: drawn};
}());
