"""Geometry input and output for records. All geometry is EPSG:4326 (lon, lat degrees).

Input is a GeoJSON geometry object (RFC 7946; a legacy `crs` member is accepted only
when it names EPSG:4326 / OGC CRS84), or a WKT / EWKT string (EWKT only with
SRID=4326). Anything else is rejected with the field name, never silently reprojected.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

import shapely
from geoalchemy2.elements import WKTElement
from shapely.geometry import MultiPolygon, Point, Polygon, mapping, shape
from shapely.validation import explain_validity

from geo_crm.models.base import SRID
from geo_crm.records.common import Invalid

MAX_VERTICES = 100_000
_WGS84_CRS = {"urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84", "urn:ogc:def:crs:EPSG::4326",
              "urn:ogc:def:crs:EPSG:6.6:4326", "EPSG:4326", "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
              "http://www.opengis.net/def/crs/EPSG/0/4326"}
_EWKT = re.compile(r"^\s*SRID\s*=\s*(-?\d+)\s*;\s*(.+)$", re.I | re.S)


def _check_crs(crs: Any, field: str) -> None:
    name = None
    if isinstance(crs, dict):
        props = crs.get("properties") or {}
        name = props.get("name") if isinstance(props, dict) else None
    if not isinstance(name, str) or name.strip() not in _WGS84_CRS:
        raise Invalid(f"{field}.crs", "only EPSG:4326 (WGS84 lon/lat) is accepted; reproject before sending")


def parse_geometry(value: Any, field: str) -> shapely.Geometry:
    """GeoJSON dict / JSON text / WKT / EWKT → a shapely geometry in EPSG:4326."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except ValueError:
                raise Invalid(field, "not valid JSON")
        else:
            m = _EWKT.match(text)
            if m:
                if int(m.group(1)) != SRID:
                    raise Invalid(field, f"SRID {m.group(1)} is not accepted; send EPSG:4326 lon/lat")
                text = m.group(2)
            try:
                geom = shapely.from_wkt(text)
            except shapely.errors.GEOSException:
                raise Invalid(field, "not valid WKT")
            return _check_coords(geom, field)
    if not isinstance(value, dict):
        raise Invalid(field, "expected a GeoJSON geometry object or WKT")
    if "crs" in value:
        _check_crs(value["crs"], field)
        value = {k: v for k, v in value.items() if k != "crs"}
    if value.get("type") == "Feature":
        value = value.get("geometry") or {}
    try:
        geom = shape(value)
    except Exception:  # shapely raises several types on malformed GeoJSON
        raise Invalid(field, "not a valid GeoJSON geometry")
    return _check_coords(geom, field)


def _check_coords(geom: shapely.Geometry, field: str) -> shapely.Geometry:
    if geom.is_empty:
        raise Invalid(field, "geometry is empty")
    if shapely.get_num_coordinates(geom) > MAX_VERTICES:
        raise Invalid(field, f"too many vertices (max {MAX_VERTICES})")
    coords = shapely.get_coordinates(geom)
    for x, y in coords:
        if not (math.isfinite(x) and math.isfinite(y)):
            raise Invalid(field, "coordinates must be finite numbers")
        if not (-180 <= x <= 180 and -90 <= y <= 90):
            raise Invalid(field, f"coordinate ({x}, {y}) out of range: longitude -180..180, latitude -90..90")
    return shapely.force_2d(geom)


def parse_point(value: Any, field: str = "geometry") -> Point:
    geom = parse_geometry(value, field)
    if not isinstance(geom, Point):
        raise Invalid(field, f"expected a Point, got {geom.geom_type}")
    return geom


def parse_area(value: Any, field: str) -> MultiPolygon:
    """A valid (Multi)Polygon, returned as MultiPolygon."""
    geom = parse_geometry(value, field)
    if isinstance(geom, Polygon):
        geom = MultiPolygon([geom])
    if not isinstance(geom, MultiPolygon):
        raise Invalid(field, f"expected a Polygon or MultiPolygon, got {geom.geom_type}")
    if not geom.is_valid:
        raise Invalid(field, f"invalid polygon: {explain_validity(geom)}")
    return geom


def to_db(geom: shapely.Geometry | None) -> WKTElement | None:
    return None if geom is None else WKTElement(geom.wkt, srid=SRID)


def geojson_of(value: str | None) -> dict | None:
    """ST_AsGeoJSON text → dict."""
    return None if value is None else json.loads(value)


def shape_geojson(geom: shapely.Geometry | None) -> dict | None:
    return None if geom is None else mapping(geom)


def feature(id_: Any, geometry: dict | None, properties: dict) -> dict:
    return {"type": "Feature", "id": id_, "geometry": geometry, "properties": properties}


def feature_collection(features: list[dict], **members) -> dict:
    return {"type": "FeatureCollection", "features": features, **members}
