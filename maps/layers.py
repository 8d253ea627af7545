"""Map layer builders: plain data in, folium elements out (no Flask, no database).

Coordinates: all inputs are WGS84 / EPSG:4326 — GeoJSON positions are
``[lon, lat]``, point mappings carry ``lat``/``lon`` in degrees. Leaflet
displays them in Web Mercator (EPSG:3857) itself.

Escaping: data (names, properties, ids) is embedded as JSON with ``<>&'``
\\u-escaped and is put in the DOM client-side with ``textContent`` only (see
``maps/js/geocrm.js``); record links are built from a URL pattern such as
``"/customers/{id}"`` with the id URI-encoded, and only root-relative or
http(s) links are ever produced. Layer names shown in the layer control are
HTML-escaped in Python because Leaflet inserts them as HTML.

Every builder returns an element to ``.add_to(map)`` (a ``folium.map.Layer``
subclass for overlays, so ``folium.LayerControl`` lists it).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Sequence
from urllib.parse import urlencode

import folium
import numpy as np
from branca.element import MacroElement
from folium.plugins import HeatMap
from folium.template import Template
from markupsafe import Markup, escape

from maps._common import (
    GeoCrmAssets,
    GeoCrmLayer,
    as_feature_collection,
    check_url_pattern,
    fields_list,
    hex_color,
    js_json,
    points_to_features,
    safe_color,
)
from maps.assets import vendor_link

__all__ = [
    "DEFAULT_LEVEL_COLORS",
    "ROUTE_PALETTE",
    "ChoroplethResult",
    "Legend",
    "branches_layer",
    "choropleth",
    "customer_cluster_layer",
    "customer_tiles_layer",
    "draw_control",
    "heat_layer",
    "outline_layer",
    "partners_layer",
    "point_markers_layer",
    "regions_layer",
    "routes_layer",
]

#: Customer ``level`` -> colour (used by the cluster and vector-tile layers).
DEFAULT_LEVEL_COLORS: dict[str, str] = {
    "A": "#1a9850", "B": "#91cf60", "C": "#fee08b", "D": "#fc8d59", "lead": "#4575b4",
}
#: Colours cycled over vehicles by :func:`routes_layer`.
ROUTE_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                 "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
#: Sequential ramp (ColorBrewer YlOrRd 9) used by :func:`choropleth`.
DEFAULT_RAMP = ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c",
                "#fc4e2a", "#e31a1c", "#bd0026", "#800026")


class _ScriptLayer(GeoCrmLayer):
    """``var <name> = GeoCRM.<factory>(<data>, <config>);``"""

    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = GeoCRM.{{ this.factory }}(
                {{ this.data_json }}, {{ this.config_json }});
        {% endmacro %}
    """)

    def __init__(self, factory: str, data: Any, config: Mapping[str, Any], *, name: str,
                 show: bool = True, control: bool = True, js: Sequence[str] = (),
                 css: Sequence[str] = ()):
        super().__init__(name, show=show, control=control)
        self._name = "GeoCrm" + factory[0].upper() + factory[1:]
        self.factory = factory
        self.data = data
        self.config = dict(config)
        self.default_js = [(n, vendor_link(n)) for n in js]
        self.default_css = [(n, vendor_link(n)) for n in css]

    @property
    def data_json(self) -> str:
        return js_json(self.data)

    @property
    def config_json(self) -> str:
        return js_json(self.config)


# --------------------------------------------------------------------------- polygons

def regions_layer(
    features: Any,
    *,
    name: str = "Regions",
    title_property: str = "name",
    color_property: str = "color",
    default_color: str = "#3388ff",
    fields: Optional[Iterable] = None,
    record_url: Optional[str] = None,
    id_property: str = "id",
    link_text: str = "Open",
    fill_opacity: float = 0.2,
    weight: float = 2,
    show: bool = True,
    tooltip: bool = True,
    popup: bool = True,
) -> folium.map.Layer:
    """Regions, territories or service areas as a GeoJSON polygon layer.

    ``features``: FeatureCollection (EPSG:4326) of (Multi)Polygons. Each feature
    is stroked/filled with its ``color_property`` (a CSS colour; anything else
    falls back to ``default_color``). Tooltip = ``title_property`` as text;
    popup = title, the ``fields`` (``[(property, label), ...]``) and, when
    ``record_url`` (e.g. ``"/territories/{id}"``) is given, a link.
    """
    cfg = {
        "titleProperty": title_property, "colorProperty": color_property,
        "defaultColor": safe_color(default_color, "#3388ff"), "fields": fields_list(fields),
        "urlPattern": check_url_pattern(record_url), "idProperty": id_property,
        "linkText": link_text, "fillOpacity": float(fill_opacity), "weight": float(weight),
        "opacity": 0.9, "tooltip": bool(tooltip), "popup": bool(popup), "stickyTooltip": True,
    }
    return _ScriptLayer("polygons", as_feature_collection(features), cfg, name=name, show=show)


def outline_layer(features: Any, *, name: str = "Outline", color: str = "#888888",
                  show: bool = True, control: bool = False) -> folium.map.Layer:
    """Thin, non-interactive outline (e.g. country/region borders shipped with the
    app) so a map without a tile server still gives orientation."""
    cfg = {"defaultColor": safe_color(color, "#888888"), "colorProperty": None,
           "fillOpacity": 0.0, "weight": 1.0, "opacity": 0.8, "interactive": False}
    return _ScriptLayer("polygons", as_feature_collection(features), cfg, name=name,
                        show=show, control=control)


# --------------------------------------------------------------------------- points

def point_markers_layer(
    items: Any,
    *,
    name: str,
    kind: str = "point",
    record_url: Optional[str] = None,
    title_property: str = "name",
    id_property: str = "id",
    fields: Optional[Iterable] = None,
    color: str = "#2a6fdb",
    link_text: str = "Open",
    show: bool = True,
) -> folium.map.Layer:
    """One marker per point (a CSS dot icon, no image). ``items``: FeatureCollection of
    Points or mappings with ``lat``/``lon`` (EPSG:4326) and other properties."""
    if not kind.replace("-", "").isalnum():
        raise ValueError("kind must be alphanumeric")
    cfg = {"kind": kind, "titleProperty": title_property, "idProperty": id_property,
           "fields": fields_list(fields), "urlPattern": check_url_pattern(record_url),
           "color": safe_color(color, "#2a6fdb"), "linkText": link_text}
    return _ScriptLayer("points", points_to_features(items), cfg, name=name, show=show)


def branches_layer(items: Any, *, record_url: str = "/branches/{id}", name: str = "Branches",
                   fields: Optional[Iterable] = (("address", "Address"), ("phone", "Phone")),
                   **kwargs) -> folium.map.Layer:
    """Branch markers (blue dots) with a popup linking to ``record_url``."""
    kwargs.setdefault("color", "#2a6fdb")
    return point_markers_layer(items, name=name, kind="branch", record_url=record_url,
                               fields=fields, **kwargs)


def partners_layer(items: Any, *, record_url: str = "/partners/{id}", name: str = "Partners",
                   fields: Optional[Iterable] = (("type", "Type"), ("address", "Address")),
                   **kwargs) -> folium.map.Layer:
    """Partner markers (purple squares) with a popup linking to ``record_url``."""
    kwargs.setdefault("color", "#7b3294")
    return point_markers_layer(items, name=name, kind="partner", record_url=record_url,
                               fields=fields, **kwargs)


def customer_cluster_layer(
    features: Any,
    *,
    name: str = "Customers",
    record_url: str = "/customers/{id}",
    title_property: str = "name",
    id_property: str = "id",
    level_property: str = "level",
    level_colors: Optional[Mapping[str, str]] = None,
    fields: Optional[Iterable] = (("level", "Level"), ("city", "City")),
    link_text: str = "Open customer",
    cluster_options: Optional[Mapping[str, Any]] = None,
    show: bool = True,
) -> folium.map.Layer:
    """Customers from a FeatureCollection of Points, clustered client-side with
    leaflet.markercluster; circles coloured by ``level``; popups link to
    ``/customers/<id>``. Suited to a few thousand points; use
    :func:`customer_tiles_layer` beyond that."""
    cfg = {"titleProperty": title_property, "idProperty": id_property,
           "levelProperty": level_property,
           "levelColors": {str(k): safe_color(v, "#666666")
                           for k, v in (level_colors or DEFAULT_LEVEL_COLORS).items()},
           "defaultColor": "#666666", "fields": fields_list(fields),
           "urlPattern": check_url_pattern(record_url), "linkText": link_text,
           "clusterOptions": dict(cluster_options or {"showCoverageOnHover": False,
                                                      "chunkedLoading": True})}
    return _ScriptLayer("clusteredPoints", as_feature_collection(features), cfg, name=name,
                        show=show, js=("markercluster_js",),
                        css=("markercluster_css", "markercluster_default_css"))


def heat_layer(points: Any, *, name: str = "Customer density", weight_property: Optional[str] = None,
               radius: int = 25, blur: int = 15, min_opacity: float = 0.3,
               max_zoom: int = 18, show: bool = True) -> folium.map.Layer:
    """Heat map (leaflet.heat). ``points``: ``[(lat, lon), ...]``, ``[(lat, lon, w), ...]``
    or a FeatureCollection of Points (optional numeric ``weight_property``)."""
    if hasattr(points, "__geo_interface__") or isinstance(points, Mapping):
        data = []
        for f in as_feature_collection(points)["features"]:
            lon, lat = f["geometry"]["coordinates"][:2]
            row = [float(lat), float(lon)]
            if weight_property:
                w = (f.get("properties") or {}).get(weight_property)
                row.append(float(w) if w is not None else 1.0)
            data.append(row)
    else:
        data = [[float(v) for v in p] for p in points]
        if any(len(r) == 3 for r in data):  # mixed weighted/unweighted: weight 1
            data = [r if len(r) == 3 else [*r[:2], 1.0] for r in data]
    if not data:
        raise ValueError("heat_layer needs at least one point")
    layer = HeatMap(data, name=layer_name_escaped(name), radius=radius, blur=blur,
                    min_opacity=min_opacity, max_zoom=max_zoom, show=show)
    return layer


def layer_name_escaped(name: str) -> str:
    return str(escape(name))


# --------------------------------------------------------------------------- vector tiles

def customer_tiles_layer(
    url_template: str = "/api/v1/tiles/customers/{z}/{x}/{y}.mvt",
    *,
    filters: Optional[Mapping[str, Any]] = None,
    name: str = "Customers (tiles)",
    layer_name: str = "customers",
    record_url: str = "/customers/{id}",
    title_property: str = "name",
    id_property: str = "id",
    level_property: str = "level",
    count_property: str = "count",
    level_colors: Optional[Mapping[str, str]] = None,
    cluster_color: str = "#3182bd",
    fields: Optional[Iterable] = (("level", "Level"), ("city", "City")),
    link_text: str = "Open customer",
    aggregate_label: str = "customers",
    zoom_hint: str = "Zoom in to see them individually.",
    renderer: str = "svg",
    min_zoom: int = 0,
    max_zoom: int = 19,
    max_native_zoom: int = 18,
    show: bool = True,
) -> folium.map.Layer:
    """Customers from Mapbox Vector Tiles (leaflet.vectorgrid protobuf).

    ``url_template`` has Leaflet's ``{z}/{x}/{y}``; ``filters`` are appended as an
    URL-encoded query string (``{``/``}`` in values are encoded, so they cannot
    clash with the template). Features of the MVT layer ``layer_name`` are
    points: single customers are coloured by ``level``; aggregates (low zoom)
    have ``count`` > 1 and are drawn as circles sized by log2(count). Popups are
    built client-side with textContent.
    """
    url = check_url_pattern(url_template, "url_template")
    for part in ("{z}", "{x}", "{y}"):
        if part not in url:
            raise ValueError(f"url_template lacks {part}")
    if filters:
        query = urlencode([(k, v) for k, v in filters.items() if v is not None], doseq=True)
        if query:
            url += ("&" if "?" in url else "?") + query
    if renderer not in ("svg", "canvas"):
        raise ValueError("renderer must be 'svg' or 'canvas'")
    cfg = {"layerName": layer_name, "titleProperty": title_property, "idProperty": id_property,
           "levelProperty": level_property, "countProperty": count_property,
           "levelColors": {str(k): safe_color(v, "#666666")
                           for k, v in (level_colors or DEFAULT_LEVEL_COLORS).items()},
           "defaultColor": "#666666", "clusterColor": safe_color(cluster_color, "#3182bd"),
           "maxClusterRadius": 30, "fields": fields_list(fields),
           "urlPattern": check_url_pattern(record_url), "linkText": link_text,
           "aggregateLabel": aggregate_label, "zoomHint": zoom_hint, "renderer": renderer,
           "minZoom": int(min_zoom), "maxZoom": int(max_zoom),
           "maxNativeZoom": int(max_native_zoom)}
    layer = _ScriptLayer("vectorCustomers", url, cfg, name=name, show=show, js=("vectorgrid_js",))
    layer.url = url
    return layer


# --------------------------------------------------------------------------- routes

def routes_layer(
    routes: Sequence[Mapping[str, Any]],
    *,
    name: str = "Routes",
    record_url: Optional[str] = "/customers/{id}",
    palette: Sequence[str] = ROUTE_PALETTE,
    weight: float = 4,
    route_label: str = "Route",
    eta_label: str = "ETA",
    note_label: str = "Note",
    link_text: str = "Open customer",
    show: bool = True,
) -> folium.map.Layer:
    """Planned routes: a polyline per route, coloured per vehicle, plus numbered stops.

    Each route: ``{"vehicle": "Van 1", "color": optional "#rrggbb",
    "path": [[lat, lon], ...] (or "geometry": GeoJSON LineString lon/lat),
    "stops": [{"seq": 1, "name": ..., "lat": ..., "lon": ..., "id": optional customer id,
    "eta": optional text, "note": optional text}, ...]}``. Vehicles without a colour
    get one from ``palette`` (same vehicle -> same colour). ``seq`` must be an integer;
    stops without one are numbered in order.
    """
    colors: dict[str, str] = {}
    cycle = itertools.cycle(palette)
    data = []
    for r in routes:
        vehicle = str(r.get("vehicle", r.get("vehicle_id", "")))
        color = r.get("color")
        if color is None:
            if vehicle not in colors:
                colors[vehicle] = next(cycle)
            color = colors[vehicle]
        if "path" in r and r["path"] is not None:
            path = [[float(p[0]), float(p[1])] for p in r["path"]]
        elif r.get("geometry"):
            path = [[float(c[1]), float(c[0])] for c in r["geometry"]["coordinates"]]
        else:
            path = []
        stops = []
        for i, s in enumerate(r.get("stops") or [], start=1):
            stops.append({"seq": int(s.get("seq", i)), "name": s.get("name"),
                          "lat": float(s["lat"]), "lon": float(s["lon"]), "id": s.get("id"),
                          "eta": s.get("eta"), "note": s.get("note")})
        data.append({"label": str(r.get("label", vehicle)), "color": safe_color(color, "#2a6fdb"),
                     "path": path, "stops": stops})
    cfg = {"weight": float(weight), "urlPattern": check_url_pattern(record_url),
           "routeLabel": route_label, "etaLabel": eta_label, "noteLabel": note_label,
           "linkText": link_text}
    return _ScriptLayer("routes", data, cfg, name=name, show=show)


# --------------------------------------------------------------------------- choropleth

def _hex_to_rgb(h: str) -> tuple[int, int, int]:
    h = hex_color(h).lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def color_ramp(colors: Sequence[str], k: int) -> list[str]:
    """``k`` colours sampled (linearly interpolated in RGB) along ``colors``."""
    rgb = np.array([_hex_to_rgb(c) for c in colors], dtype=float)
    if k == 1:
        return [hex_color(colors[-1])]
    pos = np.linspace(0, len(colors) - 1, k)
    out = []
    for p in pos:
        i = min(int(np.floor(p)), len(colors) - 2)
        t = p - i
        c = rgb[i] * (1 - t) + rgb[i + 1] * t
        out.append("#" + "".join(f"{int(round(v)):02x}" for v in c))
    return out


class Legend(MacroElement):
    """Choropleth legend: escaped HTML rendered into the page body (``self.html``)
    and moved into a Leaflet control by JS; swatch colours come from a ``<style>``
    block (no inline style attributes, CSP-friendly)."""

    _template = Template("""
        {% macro header(this, kwargs) %}
            <style>{{ this.css }}</style>
        {% endmacro %}
        {% macro html(this, kwargs) %}
            {{ this.html }}
        {% endmacro %}
        {% macro script(this, kwargs) %}
            GeoCRM.legend({{ this._parent.get_name() }}, {{ this.dom_id_json }}, {{ this.position_json }});
        {% endmacro %}
    """)

    def __init__(self, html: Markup, css: str, dom_id: str, position: str = "bottomright"):
        super().__init__()
        self._name = "GeoCrmLegend"
        self.html = html
        self.css = css
        self.dom_id = dom_id
        self.position = position

    @property
    def dom_id_json(self) -> str:
        return js_json(self.dom_id)

    @property
    def position_json(self) -> str:
        return js_json(self.position)


class _LegendAssets(GeoCrmAssets, Legend):
    pass


@dataclass
class ChoroplethResult:
    """What :func:`choropleth` returns.

    ``breaks`` are the class upper bounds (mapclassify ``bins``), ``lower`` the
    lower bound of each class (the minimum, then the previous upper bound),
    ``counts`` the number of features per class, ``colors`` one per class,
    ``no_data`` the number of features without a finite value.
    """

    layer: folium.map.Layer
    legend: Legend
    breaks: list[float]
    lower: list[float]
    counts: list[int]
    colors: list[str]
    scheme: str
    k: int
    no_data: int
    classifier: Any = field(repr=False)

    def add_to(self, m: folium.Map) -> "ChoroplethResult":
        self.layer.add_to(m)
        self.legend.add_to(m)
        return self


def _fmt(v: float) -> str:
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:,.2f}"


def choropleth(
    feature_collection: Any,
    value_property: str,
    *,
    scheme: str = "quantiles",
    k: int = 5,
    colors: Optional[Sequence[str]] = None,
    name: Optional[str] = None,
    title: Optional[str] = None,
    title_property: str = "name",
    fields: Optional[Iterable] = None,
    record_url: Optional[str] = None,
    id_property: str = "id",
    no_data_color: str = "#cccccc",
    fill_opacity: float = 0.7,
    legend_position: str = "bottomright",
    show: bool = True,
) -> ChoroplethResult:
    """Classify ``value_property`` with mapclassify and colour polygons by class.

    ``scheme``: ``"quantiles"`` (mapclassify.Quantiles), ``"jenks"``
    (mapclassify.FisherJenks) or ``"equal_interval"`` (mapclassify.EqualInterval).
    ``colors``: hex colours, resampled to the number of classes (default YlOrRd).
    Features whose value is missing/non-numeric/non-finite are grey "no data".
    Returns a :class:`ChoroplethResult` (``.add_to(m)`` adds layer and legend).
    """
    import mapclassify

    classifiers = {"quantiles": mapclassify.Quantiles, "jenks": mapclassify.FisherJenks,
                   "equal_interval": mapclassify.EqualInterval}
    if scheme not in classifiers:
        raise ValueError(f"scheme must be one of {sorted(classifiers)}")
    fc = as_feature_collection(feature_collection)
    values: list[Optional[float]] = []
    for f in fc["features"]:
        v = (f.get("properties") or {}).get(value_property)
        try:
            v = float(v)
        except (TypeError, ValueError):
            v = None
        values.append(v if v is not None and np.isfinite(v) else None)
    y = np.array([v for v in values if v is not None], dtype=float)
    if y.size == 0:
        raise ValueError(f"no numeric values in property {value_property!r}")
    classifier = classifiers[scheme](y, k=k)
    breaks = [float(b) for b in classifier.bins]
    counts = [int(c) for c in classifier.counts]
    n_classes = len(breaks)
    lower = [float(y.min())] + breaks[:-1]
    palette = color_ramp(list(colors or DEFAULT_RAMP), n_classes)
    no_data_color = hex_color(no_data_color)

    yb = iter(int(c) for c in classifier.yb)
    features = []
    for f, v in zip(fc["features"], values):
        props = dict(f.get("properties") or {})
        cls = next(yb) if v is not None else None
        props["__class"] = cls
        props["__fill"] = palette[cls] if cls is not None else no_data_color
        features.append({"type": "Feature", "geometry": f.get("geometry"), "properties": props})
    no_data = sum(1 for v in values if v is None)

    label = name or value_property
    flds = fields_list(fields) or [[value_property, title or value_property]]
    cfg = {"titleProperty": title_property, "colorProperty": "__fill", "strokeColor": "#555555",
           "defaultColor": no_data_color, "fields": flds,
           "urlPattern": check_url_pattern(record_url), "idProperty": id_property,
           "fillOpacity": float(fill_opacity), "weight": 1.0, "opacity": 0.8,
           "stickyTooltip": True}
    layer = _ScriptLayer("polygons", {"type": "FeatureCollection", "features": features}, cfg,
                         name=label, show=show)

    dom_id = "legend_" + layer.get_name()
    rows = []
    css = []
    for i, (lo, hi, n, c) in enumerate(zip(lower, breaks, counts, palette)):
        css.append(f"#{dom_id} .geocrm-legend-c{i} {{ background: {c}; }}")
        rows.append(Markup(
            '<li class="geocrm-legend-class" data-class="{i}" data-lower="{lo!r}" '
            'data-upper="{hi!r}" data-count="{n}"><span class="geocrm-legend-swatch '
            'geocrm-legend-c{i}"></span>{tlo} – {thi} <span class="geocrm-legend-count">'
            '({n})</span></li>').format(i=i, lo=lo, hi=hi, n=n, tlo=_fmt(lo), thi=_fmt(hi)))
    if no_data:
        css.append(f"#{dom_id} .geocrm-legend-nodata {{ background: {no_data_color}; }}")
        rows.append(Markup(
            '<li class="geocrm-legend-class" data-class="none" data-count="{n}">'
            '<span class="geocrm-legend-swatch geocrm-legend-nodata"></span>No data '
            '<span class="geocrm-legend-count">({n})</span></li>').format(n=no_data))
    html = Markup(
        '<div class="geocrm-legend" id="{id}" data-scheme="{scheme}" hidden>'
        '<div class="geocrm-legend-title">{title}</div><ul>{rows}</ul></div>'
    ).format(id=dom_id, scheme=scheme, title=title or value_property, rows=Markup("").join(rows))
    legend = _LegendAssets(html, "\n".join(css), dom_id, legend_position)
    return ChoroplethResult(layer=layer, legend=legend, breaks=breaks, lower=lower, counts=counts,
                            colors=palette, scheme=scheme, k=n_classes, no_data=no_data,
                            classifier=classifier)


# --------------------------------------------------------------------------- drawing

class DrawControl(GeoCrmAssets, MacroElement):
    """leaflet-geoman toolbar; see :func:`draw_control`."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = GeoCRM.drawControl({{ this._parent.get_name() }}, {{ this.config_json }});
        {% endmacro %}
    """)

    def __init__(self, config: Mapping[str, Any]):
        super().__init__()
        self._name = "GeoCrmDrawControl"
        self.config = dict(config)
        self.default_js = [("geoman_js", vendor_link("geoman_js"))]
        self.default_css = [("geoman_css", vendor_link("geoman_css"))]

    @property
    def config_json(self) -> str:
        return js_json(self.config)


def draw_control(
    *,
    shapes: Sequence[str] = ("polygon", "rectangle", "circle"),
    edit: bool = True,
    drag: bool = True,
    cut: bool = True,
    remove: bool = True,
    position: str = "topleft",
    event_name: str = "geocrm:draw",
    single: bool = True,
    lang: Optional[str] = None,
) -> DrawControl:
    """Drawing toolbar (leaflet-geoman-free) for area queries.

    The map package never calls the API: on create/edit/cut/remove, a bubbling
    ``CustomEvent(event_name)`` is dispatched on the map container with
    ``detail = {action, shape, geojson, radius_m (circles), center [lat, lon]
    (circles), map_id}``; ``geojson`` is a GeoJSON Feature in EPSG:4326 (a circle
    is its centre Point plus ``radius_m`` in metres). With ``single`` a new shape
    replaces the previous one. Add with ``draw_control().add_to(m)`` and listen with
    ``document.addEventListener("geocrm:draw", e => ...)``.
    """
    allowed = {"polygon": "drawPolygon", "rectangle": "drawRectangle", "circle": "drawCircle",
               "polyline": "drawPolyline", "marker": "drawMarker"}
    unknown = set(shapes) - set(allowed)
    if unknown:
        raise ValueError(f"unknown shapes {sorted(unknown)}; use {sorted(allowed)}")
    controls = {v: (k in shapes) for k, v in allowed.items()}
    controls.update({"position": position, "drawCircleMarker": False, "drawText": False,
                     "editMode": edit, "dragMode": drag, "cutPolygon": cut,
                     "removalMode": remove, "rotateMode": False})
    return DrawControl({"controls": controls, "eventName": event_name, "single": single,
                        "lang": lang})
