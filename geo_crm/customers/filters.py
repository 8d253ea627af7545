"""The customer filter: one definition used by the list API, web list, map layers,
vector tiles, density statistics, exports, reports and OGC collections.

Coordinates are EPSG:4326 (lon, lat). Distances are metres on the WGS84 spheroid
(geography). Every spatial predicate has an index-friendly form: a bounding-box
`&&` on the GiST-indexed geometry plus the exact test.
"""
from __future__ import annotations

import json
import math
from typing import Annotated, Literal

import shapely
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from shapely.geometry import shape
from shapely.validation import explain_validity
from sqlalchemy import ColumnElement, Select, and_, exists, func, literal, or_

from geo_crm.models import Contact, Customer, CustomerTerritory
from geo_crm.models.enums import CUSTOMER_LEVELS, CUSTOMER_STATUSES
from geo_crm.security.scope import Scope

MAX_RADIUS_M = 1_000_000
MAX_WITHIN_VERTICES = 20_000

Level = Literal["key", "major", "ordinary", "small"]
Status = Literal["prospect", "active", "dormant", "lost"]
assert set(Level.__args__) == set(CUSTOMER_LEVELS) and set(Status.__args__) == set(CUSTOMER_STATUSES)


class FilterError(ValueError):
    """A filter value is invalid; `field` names the parameter."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


def _csv_list(v):
    if v is None or isinstance(v, list) and not all(isinstance(x, str) for x in v):
        return v
    items = v if isinstance(v, list) else [v]
    out = []
    for item in items:
        out.extend(p.strip() for p in str(item).split(",") if p.strip())
    return out or None


def parse_lonlat(value: str, field: str) -> tuple[float, float]:
    try:
        lon, lat = (float(x) for x in value.split(","))
    except ValueError:
        raise FilterError(field, "expected 'lon,lat' in decimal degrees")
    check_lonlat(lon, lat, field)
    return lon, lat


def check_lonlat(lon: float, lat: float, field: str = "geometry") -> None:
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise FilterError(field, "coordinates must be finite numbers")
    if not -180 <= lon <= 180:
        raise FilterError(field, f"longitude {lon} is outside -180..180")
    if not -90 <= lat <= 90:
        raise FilterError(field, f"latitude {lat} is outside -90..90")


def parse_bbox(value: str) -> tuple[float, float, float, float]:
    """'minlon,minlat,maxlon,maxlat'. minlon > maxlon means the box crosses the antimeridian."""
    try:
        parts = [float(x) for x in value.split(",")]
    except ValueError:
        raise FilterError("bbox", "expected 'minlon,minlat,maxlon,maxlat'")
    if len(parts) != 4:
        raise FilterError("bbox", "expected four numbers: minlon,minlat,maxlon,maxlat")
    minx, miny, maxx, maxy = parts
    check_lonlat(minx, miny, "bbox")
    check_lonlat(maxx, maxy, "bbox")
    if miny > maxy:
        raise FilterError("bbox", "minlat is greater than maxlat")
    return minx, miny, maxx, maxy


def parse_area_geojson(value, field: str = "within") -> shapely.Geometry:
    """A GeoJSON Polygon or MultiPolygon (object or string) as a valid shapely geometry."""
    try:
        obj = json.loads(value) if isinstance(value, str) else value
        if obj.get("type") == "Feature":
            obj = obj.get("geometry") or {}
        if obj.get("type") not in ("Polygon", "MultiPolygon"):
            raise FilterError(field, "must be a GeoJSON Polygon or MultiPolygon")
        geom = shape(obj)
    except FilterError:
        raise
    except Exception:
        raise FilterError(field, "invalid GeoJSON geometry")
    coords = shapely.get_coordinates(geom)
    if len(coords) > MAX_WITHIN_VERTICES:
        raise FilterError(field, f"too many vertices (max {MAX_WITHIN_VERTICES})")
    for lon, lat in coords:
        check_lonlat(float(lon), float(lat), field)
    if geom.is_empty:
        raise FilterError(field, "polygon is empty")
    if not geom.is_valid:
        raise FilterError(field, f"invalid polygon: {explain_validity(geom)}")
    return geom


class CustomerFilter(BaseModel):
    """Filters that combine freely (AND). Lists accept repeated or comma-separated values."""
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    q: Annotated[str | None, Field(max_length=200, description="fuzzy text over name, code, address and contacts")] = None
    level: list[Level] | None = None
    status: list[Status] | None = None
    industry: list[Annotated[str, Field(max_length=64)]] | None = None
    owner_id: int | None = None
    region_id: int | None = None
    territory_id: int | None = None
    branch_id: Annotated[int | None, Field(description="service branch")] = None
    bbox: Annotated[str | None, Field(description="minlon,minlat,maxlon,maxlat (EPSG:4326)")] = None
    near: Annotated[str | None, Field(description="lon,lat; requires radius_m")] = None
    radius_m: Annotated[float | None, Field(gt=0, le=MAX_RADIUS_M, description="metres")] = None
    within: Annotated[str | None, Field(description="GeoJSON Polygon/MultiPolygon (EPSG:4326)")] = None

    _split = field_validator("level", "status", "industry", mode="before")(_csv_list)

    @model_validator(mode="after")
    def _check(self):
        if (self.near is None) != (self.radius_m is None):
            raise ValueError("near and radius_m go together")
        if self.bbox:
            parse_bbox(self.bbox)
        if self.near:
            parse_lonlat(self.near, "near")
        if self.within:
            parse_area_geojson(self.within)
        return self

    @property
    def near_point(self) -> tuple[float, float] | None:
        return parse_lonlat(self.near, "near") if self.near else None


def _point(lon: float, lat: float):
    return func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)


def envelope(minx, miny, maxx, maxy):
    return func.ST_MakeEnvelope(minx, miny, maxx, maxy, 4326)


def radius_envelope(lon: float, lat: float, radius_m: float):
    """An EPSG:4326 box that contains every point within radius_m metres of (lon, lat)
    (for the GiST `&&` test; the exact test is ST_DWithin on geography)."""
    dlat = radius_m / 110_574 + 1e-6
    max_lat = min(89.9, abs(lat) + dlat)
    dlon = min(180.0, radius_m / (111_320 * math.cos(math.radians(max_lat))) + 1e-6)
    return envelope(lon - dlon, lat - dlat, lon + dlon, lat + dlat)


def within_radius(geom_col, lon: float, lat: float, radius_m: float) -> ColumnElement[bool]:
    """Index-friendly 'within radius_m metres of (lon, lat)' on the spheroid."""
    box = radius_envelope(lon, lat, radius_m)
    return and_(geom_col.op("&&")(box),
                func.ST_DWithin(func.Geography(geom_col), func.Geography(_point(lon, lat)), radius_m))


def distance_m(geom_col, lon: float, lat: float):
    """Spheroidal distance in metres from (lon, lat)."""
    return func.ST_Distance(func.Geography(geom_col), func.Geography(_point(lon, lat)))


def text_match(q: str) -> ColumnElement[bool]:
    """Substring or fuzzy (trigram word similarity) match; both use the GIN trigram indexes."""
    pat = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return or_(Customer.name.ilike(pat), Customer.code.ilike(pat), Customer.address.ilike(pat),
               literal(q).op("<%")(Customer.name),
               exists().where(Contact.customer_id == Customer.id, Contact.name.ilike(pat)))


def filter_clauses(f: CustomerFilter) -> list[ColumnElement[bool]]:
    c: list[ColumnElement[bool]] = []
    if f.q:
        c.append(text_match(f.q))
    if f.level:
        c.append(Customer.level.in_(f.level))
    if f.status:
        c.append(Customer.status.in_(f.status))
    if f.industry:
        c.append(Customer.industry.in_(f.industry))
    if f.owner_id is not None:
        c.append(Customer.owner_id == f.owner_id)
    if f.region_id is not None:
        c.append(Customer.region_id == f.region_id)
    if f.territory_id is not None:
        c.append(exists().where(CustomerTerritory.customer_id == Customer.id,
                                CustomerTerritory.territory_id == f.territory_id))
    if f.branch_id is not None:
        c.append(Customer.service_branch_id == f.branch_id)
    if f.bbox:
        minx, miny, maxx, maxy = parse_bbox(f.bbox)
        if minx <= maxx:
            c.append(Customer.geom.op("&&")(envelope(minx, miny, maxx, maxy)))
        else:  # crosses the antimeridian: two boxes
            c.append(or_(Customer.geom.op("&&")(envelope(minx, miny, 180, maxy)),
                         Customer.geom.op("&&")(envelope(-180, miny, maxx, maxy))))
    if f.near:
        lon, lat = parse_lonlat(f.near, "near")
        c.append(within_radius(Customer.geom, lon, lat, f.radius_m))
    if f.within:
        g = parse_area_geojson(f.within)
        c.append(func.ST_Intersects(Customer.geom, func.ST_GeomFromText(g.wkt, 4326)))
    return c


def apply(stmt: Select, f: CustomerFilter | None, scope: Scope) -> Select:
    """Add visibility and filter predicates for `Customer` to a SELECT."""
    stmt = stmt.where(scope.customer_filter())
    if f is not None:
        for clause in filter_clauses(f):
            stmt = stmt.where(clause)
    return stmt
