"""Exports of a delivery plan (the dict of :func:`geo_crm.routing.persist.plan_detail`).

* GPX 1.1 — numbered waypoints (``wpt``, stop order, ETA as ``time``), one ``rte`` per
  vehicle (depot → stops → depot) and one ``trk`` per vehicle following the roads;
  valid against the GPX 1.1 schema (opens in OsmAnd, Garmin BaseCamp, GPXSee, JOSM…).
* KML 2.2 — a Folder per vehicle with the route line (coloured) and numbered stops.
* GeoJSON — route LineStrings and stop Points (RFC 7946, lon/lat).
* CSV manifest — one row per stop; cells that a spreadsheet would run as a formula
  (leading ``= + - @``, tab or CR) are prefixed with ``'``.
* HTML — a printable driver sheet: the map (``maps.render_page`` with the routes layer)
  and the stop list per vehicle.

`route_no` selects a single vehicle's route. Coordinates EPSG:4326; distances metres.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from typing import Any, Iterable
from xml.sax.saxutils import escape as xml_escape

from markupsafe import escape

FORMATS = {
    "gpx": ("application/gpx+xml", "gpx"),
    "kml": ("application/vnd.google-earth.kml+xml", "kml"),
    "geojson": ("application/geo+json", "geojson"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "html": ("text/html; charset=utf-8", "html"),
}
GPX_NS = "http://www.topografix.com/GPX/1/1"
KML_NS = "http://www.opengis.net/kml/2.2"


def _routes(detail: dict, route_no: int | None) -> list[dict]:
    rs = detail["routes"]
    if route_no is not None:
        rs = [r for r in rs if r["route_no"] == route_no]
    return rs


def _line(r: dict) -> list[list[float]]:
    g = r.get("geometry")
    return g["coordinates"] if g and g.get("type") == "LineString" else []


def _depot(r: dict) -> tuple[float, float] | None:
    c = _line(r)
    return (c[0][0], c[0][1]) if c else None


def _utc(iso: str | None) -> str | None:
    """xsd:dateTime in UTC (GPX convention)."""
    if not iso:
        return None
    return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _local_hm(iso: str | None) -> str:
    """HH:MM of an ISO time that already carries the plan's local offset."""
    return datetime.fromisoformat(iso).strftime("%H:%M") if iso else ""


def _x(v: Any) -> str:
    return xml_escape("" if v is None else str(v))


def file_name(detail: dict, fmt: str, route_no: int | None = None) -> str:
    suffix = f"-route{route_no}" if route_no is not None else ""
    return f"plan-{detail['id']}-{detail['plan_date']}{suffix}.{FORMATS[fmt][1]}"


# ----------------------------------------------------------------------------- GPX

def to_gpx(detail: dict, route_no: int | None = None) -> bytes:
    routes = _routes(detail, route_no)
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<gpx version="1.1" creator="geo-crm" xmlns="{GPX_NS}" '
           'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           f'xsi:schemaLocation="{GPX_NS} http://www.topografix.com/GPX/1/1/gpx.xsd">',
           f"<metadata><name>{_x(detail['name'])}</name>"
           "<desc>" + _x(f"Delivery plan {detail['id']} for {detail['plan_date']}") + "</desc>"
           "<copyright author=\"OpenStreetMap contributors\"><license>https://opendatacommons.org/licenses/odbl/"
           "</license></copyright></metadata>"]
    for r in routes:
        for s in r["stops"]:
            t = _utc(s["eta"])
            out.append(f'<wpt lat="{s["lat"]:.7f}" lon="{s["lon"]:.7f}">' + (f"<time>{t}</time>" if t else "") +
                       f"<name>{_x(_stop_label(r, s, len(routes) > 1))}</name>"
                       f"<cmt>{_x(_cmt(s))}</cmt><desc>{_x(s['address'])}</desc>"
                       f"<sym>Flag, Blue</sym><type>delivery</type></wpt>")
    for r in routes:
        out.append(f"<rte><name>{_x(r['vehicle'])}</name><number>{r['route_no']}</number>")
        d = _depot(r)
        if d:
            out.append(f'<rtept lat="{d[1]:.7f}" lon="{d[0]:.7f}"><name>Depot</name></rtept>')
        for s in r["stops"]:
            t = _utc(s["eta"])
            out.append(f'<rtept lat="{s["lat"]:.7f}" lon="{s["lon"]:.7f}">' + (f"<time>{t}</time>" if t else "") +
                       f"<name>{_x(_stop_label(r, s, len(routes) > 1))}</name></rtept>")
        if d:
            out.append(f'<rtept lat="{d[1]:.7f}" lon="{d[0]:.7f}"><name>Depot</name></rtept>')
        out.append("</rte>")
    for r in routes:
        coords = _line(r)
        out.append(f"<trk><name>{_x(r['vehicle'])}</name><number>{r['route_no']}</number><trkseg>")
        out.extend(f'<trkpt lat="{c[1]:.7f}" lon="{c[0]:.7f}"/>' for c in coords)
        out.append("</trkseg></trk>")
    out.append("</gpx>")
    return "\n".join(out).encode("utf-8")


def _stop_label(r: dict, s: dict, prefix_route: bool) -> str:
    n = f"{r['route_no']}.{s['seq']}" if prefix_route else f"{s['seq']}"
    return f"{n} {s['name']}"


def _cmt(s: dict) -> str:
    parts = [f"ETA {_local_hm(s['eta'])}" if s["eta"] else "", f"demand {s['demand']}",
             s["phone"] or "", s["notes"] or ""]
    return " · ".join(p for p in parts if p)


# ----------------------------------------------------------------------------- KML

def _kml_color(hex_rgb: str) -> str:
    h = hex_rgb.lstrip("#")
    if len(h) != 6:
        h = "2a6fdb"
    return f"ff{h[4:6]}{h[2:4]}{h[0:2]}"


def to_kml(detail: dict, route_no: int | None = None) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8"?>', f'<kml xmlns="{KML_NS}"><Document>',
           f"<name>{_x(detail['name'])}</name>"]
    routes = _routes(detail, route_no)
    for r in routes:
        out.append(f'<Style id="route{r["route_no"]}"><LineStyle><color>{_kml_color(r["color"])}</color>'
                   f'<width>4</width></LineStyle><IconStyle><color>{_kml_color(r["color"])}</color></IconStyle>'
                   "</Style>")
    for r in routes:
        out.append(f"<Folder><name>{_x(r['vehicle'])}</name>")
        coords = _line(r)
        if coords:
            out.append(f"<Placemark><name>{_x(r['vehicle'])}</name><styleUrl>#route{r['route_no']}</styleUrl>"
                       "<LineString><tessellate>1</tessellate><coordinates>" +
                       " ".join(f"{c[0]:.7f},{c[1]:.7f}" for c in coords) +
                       "</coordinates></LineString></Placemark>")
        for s in r["stops"]:
            out.append(f"<Placemark><name>{_x(_stop_label(r, s, len(routes) > 1))}</name>"
                       f"<description>{_x(s['address'] + ' · ' + _cmt(s))}</description>"
                       f"<styleUrl>#route{r['route_no']}</styleUrl>"
                       f"<ExtendedData><Data name=\"seq\"><value>{s['seq']}</value></Data>"
                       f"<Data name=\"eta\"><value>{_x(s['eta'])}</value></Data></ExtendedData>"
                       f"<Point><coordinates>{s['lon']:.7f},{s['lat']:.7f}</coordinates></Point></Placemark>")
        out.append("</Folder>")
    out.append("</Document></kml>")
    return "\n".join(out).encode("utf-8")


# ----------------------------------------------------------------------------- GeoJSON

def to_geojson(detail: dict, route_no: int | None = None) -> dict:
    feats = []
    for r in _routes(detail, route_no):
        if r.get("geometry"):
            feats.append({"type": "Feature", "geometry": r["geometry"],
                          "properties": {"kind": "route", "route_no": r["route_no"], "vehicle": r["vehicle"],
                                         "color": r["color"], "distance_m": r["distance_m"],
                                         "duration_s": r["duration_s"], "load": r["load"],
                                         "start_at": r["start_at"], "end_at": r["end_at"],
                                         "violations": r["violations"]}})
        for s in r["stops"]:
            feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
                          "properties": {"kind": "stop", "route_no": r["route_no"], "seq": s["seq"],
                                         "customer_id": s["customer_id"], "name": s["name"],
                                         "address": s["address"], "eta": s["eta"], "demand": s["demand"],
                                         "violation": s["violation"]}})
    return {"type": "FeatureCollection", "name": detail["name"], "features": feats}


# ----------------------------------------------------------------------------- CSV

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """Make a cell safe to open in a spreadsheet (no formula execution)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


CSV_COLUMNS = ["route", "vehicle", "stop", "customer_code", "customer", "address", "phone", "eta",
               "window_start", "window_end", "demand", "service_min", "notes", "violation", "lon", "lat"]


def to_csv(detail: dict, route_no: int | None = None) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    for r in _routes(detail, route_no):
        for s in r["stops"]:
            w.writerow([neutralise(v) for v in (
                r["route_no"], r["vehicle"], s["seq"], s["customer_code"], s["name"], s["address"], s["phone"],
                _local_hm(s["eta"]), _local_hm(s["tw_start"]), _local_hm(s["tw_end"]), s["demand"],
                s["service_min"], s["notes"], s["violation"] or "", f"{s['lon']:.7f}", f"{s['lat']:.7f}")])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")   # BOM: Excel reads UTF-8 correctly


# ----------------------------------------------------------------------------- HTML

def map_routes(detail: dict, route_no: int | None = None) -> list[dict]:
    """Routes in the shape `maps.layers.routes_layer` expects."""
    out = []
    for r in _routes(detail, route_no):
        out.append({"vehicle": r["vehicle"], "label": f"{r['route_no']}. {r['vehicle']}", "color": r["color"],
                    "geometry": r.get("geometry") if r.get("geometry") else None,
                    "path": None if r.get("geometry") else [],
                    "stops": [{"seq": s["seq"], "name": s["name"], "lat": s["lat"], "lon": s["lon"],
                               "id": s["customer_id"], "eta": _local_hm(s["eta"]),
                               "note": s["violation"] or s["notes"] or None} for s in r["stops"]]})
    return out


def bounds(routes: Iterable[dict]) -> list[list[float]] | None:
    xs, ys = [], []
    for r in routes:
        for c in _line(r):
            xs.append(c[0]); ys.append(c[1])
        for s in r["stops"]:
            xs.append(s["lon"]); ys.append(s["lat"])
    if not xs:
        return None
    return [[min(ys), min(xs)], [max(ys), max(xs)]]


def build_map(detail: dict, route_no: int | None = None, *, tile_url=None, tile_attribution=None,
              center=(60.17, 24.94), record_url: str | None = "/customers/{id}"):
    from maps import base_map, routes_layer
    m = base_map(center, 13, tile_url=tile_url, tile_attribution=tile_attribution)
    routes_layer(map_routes(detail, route_no), record_url=record_url).add_to(m)
    b = bounds(_routes(detail, route_no))
    if b:
        m.fit_bounds(b, padding=(20, 20))
    return m


_SHEET_CSS = """
<style>
body{font:13px/1.35 system-ui,sans-serif;margin:0}
.sheet{padding:12px 18px}
.folium-map{height:420px!important;position:relative!important;width:100%!important}
table{border-collapse:collapse;width:100%;margin:8px 0 18px}
th,td{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eee}
h1{font-size:18px;margin:6px 0}h2{font-size:15px;margin:12px 0 4px}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:middle}
.viol{color:#b00020}
@media print{.folium-map{height:360px!important}h2{break-before:auto}section{break-inside:avoid-page}}
</style>
"""


def to_html(detail: dict, route_no: int | None = None, *, nonce: str | None = None, tile_url=None,
            tile_attribution=None, center=(60.17, 24.94)) -> str:
    from maps import render_page
    m = build_map(detail, route_no, tile_url=tile_url, tile_attribution=tile_attribution, center=center,
                  record_url=None)
    body = ['<div class="sheet">', f"<h1>{escape(detail['name'])} · {escape(detail['plan_date'])}</h1>"]
    for r in _routes(detail, route_no):
        body.append("<section>")
        body.append(f'<h2><span class="sw" style="background:{escape(r["color"])}"></span>'
                    f"{r['route_no']}. {escape(r['vehicle'])} — {len(r['stops'])} stops, "
                    f"{r['distance_m'] / 1000:.1f} km, {_local_hm(r['start_at'])}–{_local_hm(r['end_at'])}, "
                    f"load {r['load']}</h2>")
        for v in r["violations"]:
            body.append(f'<p class="viol">{escape(v)}</p>')
        body.append("<table><thead><tr><th>#</th><th>ETA</th><th>Customer</th><th>Address</th><th>Phone</th>"
                    "<th>Window</th><th>Demand</th><th>Notes</th><th>Signature</th></tr></thead><tbody>")
        for s in r["stops"]:
            window = f"{_local_hm(s['tw_start'])}–{_local_hm(s['tw_end'])}" if s["tw_end"] else ""
            note = s["notes"] + (f" ⚠ {s['violation']}" if s["violation"] else "")
            body.append(f"<tr><td>{s['seq']}</td><td>{_local_hm(s['eta'])}</td><td>{escape(s['name'])}</td>"
                        f"<td>{escape(s['address'])}</td><td>{escape(s['phone'])}</td><td>{escape(window)}</td>"
                        f"<td>{s['demand']}</td><td>{escape(note)}</td><td style=\"width:90px\"></td></tr>")
        body.append("</tbody></table></section>")
    body.append("</div>")
    return render_page(m, title=f"{detail['name']} {detail['plan_date']}", nonce=nonce,
                       extra_head=_SHEET_CSS, extra_body="\n".join(body))


def export(detail: dict, fmt: str, route_no: int | None = None, **html_kw) -> tuple[bytes, str, str]:
    """(content, mimetype, file name) of `detail` in `fmt`."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    if fmt == "gpx":
        data = to_gpx(detail, route_no)
    elif fmt == "kml":
        data = to_kml(detail, route_no)
    elif fmt == "geojson":
        data = json.dumps(to_geojson(detail, route_no), ensure_ascii=False).encode("utf-8")
    elif fmt == "csv":
        data = to_csv(detail, route_no)
    else:
        data = to_html(detail, route_no, **html_kw).encode("utf-8")
    return data, FORMATS[fmt][0], file_name(detail, fmt, route_no)
