/* Customer pages: map-click location picking, search suggestions, delete confirmation.
 * Loaded with the page's CSP nonce; data goes into the DOM with textContent/value only.
 * Coordinates are EPSG:4326 decimal degrees (Leaflet LatLng: lat, lng). */
(function () {
  'use strict';

  function leafletMap(container) {
    if (!container || typeof L === 'undefined') { return null; }
    var div = container.querySelector('.folium-map');
    var m = div && window[div.id];
    return m && typeof m.on === 'function' ? m : null;
  }

  /* -- location picking on the edit/new form ----------------------------------------- */
  function setupPicker() {
    var box = document.getElementById('pick-map');
    var map = leafletMap(box);
    var form = document.getElementById('customer-form');
    if (!map || !form) { return; }
    var lon = form.querySelector('input[name=lon]');
    var lat = form.querySelector('input[name=lat]');
    var quality = form.querySelector('select[name=geocode_quality]');
    var icon = L.divIcon({className: 'pick-pin', iconSize: [22, 22], iconAnchor: [11, 11]});
    var marker = null;

    function current() {
      var x = parseFloat(lon.value), y = parseFloat(lat.value);
      if (!isFinite(x) || !isFinite(y) || x < -180 || x > 180 || y < -90 || y > 90) { return null; }
      return L.latLng(y, x);
    }
    function place(ll) {
      if (!ll) {
        if (marker) { map.removeLayer(marker); marker = null; }
        return;
      }
      if (!marker) {
        marker = L.marker(ll, {icon: icon, draggable: true, keyboard: true, title: 'New location'}).addTo(map);
        marker.on('dragend', function () { write(marker.getLatLng()); });
      } else {
        marker.setLatLng(ll);
      }
    }
    function write(ll) {
      var w = ll.wrap();
      lon.value = w.lng.toFixed(6);
      lat.value = w.lat.toFixed(6);
      if (quality) { quality.value = 'manual'; }
      lon.dispatchEvent(new Event('change', {bubbles: true}));
    }
    map.on('click', function (e) { write(e.latlng); place(e.latlng.wrap()); });
    [lon, lat].forEach(function (inp) {
      inp.addEventListener('input', function () { place(current()); });
    });
    var clear = document.getElementById('clear-location');
    if (clear) {
      clear.addEventListener('click', function () { lon.value = ''; lat.value = ''; place(null); });
    }
    var start = current();
    if (start) { place(start); }
    box.classList.add('pick-ready');
    box.setAttribute('data-ready', '1');
  }

  /* -- search suggestions in the list filter ------------------------------------------ */
  function setupSuggest() {
    var input = document.querySelector('input[data-suggest-url]');
    var list = document.getElementById('customer-suggest');
    if (!input || !list || !window.fetch) { return; }
    var timer = null, seq = 0;
    input.addEventListener('input', function () {
      clearTimeout(timer);
      var q = input.value.trim();
      if (q.length < 2) { return; }
      timer = setTimeout(function () {
        var mine = ++seq;
        fetch(input.getAttribute('data-suggest-url') + '?q=' + encodeURIComponent(q) + '&limit=10',
              {credentials: 'same-origin', headers: {'Accept': 'application/json'}})
          .then(function (r) { return r.ok ? r.json() : {suggestions: []}; })
          .then(function (body) {
            if (mine !== seq) { return; }
            while (list.firstChild) { list.removeChild(list.firstChild); }
            (body.suggestions || []).forEach(function (s) {
              var o = document.createElement('option');
              o.value = s.name;
              o.textContent = s.code + (s.city ? ' · ' + s.city : '');
              list.appendChild(o);
            });
          })
          .catch(function () { /* suggestions are optional */ });
      }, 200);
    });
  }

  /* -- confirmation before destructive posts ------------------------------------------- */
  function setupConfirm() {
    document.querySelectorAll('form[data-confirm]').forEach(function (f) {
      f.addEventListener('submit', function (e) {
        if (!window.confirm(f.getAttribute('data-confirm'))) { e.preventDefault(); }
      });
    });
  }

  function init() { setupPicker(); setupSuggest(); setupConfirm(); }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
}());
