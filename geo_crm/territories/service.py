"""Territory CRUD and editing verbs (create, update, delete, build from regions, split by
a line, merge, assign users). Every write records a `territory_history` row; plain
row changes are audited by the DB triggers. Overlaps with other territories are refused
(`OverlapError`) unless the caller passes `allow_overlap=True`.

Reads go through `scope.territory_filter()`: a territory the caller may not see is
NotFound.
"""
from __future__ import annotations

import json

import shapely
from shapely import wkb
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from geo_crm.customers.filters import FilterError
from geo_crm.errors import check_version, get_visible
from geo_crm.models import Region, Territory, TerritoryHistory, TerritoryRegion, User, UserTerritory
from geo_crm.security.scope import Scope
from geo_crm.territories.geometry import as_multi, ewkt, to_multipolygon

MIN_OVERLAP_KM2 = 0.01     # overlaps smaller than this (digitising slivers) are ignored


class OverlapError(Exception):
    def __init__(self, overlaps: list[dict]):
        super().__init__("the territory overlaps " + ", ".join(o["name"] for o in overlaps))
        self.overlaps = overlaps


def _history(session: Session, scope: Scope, t: Territory, action: str, note: str = "") -> None:
    session.add(TerritoryHistory(territory_id=t.id, name=t.name, action=action,
                                 geom=None if action == "delete" else t.geom,
                                 changed_by=scope.user_id, note=note))


def get(session: Session, scope: Scope, territory_id: int) -> Territory:
    return get_visible(session, Territory, territory_id, scope.territory_filter())


def to_feature(session: Session, t: Territory, simplify: bool = False) -> dict:
    g = func.ST_SimplifyPreserveTopology(Territory.geom, 0.001) if simplify else Territory.geom
    gj, members = session.execute(
        select(func.ST_AsGeoJSON(g, 6),
               text("(SELECT count(*) FROM customer_territory ct WHERE ct.territory_id = territory.id)"))
        .where(Territory.id == t.id)).one()
    return {"type": "Feature", "id": t.id, "geometry": json.loads(gj),
            "properties": {"id": t.id, "name": t.name, "description": t.description, "color": t.color,
                           "source": t.source, "area_km2": round(t.area_km2 or 0, 3), "version": t.version,
                           "customers": int(members),
                           "users": [{"id": u.id, "username": u.username, "full_name": u.full_name}
                                     for u in sorted(t.users, key=lambda u: u.id)]}}


def list_features(session: Session, scope: Scope, simplify: bool = True) -> dict:
    ts = session.execute(select(Territory).where(scope.territory_filter()).order_by(Territory.name)).scalars()
    return {"type": "FeatureCollection", "features": [to_feature(session, t, simplify) for t in ts]}


def overlaps_with(session: Session, geom, exclude_ids=()) -> list[dict]:
    """Other territories overlapping `geom` by more than MIN_OVERLAP_KM2 (GiST `&&`)."""
    g = func.ST_GeomFromEWKT(ewkt(geom))
    area = (func.ST_Area(func.Geography(func.ST_Intersection(Territory.geom, g))) / 1e6)
    rows = session.execute(
        select(Territory.id, Territory.name, area.label("km2"))
        .where(func.ST_Intersects(Territory.geom, g), Territory.id.not_in(list(exclude_ids) or [-1]))).all()
    return [{"id": r.id, "name": r.name, "overlap_km2": round(float(r.km2), 3)}
            for r in rows if r.km2 and r.km2 > MIN_OVERLAP_KM2]


def _check_overlap(session, geom, exclude_ids, allow_overlap):
    if not allow_overlap:
        ov = overlaps_with(session, geom, exclude_ids)
        if ov:
            raise OverlapError(ov)


def _unique_name(session, name: str, exclude_id: int | None = None) -> None:
    q = select(Territory.id).where(func.lower(Territory.name) == name.strip().lower())
    if exclude_id is not None:
        q = q.where(Territory.id != exclude_id)
    if session.execute(q).first():
        raise FilterError("name", "a territory with this name already exists")


def create(session: Session, scope: Scope, *, name: str, geometry, description: str = "", color: str = "#3388ff",
           allow_overlap: bool = False, source: str = "drawn", region_ids=(), note: str = "") -> Territory:
    scope.require("territory.write")
    geom = geometry if hasattr(geometry, "geom_type") else to_multipolygon(geometry)
    _unique_name(session, name)
    _check_overlap(session, geom, (), allow_overlap)
    t = Territory(name=name.strip(), description=description, color=color, source=source, geom=ewkt(geom))
    session.add(t)
    session.flush()
    for rid in region_ids:
        session.add(TerritoryRegion(territory_id=t.id, region_id=rid))
    session.refresh(t)
    _history(session, scope, t, "create", note)
    session.flush()
    return t


def update(session: Session, scope: Scope, territory_id: int, *, expected_version: int | None = None,
           allow_overlap: bool = False, **changes) -> Territory:
    scope.require("territory.write")
    t = get(session, scope, territory_id)
    check_version(t.version, expected_version)
    if "name" in changes and changes["name"] is not None:
        _unique_name(session, changes["name"], t.id)
        t.name = changes["name"].strip()
    for k in ("description", "color"):
        if changes.get(k) is not None:
            setattr(t, k, changes[k])
    if changes.get("geometry") is not None:
        geom = to_multipolygon(changes["geometry"])
        _check_overlap(session, geom, (t.id,), allow_overlap)
        t.geom = ewkt(geom)
        t.source = "drawn"
    session.flush()
    session.refresh(t)
    _history(session, scope, t, "update")
    session.flush()
    return t


def remove(session: Session, scope: Scope, territory_id: int, expected_version: int | None = None) -> None:
    scope.require("territory.write")
    t = get(session, scope, territory_id)
    check_version(t.version, expected_version)
    _history(session, scope, t, "delete")
    session.delete(t)
    session.flush()


def from_regions(session: Session, scope: Scope, *, name: str, region_ids: list[int], color: str = "#3388ff",
                 description: str = "", allow_overlap: bool = False) -> Territory:
    """A territory that is the union of administrative regions."""
    scope.require("territory.write")
    ids = sorted(set(region_ids))
    if not ids:
        raise FilterError("region_ids", "give at least one region")
    found = session.execute(select(Region.id).where(Region.id.in_(ids))).scalars().all()
    missing = sorted(set(ids) - set(found))
    if missing:
        raise FilterError("region_ids", f"unknown regions: {missing}")
    wkb_hex = session.execute(select(func.ST_AsBinary(func.ST_Multi(func.ST_Union(Region.geom))))
                              .where(Region.id.in_(ids))).scalar()
    geom = as_multi(wkb.loads(bytes(wkb_hex)), "region_ids")
    return create(session, scope, name=name, geometry=geom, color=color, description=description,
                  allow_overlap=allow_overlap, source="regions", region_ids=ids)


def split(session: Session, scope: Scope, territory_id: int, line_geojson, names: tuple[str, str] | None = None,
          expected_version: int | None = None) -> list[Territory]:
    """Split a territory by a drawn line (ST_Split) into two: the original keeps the
    larger part and its id, users and history; the other part becomes a new territory."""
    scope.require("territory.write")
    t = get(session, scope, territory_id)
    check_version(t.version, expected_version)
    try:
        obj = json.loads(line_geojson) if isinstance(line_geojson, str) else line_geojson
        if obj.get("type") == "Feature":
            obj = obj["geometry"]
        line = shapely.geometry.shape(obj)
    except Exception:
        raise FilterError("line", "invalid GeoJSON geometry")
    if line.geom_type not in ("LineString", "MultiLineString") or line.is_empty:
        raise FilterError("line", "must be a GeoJSON LineString")
    rows = session.execute(text(
        "SELECT ST_AsBinary(d.geom) FROM (SELECT (ST_Dump(ST_Split(geom, ST_GeomFromEWKT(:l)))).geom FROM territory "
        "WHERE id = :id) d ORDER BY ST_Area(d.geom::geography) DESC"), {"l": ewkt(line), "id": t.id}).scalars().all()
    if len(rows) < 2:
        raise FilterError("line", "the line does not cut the territory in two")
    parts = [wkb.loads(bytes(r)) for r in rows]
    # the largest piece and everything on its side stays; pieces are grouped by the side
    # of the line they fall on, via a buffered-line difference
    keep, other = _two_sides(parts, line)
    n1, n2 = names or (t.name, f"{t.name} (2)")
    t.geom = ewkt(as_multi(keep))
    if n1 != t.name:
        _unique_name(session, n1, t.id)
        t.name = n1
    session.flush()
    session.refresh(t)
    _history(session, scope, t, "split", f"split; other part: {n2}")
    new = create(session, scope, name=n2, geometry=as_multi(other), color=t.color, allow_overlap=True,
                 note=f"split from territory {t.id}")
    return [t, new]


def _two_sides(parts, line):
    """Group polygon pieces into two sides of the line: the largest piece's side, and the rest."""
    if len(parts) == 2:
        return parts[0], parts[1]
    first = parts[0]
    keep, other = [first], []
    for p in parts[1:]:
        (keep if p.touches(first) and not p.intersection(first).intersects(line) else other).append(p)
    if not other:
        other = keep[1:]
        keep = keep[:1]
    return shapely.union_all(keep), shapely.union_all(other)


def merge(session: Session, scope: Scope, territory_ids: list[int], name: str | None = None) -> Territory:
    """Merge two or more territories (ST_Union) into the first; the others are deleted
    and their users move to the merged territory."""
    scope.require("territory.write")
    ids = list(dict.fromkeys(territory_ids))
    if len(ids) < 2:
        raise FilterError("territory_ids", "give at least two territories")
    ts = [get(session, scope, i) for i in ids]
    wkb_u = session.execute(select(func.ST_AsBinary(func.ST_Multi(func.ST_Union(Territory.geom))))
                            .where(Territory.id.in_(ids))).scalar()
    target, others = ts[0], ts[1:]
    user_ids = {u.id for t in ts for u in t.users}
    for o in others:
        _history(session, scope, o, "delete", f"merged into territory {target.id}")
        session.delete(o)
    session.flush()
    if name and name != target.name:
        _unique_name(session, name, target.id)
        target.name = name
    target.geom = ewkt(as_multi(wkb.loads(bytes(wkb_u))))
    target.source = "drawn"
    session.flush()
    existing = set(session.execute(select(UserTerritory.user_id).where(UserTerritory.territory_id == target.id)).scalars())
    for uid in sorted(user_ids - existing):
        session.add(UserTerritory(user_id=uid, territory_id=target.id))
    session.flush()
    session.refresh(target)
    _history(session, scope, target, "merge", "merged " + ", ".join(str(o.id) for o in others))
    session.flush()
    return target


def assign_users(session: Session, scope: Scope, territory_id: int, user_ids: list[int]) -> Territory:
    """Replace the users assigned to a territory."""
    scope.require("territory.write")
    t = get(session, scope, territory_id)
    ids = sorted(set(user_ids))
    found = set(session.execute(select(User.id).where(User.id.in_(ids or [-1]))).scalars())
    if set(ids) - found:
        raise FilterError("user_ids", f"unknown users: {sorted(set(ids) - found)}")
    session.execute(delete(UserTerritory).where(UserTerritory.territory_id == t.id,
                                                UserTerritory.user_id.not_in(ids or [-1])))
    have = set(session.execute(select(UserTerritory.user_id).where(UserTerritory.territory_id == t.id)).scalars())
    for uid in ids:
        if uid not in have:
            session.add(UserTerritory(user_id=uid, territory_id=t.id))
    session.flush()
    session.expire(t, ["users"])
    return t
