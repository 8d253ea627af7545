"""Export a filtered, visible set of customers as CSV, XLSX, GeoJSON, GeoPackage or KML.

The set is `geo_crm.customers.filters.apply(stmt, filter, scope)`, exactly what the
list API shows, and only the columns `scope.customer_fields` allows. Coordinates are
EPSG:4326 (lon, lat). Text cells that a spreadsheet would run as a formula (starting
with = + - @, tab or CR) are prefixed with an apostrophe in CSV and XLSX.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from xml.sax.saxutils import escape

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geo_crm.customers.filters import CustomerFilter, apply
from geo_crm.models import Customer

FORMATS = {"csv": ("text/csv; charset=utf-8", "csv"),
           "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
           "geojson": ("application/geo+json", "geojson"),
           "gpkg": ("application/geopackage+sqlite3", "gpkg"),
           "kml": ("application/vnd.google-earth.kml+xml", "kml")}
COLUMNS = ["id", "code", "name", "kind", "industry", "level", "status", "credit_rating", "employees",
           "annual_revenue_eur", "address", "postcode", "city", "country", "phone", "email", "website",
           "owner_id", "region_id", "service_branch_id", "geocode_quality", "delivery_start", "delivery_end",
           "service_min", "updated_at"]
MAX_EXPORT_ROWS = 1_000_000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def neutralise(v):
    """Prefix text that a spreadsheet would evaluate as a formula with an apostrophe."""
    if isinstance(v, str) and v.startswith(FORMULA_START):
        return "'" + v
    return v


def visible_columns(scope) -> list[str]:
    allowed = scope.customer_fields
    return [c for c in COLUMNS if allowed is None or c in allowed]


def customer_rows(session: Session, scope, f: CustomerFilter | None, limit: int = MAX_EXPORT_ROWS):
    """(columns, rows as dicts incl. lon/lat) for the visible, filtered customers."""
    cols = visible_columns(scope)
    show_geom = scope.customer_fields is None or "geom" in scope.customer_fields
    sel = [getattr(Customer, c).label(c) for c in cols]
    if show_geom:
        sel += [func.ST_X(Customer.geom).label("lon"), func.ST_Y(Customer.geom).label("lat")]
    stmt = apply(select(*sel), f, scope).order_by(Customer.code).limit(limit)
    rows = [dict(r._mapping) for r in session.execute(stmt)]
    return cols + (["lon", "lat"] if show_geom else []), rows


def _plain(v):
    if v is None:
        return None
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if hasattr(v, "as_tuple"):  # Decimal
        return float(v)
    return v


def to_csv(cols, rows) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r[c] is None else neutralise(_plain(r[c])) for c in cols])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")   # BOM: Excel opens UTF-8 correctly


def to_xlsx(cols, rows) -> bytes:
    import openpyxl
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("customers")
    ws.append(cols)
    for r in rows:
        vals = []
        for c in cols:
            v = _plain(r[c])
            if isinstance(v, str):
                v = neutralise(v)
            vals.append(v)
        ws.append(vals)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _props(cols, r):
    return {c: _plain(r[c]) for c in cols if c not in ("lon", "lat")}


def to_geojson(cols, rows) -> bytes:
    feats = [{"type": "Feature", "id": r.get("id"),
              "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]} if r.get("lon") is not None else None,
              "properties": _props(cols, r)} for r in rows]
    return json.dumps({"type": "FeatureCollection", "features": feats}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def to_gpkg(cols, rows) -> bytes:
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import Point
    props = [_props(cols, r) for r in rows]
    df = pd.DataFrame(props, columns=[c for c in cols if c not in ("lon", "lat")])
    geoms = [Point(r["lon"], r["lat"]) if r.get("lon") is not None else None for r in rows]
    gdf = gpd.GeoDataFrame(df, geometry=geoms, crs="EPSG:4326")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "customers.gpkg")
        gdf.to_file(path, layer="customers", driver="GPKG", engine="pyogrio")
        with open(path, "rb") as fh:
            return fh.read()


def to_kml(cols, rows) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<kml xmlns="http://www.opengis.net/kml/2.2"><Document>',
           "<name>customers</name>"]
    for r in rows:
        if r.get("lon") is None:
            continue
        data = "".join(f'<Data name="{escape(c)}"><value>{escape(str(_plain(r[c])))}</value></Data>'
                       for c in cols if c not in ("lon", "lat") and r[c] is not None)
        out.append(f"<Placemark><name>{escape(str(r.get('name', r.get('code', ''))))}</name>"
                   f"<ExtendedData>{data}</ExtendedData>"
                   f"<Point><coordinates>{r['lon']:.7f},{r['lat']:.7f}</coordinates></Point></Placemark>")
    out.append("</Document></kml>")
    return "\n".join(out).encode("utf-8")


WRITERS = {"csv": to_csv, "xlsx": to_xlsx, "geojson": to_geojson, "gpkg": to_gpkg, "kml": to_kml}


def export_customers(session: Session, scope, f: CustomerFilter | None, fmt: str) -> bytes:
    if fmt not in WRITERS:
        raise ValueError(f"format must be one of {', '.join(WRITERS)}")
    cols, rows = customer_rows(session, scope, f)
    return WRITERS[fmt](cols, rows)
