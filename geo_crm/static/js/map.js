/* /map page: area selection with the draw tool, result list, exports, save as territory.
 * All data goes into the DOM with textContent (never innerHTML). */
(function () {
  'use strict';
  var main = document.getElementById('map-main');
  if (!main) { return; }
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || '';
  var status = document.getElementById('draw-status');
  var list = document.getElementById('draw-results');
  var actions = document.getElementById('draw-actions');
  var MAX = 500;
  var state = {body: null, geometry: null, result: null};

  function filters() {
    var out = {};
    new URLSearchParams(main.dataset.filters || '').forEach(function (v, k) { if (v !== '') { out[k] = v; } });
    return out;
  }

  function circlePolygon(lat, lon, r, n) {
    // geodesic circle on a sphere (R = 6371008.8 m), n vertices, GeoJSON [lon, lat]
    var R = 6371008.8, d = r / R, la = lat * Math.PI / 180, lo = lon * Math.PI / 180, ring = [];
    for (var i = 0; i <= n; i++) {
      var b = 2 * Math.PI * (i % n) / n;
      var la2 = Math.asin(Math.sin(la) * Math.cos(d) + Math.cos(la) * Math.sin(d) * Math.cos(b));
      var lo2 = lo + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(la), Math.cos(d) - Math.sin(la) * Math.sin(la2));
      ring.push([lo2 * 180 / Math.PI, la2 * 180 / Math.PI]);
    }
    return {type: 'Polygon', coordinates: [ring]};
  }

  function post(url, body) {
    return fetch(url, {method: 'POST', credentials: 'same-origin',
      headers: {'Content-Type': 'application/json', 'X-CSRFToken': csrf, 'Accept': 'application/json'},
      body: JSON.stringify(body)});
  }

  function render(fc) {
    list.textContent = '';
    (fc.features || []).forEach(function (f) {
      var li = document.createElement('li');
      var a = document.createElement('a');
      a.href = '/customers/' + encodeURIComponent(f.id);
      a.textContent = (f.properties && f.properties.name) || String(f.id);
      li.appendChild(a);
      var extra = [f.properties.level, f.properties.city].filter(Boolean).join(' · ');
      if (extra) { li.appendChild(document.createTextNode(' ' + extra)); }
      li.dataset.id = f.id;
      list.appendChild(li);
    });
    var n = fc.numberMatched != null ? fc.numberMatched : (fc.features || []).length;
    status.textContent = n + ' customers inside' + (n > (fc.features || []).length ? ' (first ' + (fc.features || []).length + ' listed)' : '');
    status.dataset.count = String(n);
    actions.hidden = false;
  }

  function search(detail) {
    var body = Object.assign(filters(), {limit: MAX});
    if (detail.shape === 'Circle' && detail.center) {
      body.near = detail.center[1] + ',' + detail.center[0];
      body.radius_m = detail.radius_m;
      state.geometry = circlePolygon(detail.center[0], detail.center[1], detail.radius_m, 64);
    } else {
      body.within = detail.geojson.geometry;
      state.geometry = detail.geojson.geometry;
    }
    state.body = body;
    status.textContent = '…';
    return post('/api/v1/customers/search', body).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error((data.error && data.error.message) || r.statusText); }
        state.result = data;
        render(data);
        return data;
      });
    }).catch(function (e) { status.textContent = String(e.message || e); });
  }

  function download(blob, name) {
    var a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  main.addEventListener('geocrm:draw', function (e) {
    var d = e.detail || {};
    if (d.action === 'remove') {
      list.textContent = ''; status.textContent = ''; actions.hidden = true; state.body = null;
      return;
    }
    search(d);
  });

  var csvBtn = document.getElementById('export-csv');
  if (csvBtn) {
    csvBtn.addEventListener('click', function () {
      if (!state.body) { return; }
      var body = Object.assign({}, state.body, {format: 'csv'});
      delete body.limit;
      post('/api/v1/customers/search', body).then(function (r) { return r.blob(); })
        .then(function (b) { download(b, 'customers-in-area.csv'); });
    });
  }
  var gjBtn = document.getElementById('export-geojson');
  if (gjBtn) {
    gjBtn.addEventListener('click', function () {
      if (!state.result) { return; }
      download(new Blob([JSON.stringify(state.result)], {type: 'application/geo+json'}), 'customers-in-area.geojson');
    });
  }
  var saveBtn = document.getElementById('save-territory');
  if (saveBtn) {
    saveBtn.addEventListener('click', function () {
      var msg = document.getElementById('territory-status');
      var name = document.getElementById('territory-name').value.trim();
      if (!state.geometry || !name) { msg.textContent = 'Draw an area and give it a name.'; return; }
      post('/api/v1/territories', {name: name, geometry: state.geometry,
        allow_overlap: document.getElementById('territory-overlap').checked}).then(function (r) {
        return r.json().then(function (data) {
          if (r.ok) { msg.textContent = 'Saved territory #' + data.id; return; }
          var fields = (data.error && data.error.fields) || [];
          msg.textContent = ((data.error && data.error.message) || r.statusText) +
            (fields.length ? ' — ' + fields.map(function (f) { return f.problem; }).join('; ') : '');
        });
      });
    });
  }
  // for scripted use (and tests): the Leaflet map and the last search
  window.GeoCrmMapPage = {map: window[main.dataset.mapId], search: search, state: state};
}());
