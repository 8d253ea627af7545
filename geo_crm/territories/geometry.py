"""Validation of territory / service-area geometry from GeoJSON."""
from __future__ import annotations

import shapely
from shapely.geometry import MultiPolygon, Polygon

from geo_crm.customers.filters import FilterError, parse_area_geojson


def to_multipolygon(value, field: str = "geometry") -> MultiPolygon:
    """A valid, non-empty MultiPolygon from GeoJSON Polygon/MultiPolygon (EPSG:4326)."""
    g = parse_area_geojson(value, field)
    return as_multi(g, field)


def as_multi(g, field: str = "geometry") -> MultiPolygon:
    if isinstance(g, Polygon):
        g = MultiPolygon([g])
    elif not isinstance(g, MultiPolygon):
        polys = [p for p in getattr(g, "geoms", []) if isinstance(p, (Polygon, MultiPolygon))]
        g = shapely.union_all(polys) if polys else None
        if g is None or g.is_empty:
            raise FilterError(field, "the result has no polygon area")
        return as_multi(g, field)
    if g.is_empty or g.area == 0:
        raise FilterError(field, "the polygon has no area")
    return g


def ewkt(g) -> str:
    return "SRID=4326;" + g.wkt
