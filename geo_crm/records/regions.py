"""Administrative regions: read-only for staff; admins may rename them or update the
population. Optional server-side simplification for map display."""
from __future__ import annotations

import json

from sqlalchemy import Float, cast, func, or_, select
from sqlalchemy.orm import Session

from geo_crm.models import Region
from geo_crm.records.common import Forbidden, Invalid, NotFound, Page, paginate, plain
from geo_crm.records.geo import feature
from geo_crm.security.scope import Scope

MAX_SIMPLIFY_M = 50_000
READ = "territory.read"   # every staff role (regions are shared reference data)


def simplified_geom(simplify_m: float | None):
    """Region geometry as GeoJSON text, simplified with a tolerance of `simplify_m`
    metres. The work happens in Web Mercator with the tolerance scaled by 1/cos(lat)
    of the region's centroid, so the tolerance is true metres at the region's
    latitude; ST_SimplifyPreserveTopology keeps polygons valid."""
    if not simplify_m:
        return func.ST_AsGeoJSON(Region.geom, 6)
    lat = func.ST_Y(func.ST_PointOnSurface(Region.geom))
    tol = cast(simplify_m, Float) / func.greatest(func.cos(func.radians(lat)), 0.05)
    g = func.ST_Transform(func.ST_SimplifyPreserveTopology(func.ST_Transform(Region.geom, 3857), tol), 4326)
    return func.ST_AsGeoJSON(g, 6)


def region_props(r: Region) -> dict:
    return {"id": r.id, "code": r.code, "name": r.name, "name_local": r.name_local, "level": r.level,
            "parent_id": r.parent_id, "population": r.population, "area_km2": plain(r.area_km2)}


def list_regions(session: Session, scope: Scope, *, level: int | None = None, q: str | None = None,
                 simplify_m: float | None = None, with_geometry: bool = True, limit: int = 100,
                 offset: int = 0) -> Page:
    """Items are GeoJSON Features."""
    if not scope.can(READ):
        raise Forbidden(READ)
    if simplify_m is not None and not (0 <= simplify_m <= MAX_SIMPLIFY_M):
        raise Invalid("simplify_m", f"between 0 and {MAX_SIMPLIFY_M}")
    cols = [Region, simplified_geom(simplify_m)] if with_geometry else [Region]
    stmt = select(*cols).order_by(Region.level, Region.name, Region.id)
    if level is not None:
        stmt = stmt.where(Region.level == level)
    if q:
        stmt = stmt.where(or_(Region.name.ilike(f"%{q}%"), Region.code.ilike(f"%{q}%")))
    page = paginate(session, stmt, limit, offset, scalars=False)
    page.items = [feature(row[0].id, json.loads(row[1]) if with_geometry else None, region_props(row[0]))
                  for row in page.items]
    return page


def get_region(session: Session, scope: Scope, region_id: int, simplify_m: float | None = None) -> tuple[Region, dict]:
    if not scope.can(READ):
        raise NotFound()
    row = session.execute(select(Region, simplified_geom(simplify_m)).where(Region.id == region_id)).first()
    if row is None:
        raise NotFound()
    return row[0], feature(row[0].id, json.loads(row[1]), region_props(row[0]))


def update_region(session: Session, scope: Scope, region_id: int, data: dict, expected_version: int | None = None) -> Region:
    r = session.get(Region, region_id)
    if r is None or not scope.can(READ):
        raise NotFound()
    if not scope.can("region.write"):
        raise Forbidden("region.write")
    if "name" in data:
        if not (data["name"] or "").strip():
            raise Invalid("name", "required")
        r.name = data["name"].strip()
    if "name_local" in data:
        r.name_local = data["name_local"]
    if "population" in data:
        if data["population"] is None or data["population"] < 0:
            raise Invalid("population", "must be zero or more")
        r.population = data["population"]
    session.flush()
    return r
