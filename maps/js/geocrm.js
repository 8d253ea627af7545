/* geo-crm map helpers (package data of the Python `maps` package).
 *
 * Inlined once per page by maps.layers; defines window.GeoCRM. Nothing here
 * touches `L` at load time, so the order against leaflet.js does not matter.
 *
 * Security rule for this file: data (feature properties, names, ids) is only
 * ever put into the DOM with textContent / DOM nodes, never with innerHTML,
 * and links are only set when they are root-relative ("/...") or http(s).
 * Coordinates are EPSG:4326 (GeoJSON lon/lat; Leaflet LatLng lat/lon).
 */
(function (w) {
  'use strict';
  var G = w.GeoCRM = w.GeoCRM || {};

  G.el = function (tag, text, className) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (className) { e.className = className; }
    return e;
  };

  // Only "/path" (not "//host") and http(s) URLs may become links.
  G.safeHref = function (url) {
    if (typeof url !== 'string') { return null; }
    return /^(\/(?!\/)|https?:\/\/)/i.test(url) ? url : null;
  };

  // "/customers/{id}" + 42 -> "/customers/42" (id is URI-encoded).
  G.recordUrl = function (pattern, id) {
    if (!pattern || id === undefined || id === null || id === '') { return null; }
    return G.safeHref(String(pattern).split('{id}').join(encodeURIComponent(String(id))));
  };

  G.prop = function (props, key) {
    if (!props || !key) { return undefined; }
    return Object.prototype.hasOwnProperty.call(props, key) ? props[key] : undefined;
  };

  /* Popup/tooltip content as a DOM element.
   * opts: {titleProperty, fields: [[property, label], ...], urlPattern,
   *        idProperty, linkText, fallbackTitle} */
  G.featureContent = function (props, opts, withLink) {
    opts = opts || {};
    var box = G.el('div', null, 'geocrm-popup');
    var title = G.prop(props, opts.titleProperty);
    if (title === undefined || title === null || title === '') { title = opts.fallbackTitle || ''; }
    box.appendChild(G.el('strong', title, 'geocrm-popup-title'));
    var fields = opts.fields || [];
    if (withLink && fields.length) {
      var table = G.el('table', null, 'geocrm-popup-fields');
      fields.forEach(function (f) {
        var v = G.prop(props, f[0]);
        if (v === undefined || v === null || v === '') { return; }
        var tr = document.createElement('tr');
        tr.appendChild(G.el('th', f[1]));
        tr.appendChild(G.el('td', typeof v === 'object' ? JSON.stringify(v) : v));
        table.appendChild(tr);
      });
      box.appendChild(table);
    }
    if (withLink) {
      var href = G.recordUrl(opts.urlPattern, G.prop(props, opts.idProperty || 'id'));
      if (href) {
        var a = G.el('a', opts.linkText || 'Open record', 'geocrm-popup-link');
        a.href = href;
        box.appendChild(a);
      }
    }
    return box;
  };

  G.bindFeature = function (layer, props, opts) {
    if (opts.tooltip !== false) {
      layer.bindTooltip(G.featureContent(props, opts, false), {sticky: !!opts.stickyTooltip});
    }
    if (opts.popup !== false) {
      layer.bindPopup(function () { return G.featureContent(props, opts, true); });
    }
  };

  G.isColor = function (c) {
    return typeof c === 'string' &&
      /^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20}|(rgb|hsl)a?\([0-9.,%\s]+\))$/.test(c);
  };

  /* Polygons (regions, territories, service areas, choropleth classes). */
  G.polygons = function (data, cfg) {
    return L.geoJSON(data, {
      style: function (f) {
        var p = f.properties || {};
        var c = G.prop(p, cfg.colorProperty);
        if (!G.isColor(c)) { c = cfg.defaultColor; }
        var fc = G.prop(p, cfg.fillColorProperty);
        if (!G.isColor(fc)) { fc = c; }
        return {color: cfg.strokeColor || c, fillColor: fc, weight: cfg.weight,
                opacity: cfg.opacity, fillOpacity: cfg.fillOpacity,
                dashArray: cfg.dashArray || null};
      },
      interactive: cfg.interactive !== false,
      onEachFeature: function (f, layer) {
        if (cfg.interactive === false) { return; }
        G.bindFeature(layer, f.properties || {}, cfg);
      }
    });
  };

  G.pinIcon = function (cfg) {
    var span = G.el('span', null, 'geocrm-pin-dot');
    span.style.background = G.isColor(cfg.color) ? cfg.color : '#2a6fdb';
    return L.divIcon({className: 'geocrm-pin geocrm-pin--' + cfg.kind, html: span,
                      iconSize: [18, 18], iconAnchor: [9, 9], popupAnchor: [0, -9]});
  };

  /* Branches / partners: one marker per point feature. */
  G.points = function (data, cfg) {
    return L.geoJSON(data, {
      pointToLayer: function (f, latlng) {
        return L.marker(latlng, {icon: G.pinIcon(cfg), keyboard: true});
      },
      onEachFeature: function (f, layer) { G.bindFeature(layer, f.properties || {}, cfg); }
    });
  };

  /* Customers, clustered with leaflet.markercluster. */
  G.clusteredPoints = function (data, cfg) {
    var group = L.markerClusterGroup(cfg.clusterOptions || {});
    var inner = L.geoJSON(data, {
      pointToLayer: function (f, latlng) {
        var color = G.levelColor(G.prop(f.properties || {}, cfg.levelProperty), cfg.levelColors, cfg.defaultColor);
        return L.circleMarker(latlng, {radius: 6, color: '#ffffff', weight: 1,
                                       fillColor: color, fillOpacity: 0.9});
      },
      onEachFeature: function (f, layer) { G.bindFeature(layer, f.properties || {}, cfg); }
    });
    group.addLayer(inner);
    return group;
  };

  G.levelColor = function (level, colors, fallback) {
    var c = (colors && level !== undefined && level !== null) ? G.prop(colors, String(level)) : undefined;
    return G.isColor(c) ? c : fallback;
  };

  /* Customers from Mapbox Vector Tiles (leaflet.vectorgrid). Features with
   * count > 1 are server-side aggregates and are drawn as sized circles. */
  G.vectorCustomers = function (url, cfg) {
    var styles = {};
    styles[cfg.layerName] = function (p, zoom) {
      var count = Number(G.prop(p, cfg.countProperty) || 1);
      if (count > 1) {
        var r = Math.min(cfg.maxClusterRadius, 6 + 3 * Math.log(count) / Math.LN2);
        return {radius: r, fill: true, fillColor: cfg.clusterColor, fillOpacity: 0.6,
                color: '#ffffff', weight: 1};
      }
      return {radius: 5, fill: true, fillOpacity: 0.9, color: '#ffffff', weight: 1,
              fillColor: G.levelColor(G.prop(p, cfg.levelProperty), cfg.levelColors, cfg.defaultColor)};
    };
    var options = {
      rendererFactory: cfg.renderer === 'canvas' ? L.canvas.tile : L.svg.tile,
      vectorTileLayerStyles: styles,
      interactive: true,
      maxNativeZoom: cfg.maxNativeZoom,
      minZoom: cfg.minZoom,
      maxZoom: cfg.maxZoom,
      getFeatureId: function (f) { return G.prop(f.properties, cfg.idProperty); }
    };
    var layer = L.vectorGrid.protobuf(url, options);
    // VectorGrid point symbolizers carry no latlng, and Leaflet 1.9 asks markers-like
    // targets for one on click: give each point its position when its tile loads.
    layer.on('tileload', function (e) {
      var vt = layer._vectorTiles && layer._vectorTiles[layer._tileCoordsToKey(e.coords)];
      var feats = (vt && vt._features) || {};
      var origin = e.coords.scaleBy(layer.getTileSize());
      Object.keys(feats).forEach(function (id) {
        var f = feats[id] && feats[id].feature;
        if (f && f._point && !f._latlng && layer._map) {
          f._latlng = layer._map.unproject(origin.add(f._point), e.coords.z);
        }
      });
    });
    layer.on('click', function (e) {
      var p = (e.layer && e.layer.properties) || {};
      var count = Number(G.prop(p, cfg.countProperty) || 1);
      var content;
      if (count > 1) {
        content = G.el('div', null, 'geocrm-popup');
        content.appendChild(G.el('strong', count + ' ' + cfg.aggregateLabel, 'geocrm-popup-title'));
        content.appendChild(G.el('div', cfg.zoomHint));
      } else {
        content = G.featureContent(p, cfg, true);
      }
      L.popup().setLatLng(e.latlng).setContent(content).openOn(layer._map);
      if (e.originalEvent) { L.DomEvent.stopPropagation(e.originalEvent); }
    });
    return layer;
  };

  /* Routes: a polyline per route plus numbered stop markers. */
  G.routes = function (routes, cfg) {
    var group = L.featureGroup();
    routes.forEach(function (r) {
      var color = G.isColor(r.color) ? r.color : '#2a6fdb';
      if (r.path && r.path.length > 1) {
        var line = L.polyline(r.path, {color: color, weight: cfg.weight, opacity: 0.85});
        line.bindTooltip(G.el('span', r.label));
        group.addLayer(line);
      }
      (r.stops || []).forEach(function (s) {
        var num = G.el('span', s.seq, 'geocrm-stop-num');
        num.style.background = color;
        var icon = L.divIcon({className: 'geocrm-stop', html: num, iconSize: [24, 24],
                              iconAnchor: [12, 12], popupAnchor: [0, -12]});
        var m = L.marker([s.lat, s.lon], {icon: icon, title: String(s.seq)});
        var props = {title: s.seq + '. ' + (s.name || ''), route: r.label, eta: s.eta, note: s.note, id: s.id};
        G.bindFeature(m, props, {titleProperty: 'title', fields: [['route', cfg.routeLabel], ['eta', cfg.etaLabel], ['note', cfg.noteLabel]],
                                 urlPattern: cfg.urlPattern, idProperty: 'id', linkText: cfg.linkText});
        group.addLayer(m);
      });
    });
    return group;
  };

  /* Legend: the escaped HTML is rendered server-side into the page body;
   * this only moves that node into a Leaflet control. */
  G.legend = function (map, nodeId, position) {
    var node = document.getElementById(nodeId);
    if (!node) { return null; }
    var ctl = L.control({position: position});
    ctl.onAdd = function () {
      var box = L.DomUtil.create('div', 'geocrm-legend-control leaflet-bar');
      node.hidden = false;
      box.appendChild(node);
      L.DomEvent.disableClickPropagation(box);
      return box;
    };
    ctl.addTo(map);
    return ctl;
  };

  /* Attribution entries are escaped server-side (Leaflet inserts them as HTML). */
  G.attribution = function (map, entries) {
    if (!map.attributionControl) { L.control.attribution().addTo(map); }
    entries.forEach(function (t) { map.attributionControl.addAttribution(t); });
  };

  /* Draw control (leaflet-geoman). Dispatches a bubbling DOM CustomEvent on the
   * map container: event.detail = {action, shape, geojson, radius_m?, center?, map_id}.
   * geojson is a GeoJSON Feature in EPSG:4326; a circle is its centre Point
   * plus radius_m (metres). The page's own JS decides what to query. */
  G.drawControl = function (map, cfg) {
    if (!map.pm) { throw new Error('leaflet-geoman is not loaded'); }
    map.pm.addControls(cfg.controls);
    if (cfg.lang) { map.pm.setLang(cfg.lang); }
    var drawn = L.featureGroup().addTo(map);
    function emit(action, layer, shape) {
      var detail = {action: action, shape: shape || (layer.pm && layer.pm.getShape && layer.pm.getShape()) || null,
                    geojson: layer.toGeoJSON(), map_id: map.getContainer().id};
      if (layer instanceof L.Circle) {
        detail.radius_m = layer.getRadius();
        var c = layer.getLatLng();
        detail.center = [c.lat, c.lng];
        detail.geojson.properties = detail.geojson.properties || {};
        detail.geojson.properties.radius_m = detail.radius_m;
      }
      map.getContainer().dispatchEvent(new CustomEvent(cfg.eventName, {detail: detail, bubbles: true}));
    }
    function watch(layer, shape) {
      layer.on('pm:edit', function () { emit('edit', layer, shape); });
    }
    map.on('pm:create', function (e) {
      if (cfg.single) { drawn.clearLayers(); }
      drawn.addLayer(e.layer);
      watch(e.layer, e.shape);
      emit('create', e.layer, e.shape);
    });
    map.on('pm:cut', function (e) {
      drawn.removeLayer(e.originalLayer);
      drawn.addLayer(e.layer);
      watch(e.layer, e.shape);
      emit('cut', e.layer, e.shape);
    });
    map.on('pm:remove', function (e) {
      drawn.removeLayer(e.layer);
      emit('remove', e.layer, e.shape);
    });
    return drawn;
  };
}(window));
