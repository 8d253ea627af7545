"""Spatial queries about customers, branches and partners (EPSG:4326; metres on the
WGS84 spheroid).

- `customer_areas`: the reverse lookup — region, territories, service-area branch that
  contain a customer, plus the nearest branch and partner with distances.
- `nearest`: KNN on the GiST index (`ORDER BY geom <-> point LIMIT n`, then the
  spheroidal distance of those n, re-sorted).
- `customers_within_radius`: customers within R metres of a point, customer or branch,
  sorted by distance, combined with the CRM filters and the caller's Scope.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geo_crm.customers.filters import (CustomerFilter, FilterError, apply, check_lonlat, distance_m,
                                       radius_envelope, within_radius)
from geo_crm.errors import Forbidden, NotFound
from geo_crm.models import Branch, Customer, CustomerTerritory, Partner, Region, Territory
from geo_crm.security.scope import Scope

MAX_NEAREST = 100

SITE_KINDS = {"branch": (Branch, "branch.read"), "partner": (Partner, "partner.read")}


def _point(lon: float, lat: float):
    return func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)


def visible_customer(session: Session, scope: Scope, customer_id: int) -> Customer:
    """The customer if the caller may see it, else NotFound (never a hint it exists)."""
    c = session.execute(select(Customer).where(Customer.id == customer_id, scope.customer_filter())).scalar()
    if c is None:
        raise NotFound(f"customer {customer_id}")
    return c


def customer_lonlat(session: Session, scope: Scope, customer_id: int) -> tuple[float, float]:
    row = session.execute(select(func.ST_X(Customer.geom), func.ST_Y(Customer.geom))
                          .where(Customer.id == customer_id, scope.customer_filter())).first()
    if row is None:
        raise NotFound(f"customer {customer_id}")
    if row[0] is None:
        raise FilterError("customer_id", "the customer has no location")
    return float(row[0]), float(row[1])


def branch_lonlat(session: Session, scope: Scope, branch_id: int) -> tuple[float, float]:
    if not scope.can("branch.read"):
        raise NotFound(f"branch {branch_id}")
    row = session.execute(select(func.ST_X(Branch.geom), func.ST_Y(Branch.geom))
                          .where(Branch.id == branch_id)).first()
    if row is None:
        raise NotFound(f"branch {branch_id}")
    return float(row[0]), float(row[1])


def nearest(session: Session, scope: Scope, kind: str, lon: float, lat: float, n: int = 5,
            max_distance_m: float | None = None) -> list[dict]:
    """The n nearest branches or partners to (lon, lat), nearest first, `distance_m` in
    metres on the spheroid (exact ranking; KNN on the GiST index bounds the search)."""
    if kind not in SITE_KINDS:
        raise FilterError("kind", "must be 'branch' or 'partner'")
    model, perm = SITE_KINDS[kind]
    if not scope.can(perm):
        raise Forbidden(perm)
    check_lonlat(lon, lat, "lon,lat")
    n = max(1, min(int(n), MAX_NEAREST))
    p = _point(lon, lat)
    # 1) planar KNN on the GiST index gives n candidates; their largest true distance D
    #    bounds the n-th nearest on the spheroid; 2) every site within D (index box +
    #    ST_DWithin) re-ranked by true distance: exact, whatever the latitude.
    knn = (select(distance_m(model.geom, lon, lat).label("d"))
           .order_by(model.geom.op("<->")(p)).limit(n)).subquery()
    bound = session.execute(select(func.max(knn.c.d))).scalar()
    if bound is None:
        return []
    d = distance_m(model.geom, lon, lat).label("distance_m")
    stmt = (select(model.id, model.code, model.name, model.city, func.ST_X(model.geom).label("lon"),
                   func.ST_Y(model.geom).label("lat"), d)
            .where(within_radius(model.geom, lon, lat, float(bound) + 1.0))
            .order_by(d, model.id).limit(n))
    out = [{"kind": kind, "id": r.id, "code": r.code, "name": r.name, "city": r.city,
            "lon": r.lon, "lat": r.lat, "distance_m": round(float(r.distance_m), 1)}
           for r in session.execute(stmt)]
    if max_distance_m is not None:
        out = [o for o in out if o["distance_m"] <= max_distance_m]
    return out


def customer_areas(session: Session, scope: Scope, customer_id: int) -> dict:
    """Region, territories (those the caller may see), service-area branch, and the
    nearest branch and partner (metres) of one visible customer."""
    c = visible_customer(session, scope, customer_id)
    out: dict = {"customer_id": c.id, "region": None, "territories": [], "service_branch": None,
                 "nearest_branch": None, "nearest_partner": None}
    if c.region_id is not None:
        r = session.get(Region, c.region_id)
        out["region"] = {"id": r.id, "code": r.code, "name": r.name}
    terr = session.execute(
        select(Territory.id, Territory.name, Territory.color)
        .join(CustomerTerritory, CustomerTerritory.territory_id == Territory.id)
        .where(CustomerTerritory.customer_id == c.id, scope.territory_filter())
        .order_by(Territory.name)).all()
    out["territories"] = [{"id": t.id, "name": t.name, "color": t.color} for t in terr]
    if c.geom is None:
        return out
    lon, lat = session.execute(select(func.ST_X(Customer.geom), func.ST_Y(Customer.geom))
                               .where(Customer.id == c.id)).one()
    if c.service_branch_id is not None and scope.can("branch.read"):
        b = session.execute(select(Branch.id, Branch.code, Branch.name,
                                   distance_m(Branch.geom, lon, lat).label("d"))
                            .where(Branch.id == c.service_branch_id)).one()
        out["service_branch"] = {"id": b.id, "code": b.code, "name": b.name,
                                 "distance_m": round(float(b.d), 1)}
    for kind in ("branch", "partner"):
        if scope.can(SITE_KINDS[kind][1]):
            hits = nearest(session, scope, kind, lon, lat, 1)
            out[f"nearest_{kind}"] = hits[0] if hits else None
    return out


@dataclass
class RadiusResult:
    center: tuple[float, float]
    radius_m: float
    total: int
    items: list[dict]


def customers_within_radius(session: Session, scope: Scope, lon: float, lat: float, radius_m: float,
                            f: CustomerFilter | None = None, limit: int = 100, offset: int = 0,
                            with_total: bool = True) -> RadiusResult:
    """Visible customers within `radius_m` metres of (lon, lat) matching `f`, nearest
    first (ties by id). The candidate set comes from the GiST index (`&&` box +
    ST_DWithin on geography); the sort is by spheroidal distance."""
    check_lonlat(lon, lat, "lon,lat")
    if not 0 < radius_m <= 1_000_000:
        raise FilterError("radius_m", "must be in 0 < radius_m <= 1000000")
    d = distance_m(Customer.geom, lon, lat).label("distance_m")
    base = apply(select(Customer.id), f, scope).where(within_radius(Customer.geom, lon, lat, radius_m))
    # KNN on the GiST index (an index scan ordered by `<->`, stopped after offset+limit
    # rows; the box keeps it inside the radius' envelope where customers are sparse)
    # finds offset+limit candidates. Their largest true distance bounds the true
    # (offset+limit)-th nearest, so the exact sort only needs the customers within that
    # bound instead of everything within radius_m. The candidate query has no
    # ST_DWithin: its (tiny) selectivity estimate would make the planner fetch and sort
    # the whole box instead of walking the index in distance order.
    knn = (apply(select(d), f, scope).where(Customer.geom.op("&&")(radius_envelope(lon, lat, radius_m)))
           .order_by(Customer.geom.op("<->")(func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)))
           .limit(offset + limit)).subquery()
    bound = session.execute(select(func.max(knn.c.distance_m), func.count())).one()
    search_m = radius_m if bound[1] < offset + limit or bound[0] is None else min(radius_m, float(bound[0]) + 0.01)
    stmt = (apply(select(Customer.id, Customer.code, Customer.name, Customer.level, Customer.status,
                         Customer.city, func.ST_X(Customer.geom).label("lon"),
                         func.ST_Y(Customer.geom).label("lat"), d), f, scope)
            .where(within_radius(Customer.geom, lon, lat, search_m))
            .order_by(d, Customer.id).limit(limit).offset(offset))
    items = [{"id": r.id, "code": r.code, "name": r.name, "level": r.level, "status": r.status,
              "city": r.city, "lon": r.lon, "lat": r.lat, "distance_m": round(float(r.distance_m), 1)}
             for r in session.execute(stmt)]
    total = len(items) + offset
    if with_total and (len(items) == limit or offset):
        total = session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    return RadiusResult((lon, lat), radius_m, total, items)


def customers_in_area(session: Session, scope: Scope, f: CustomerFilter, limit: int = 100,
                      offset: int = 0) -> tuple[int, list[dict]]:
    """Count plus one page (by id: the order a cursor pages in) of visible customers matching `f` — e.g. a
    region (`region_id`, B-tree on the stored membership) or a drawn polygon (`within`,
    GiST). Used by the map's draw tool and the benchmark."""
    total = session.execute(apply(select(func.count()).select_from(Customer), f, scope)).scalar_one()
    rows = session.execute(
        apply(select(Customer.id, Customer.code, Customer.name, Customer.level, Customer.status,
                     Customer.city, func.ST_X(Customer.geom).label("lon"),
                     func.ST_Y(Customer.geom).label("lat")), f, scope)
        .order_by(Customer.id).limit(limit).offset(offset))
    return total, [dict(r._mapping) for r in rows]
