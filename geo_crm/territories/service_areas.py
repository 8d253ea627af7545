"""Branch service areas: nearest-branch Voronoi cells (computed in EPSG:3067 metres, so
"nearest" is metric, not in degrees) clipped to the country (the union of regions), or a drawn polygon. Saving a branch's service area makes the DB triggers
reassign its customers (`customer.service_branch_id`) in the same transaction."""
from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_crm.errors import NotFound
from geo_crm.models import Branch
from geo_crm.security.scope import Scope
from geo_crm.territories.geometry import ewkt, to_multipolygon

VORONOI_SQL = """
WITH country AS (SELECT ST_Transform(ST_Union(geom), 3067) AS g FROM region),
cells AS (SELECT (ST_Dump(ST_VoronoiPolygons(ST_Collect(ST_Transform(geom, 3067)), 0.0,
                 ST_Expand((SELECT g FROM country), 100000)))).geom AS cell FROM branch)
UPDATE branch b SET service_area = ST_Multi(ST_CollectionExtract(
                      ST_Transform(ST_Intersection(cells.cell, country.g), 4326), 3)),
                    service_area_kind = 'voronoi', version = b.version + 1
  FROM cells, country
 WHERE ST_Intersects(cells.cell, ST_Transform(b.geom, 3067))
"""


def recompute_voronoi(session: Session, scope: Scope) -> int:
    """Replace every branch's service area by its Voronoi cell clipped to the country.
    Returns the number of branches updated. Membership follows via triggers."""
    scope.require("branch.write")
    n = session.execute(text(VORONOI_SQL)).rowcount
    session.execute(text("UPDATE branch SET service_area = NULL, service_area_kind = NULL "
                         "WHERE service_area IS NOT NULL AND ST_IsEmpty(service_area)"))
    session.flush()
    session.expire_all()
    return n


def save_drawn(session: Session, scope: Scope, branch_id: int, geometry) -> Branch:
    scope.require("branch.write")
    b = session.get(Branch, branch_id)
    if b is None:
        raise NotFound(f"branch {branch_id}")
    b.service_area = ewkt(to_multipolygon(geometry))
    b.service_area_kind = "drawn"
    session.flush()
    session.refresh(b)
    return b


def service_areas(session: Session, scope: Scope) -> dict:
    rows = session.execute(text(
        "SELECT b.id, b.code, b.name, b.service_area_kind, ST_Area(b.service_area::geography) / 1e6 AS km2, "
        "ST_AsGeoJSON(ST_SimplifyPreserveTopology(b.service_area, 0.002), 6) AS g, "
        "(SELECT count(*) FROM customer c WHERE c.service_branch_id = b.id) AS customers "
        "FROM branch b WHERE b.service_area IS NOT NULL ORDER BY b.id")).mappings().all()
    # customers count is only shown to roles that see all customers
    show_counts = scope.sees_everything
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": r["id"], "geometry": json.loads(r["g"]),
         "properties": {"id": r["id"], "code": r["code"], "name": r["name"], "kind": r["service_area_kind"],
                        "area_km2": round(float(r["km2"]), 3),
                        **({"customers": int(r["customers"])} if show_counts else {})}} for r in rows]}
