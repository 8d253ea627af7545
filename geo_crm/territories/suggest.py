"""Suggest a balanced, contiguous alignment of K territories.

Units are hexagon cells (edge `hex_size_m`, EPSG:3067, see spatial/hexgrid.py) clipped to
the country (union of regions), each with a load: `customers` (visible customers),
`revenue` (12 months, non-cancelled orders) or `workload` (1 per customer + 1 per open
opportunity + 1 per open service record). Contiguity is hexagon adjacency (libpysal
DistanceBand at √3·size). The method is capacitated region growing:

1. K seeds far apart in load-weighted space (deterministic k-means++-style farthest
   point choice, starting from the heaviest cell);
2. repeatedly the territory with the smallest load takes its heaviest unassigned
   neighbouring cell (ties: nearest to its seed), so every territory stays contiguous;
3. cells not reachable from any seed (islands) join the nearest territory.

The result (GeoJSON with per-territory loads and the imbalance) is shown beside the
current alignment; `accept` writes it in ONE transaction.
"""
from __future__ import annotations

import heapq
import json
from datetime import date, timedelta

import numpy as np
from shapely import wkb
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from geo_crm.customers.filters import FilterError
from geo_crm.models import Customer, Opportunity, Order, ServiceRecord, Territory, TerritoryHistory
from geo_crm.security.scope import Scope
from geo_crm.spatial.density import _compile, _rename, _run
from geo_crm.spatial.hexgrid import SQRT3, cell_sql
from geo_crm.territories.geometry import as_multi, ewkt
from geo_crm.territories.reports import imbalance

METRICS = ("customers", "revenue", "workload")
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22")


def _units(session: Session, scope: Scope, metric: str, size: float, as_of: date):
    ci, cj = cell_sql("c.x", "c.y", "%(size)s")
    cf_sql, cf_params = _rename(*_compile(session, select(Customer.id).where(scope.customer_filter())), "c_")
    if metric == "customers":
        load = "count(*)::float8"
        extra, params = "", {}
    elif metric == "revenue":
        of_sql, params = _rename(*_compile(session, select(Order.id).where(scope.order_filter())), "o_")
        load = "coalesce(sum(rv.revenue), 0)::float8"
        extra = (f"LEFT JOIN (SELECT customer_id, sum(total_amount) AS revenue FROM sales_order "
                 f"WHERE status <> 'cancelled' AND order_date > %(since)s AND order_date <= %(as_of)s "
                 f"AND id IN ({of_sql}) GROUP BY customer_id) rv ON rv.customer_id = c.id")
    else:
        op_sql, p1 = _rename(*_compile(session, select(Opportunity.id).where(scope.opportunity_filter())), "p_")
        sr_sql, p2 = _rename(*_compile(session, select(ServiceRecord.id).where(scope.service_record_filter())), "s_")
        params = {**p1, **p2}
        load = "(count(*) + coalesce(sum(wo.n), 0) + coalesce(sum(ws.n), 0))::float8"
        extra = (f"LEFT JOIN (SELECT customer_id, count(*) AS n FROM opportunity WHERE status = 'open' "
                 f"AND id IN ({op_sql}) GROUP BY customer_id) wo ON wo.customer_id = c.id "
                 f"LEFT JOIN (SELECT customer_id, count(*) AS n FROM service_record "
                 f"WHERE status IN ('new', 'assigned', 'in_progress') AND id IN ({sr_sql}) GROUP BY customer_id) ws "
                 f"ON ws.customer_id = c.id")
    sql = f"""
    WITH ext AS (SELECT ST_Transform(ST_SetSRID(ST_Extent(geom)::geometry, 4326), 3067) AS g FROM region),
    grid AS (SELECT h.i, h.j, h.geom FROM ext, ST_HexagonGrid(%(size)s, ext.g) h
              WHERE EXISTS (SELECT 1 FROM region_part rp WHERE ST_Intersects(rp.geom, ST_Transform(h.geom, 4326)))),
    loads AS (SELECT {ci} AS i, {cj} AS j, {load} AS load
                FROM (SELECT id, ST_X(g) AS x, ST_Y(g) AS y FROM (SELECT id, ST_Transform(geom, 3067) AS g
                        FROM customer WHERE geom IS NOT NULL AND id IN ({cf_sql})) c0 OFFSET 0) c {extra}
               GROUP BY 1, 2)
    SELECT g.i, g.j, coalesce(l.load, 0) AS load, ST_X(ST_Centroid(g.geom)) AS x, ST_Y(ST_Centroid(g.geom)) AS y,
           ST_AsBinary(ST_Transform(g.geom, 4326)) AS wkb
      FROM grid g LEFT JOIN loads l ON l.i = g.i AND l.j = g.j
     ORDER BY g.i, g.j"""
    return _run(session, sql, {**cf_params, **params, "size": size, "since": as_of - timedelta(days=365),
                               "as_of": as_of})


def grow(xy: np.ndarray, load: np.ndarray, neighbours: list[list[int]], k: int) -> np.ndarray:
    """Capacitated region growing (see module docstring). Returns a label 0..k-1 per unit."""
    n = len(load)
    seeds = [int(np.argmax(load))]
    d = np.full(n, np.inf)
    for _ in range(1, k):
        d = np.minimum(d, np.hypot(*(xy - xy[seeds[-1]]).T))
        score = d * (1.0 + load / (load.max() or 1.0))
        score[seeds] = -1
        seeds.append(int(np.argmax(score)))
    label = np.full(n, -1)
    totals = np.zeros(k)
    frontier: list[list] = [[] for _ in range(k)]
    for t, s in enumerate(seeds):
        label[s] = t
        totals[t] += load[s]
    def push(t, u):
        for v in neighbours[u]:
            if label[v] < 0:
                heapq.heappush(frontier[t], (-load[v], float(np.hypot(*(xy[v] - xy[seeds[t]]))), v))
    for t, s in enumerate(seeds):
        push(t, s)
    active = set(range(k))
    while active:
        t = min(active, key=lambda a: (totals[a], a))
        while frontier[t] and label[frontier[t][0][2]] >= 0:
            heapq.heappop(frontier[t])
        if not frontier[t]:
            active.discard(t)
            continue
        _, _, v = heapq.heappop(frontier[t])
        label[v] = t
        totals[t] += load[v]
        push(t, v)
    for u in np.where(label < 0)[0]:   # islands: nearest seed
        label[u] = int(np.argmin([np.hypot(*(xy[u] - xy[s])) for s in seeds]))
    return refine(label, load, neighbours, k)


def _connected_without(label: np.ndarray, neighbours, t: int, u: int) -> bool:
    members = [v for v in np.where(label == t)[0] if v != u]
    if not members:
        return False
    seen, stack = {members[0]}, [members[0]]
    while stack:
        a = stack.pop()
        for b in neighbours[a]:
            if b != u and label[b] == t and b not in seen:
                seen.add(b)
                stack.append(b)
    return len(seen) == len(members)


def refine(label: np.ndarray, load: np.ndarray, neighbours, k: int, max_moves: int = 5000) -> np.ndarray:
    """Local search: move a boundary unit from a heavier to a lighter neighbouring
    territory when that lowers the larger of the two loads and keeps the donor contiguous."""
    totals = np.array([load[label == t].sum() for t in range(k)])
    moves = 0
    improved = True
    while improved and moves < max_moves:
        improved = False
        order = np.argsort(-totals)
        for a in order:
            boundary = [(u, b) for u in np.where(label == a)[0] for b in {int(label[v]) for v in neighbours[u]}
                        if b != a and totals[b] + load[u] < totals[a]]
            boundary.sort(key=lambda ub: (totals[ub[1]], -load[ub[0]]))
            for u, b in boundary:
                if load[u] <= 0 or not _connected_without(label, neighbours, a, u):
                    continue
                label[u] = b
                totals[a] -= load[u]
                totals[b] += load[u]
                moves += 1
                improved = True
                break
            if improved:
                break
    return label


def suggest(session: Session, scope: Scope, k: int, metric: str = "customers", hex_size_m: float = 25_000,
            as_of: date | None = None) -> dict:
    if metric not in METRICS:
        raise FilterError("metric", "must be customers, revenue or workload")
    if not 2 <= k <= 50:
        raise FilterError("k", "must be between 2 and 50")
    if not 5_000 <= hex_size_m <= 100_000:
        raise FilterError("hex_size_m", "must be between 5000 and 100000 metres")
    as_of = as_of or date.today()
    rows = _units(session, scope, metric, float(hex_size_m), as_of)
    if len(rows) < k:
        raise FilterError("k", f"only {len(rows)} cells: use smaller cells or fewer territories")
    from libpysal.weights import DistanceBand
    xy = np.array([[r["x"], r["y"]] for r in rows])
    # adjacency by cell index (centroids of clipped cells move, so use the lattice centres)
    centres = np.array([[1.5 * hex_size_m * r["i"],
                         SQRT3 * hex_size_m * r["j"] + (SQRT3 / 2 * hex_size_m if r["i"] % 2 else 0)] for r in rows])
    w = DistanceBand(centres, threshold=SQRT3 * hex_size_m * 1.01, binary=True, silence_warnings=True)
    neighbours = [list(w.neighbors[i]) for i in range(len(rows))]
    load = np.array([float(r["load"]) for r in rows])
    label = grow(xy, load, neighbours, k)
    import shapely
    feats = []
    for t in range(k):
        idx = np.where(label == t)[0]
        cells = shapely.union_all([wkb.loads(bytes(rows[i]["wkb"])) for i in idx])
        clipped = session.execute(text(
            "SELECT ST_AsBinary(ST_CollectionExtract(ST_Intersection(ST_GeomFromEWKT(:g), "
            "(SELECT ST_Union(geom) FROM region)), 3))"), {"g": ewkt(cells)}).scalar()
        geom = as_multi(shapely.make_valid(wkb.loads(bytes(clipped))))
        feats.append({"type": "Feature", "id": t + 1, "geometry": shapely.geometry.mapping(geom),
                      "properties": {"index": t + 1, "name": f"Suggested {t + 1}", "color": PALETTE[t % len(PALETTE)],
                                     "load": round(float(load[idx].sum()), 2), "cells": int(len(idx))}})
    loads = [f["properties"]["load"] for f in feats]
    return {"type": "FeatureCollection", "features": feats,
            "properties": {"k": k, "metric": metric, "hex_size_m": hex_size_m, "as_of": as_of.isoformat(),
                           "total": round(float(load.sum()), 2), "imbalance": imbalance(loads),
                           "method": "capacitated region growing on hexagon cells (contiguous)"}}


def _check_features(features) -> list[dict]:
    """The suggestion's features, each a GeoJSON Feature with a geometry and, optionally,
    properties (an object whose `name`, when given, is a non-empty string of at most 200
    characters); FilterError naming the offending field otherwise."""
    if not isinstance(features, list) or len(features) < 2:
        raise FilterError("features", "a suggestion has at least two territories")
    for i, f in enumerate(features):
        where = f"features[{i}]"
        if not isinstance(f, dict) or f.get("type") != "Feature":
            raise FilterError(where, "must be a GeoJSON Feature")
        if not isinstance(f.get("geometry"), dict):
            raise FilterError(f"{where}.geometry", "required: a GeoJSON Polygon or MultiPolygon")
        props = f.get("properties")
        if props is not None and not isinstance(props, dict):
            raise FilterError(f"{where}.properties", "must be an object or null")
        name = (props or {}).get("name")
        if name is not None and (not isinstance(name, str) or not 1 <= len(name.strip()) <= 200):
            raise FilterError(f"{where}.properties.name", "must be a non-empty string of at most 200 characters")
    return features


def accept(session: Session, scope: Scope, suggestion: dict) -> list[Territory]:
    """Replace the current territories by a suggestion in the caller's transaction.
    Suggested territories take over the existing territory they overlap most (keeping its
    id, name and users); extra existing territories are deleted, missing ones created.
    Membership is recomputed by the territory triggers; territory_history and an audit
    row ('realign') record the change."""
    from geo_crm.territories.geometry import to_multipolygon
    features = _check_features(suggestion.get("features"))
    existing = session.execute(select(Territory).order_by(Territory.id)).scalars().all()
    new_geoms = [to_multipolygon(f["geometry"], f"features[{i}].geometry") for i, f in enumerate(features)]
    pairs = []
    for i, g in enumerate(new_geoms):
        for t in existing:
            a = session.execute(text("SELECT ST_Area(ST_Intersection(geom, ST_GeomFromEWKT(:g))) FROM territory "
                                     "WHERE id = :id"), {"g": ewkt(g), "id": t.id}).scalar() or 0
            pairs.append((-a, i, t.id))
    pairs.sort()
    match: dict[int, int] = {}
    used: set[int] = set()
    for _, i, tid in pairs:
        if i not in match and tid not in used:
            match[i] = tid
            used.add(tid)
    by_id = {t.id: t for t in existing}
    out = []
    for t in existing:
        if t.id not in used:
            session.add(TerritoryHistory(territory_id=t.id, name=t.name, action="delete", geom=None,
                                         changed_by=scope.user_id, note="realigned away"))
            session.delete(t)
    session.flush()
    taken = {t.name for t in existing if t.id in used}
    for i, g in enumerate(new_geoms):
        if i in match:
            t = by_id[match[i]]
            t.geom = ewkt(g)
            t.source = "suggested"
            action = "update"
        else:
            name = (features[i].get("properties") or {}).get("name") or f"Suggested {i + 1}"
            while name in taken:
                name += " *"
            taken.add(name)
            t = Territory(name=name, geom=ewkt(g), source="suggested",
                          color=PALETTE[i % len(PALETTE)])
            session.add(t)
            action = "create"
        session.flush()
        session.refresh(t)
        session.add(TerritoryHistory(territory_id=t.id, name=t.name, action=action, geom=t.geom,
                                     changed_by=scope.user_id, note="accepted suggested alignment"))
        out.append(t)
    session.execute(text(
        "INSERT INTO audit_log (user_id, username, action, entity, entity_id, old, new, remote_addr) "
        "VALUES (nullif(current_setting('geo_crm.user_id', true), '')::int, coalesce(current_setting('geo_crm.username', true), ''), "
        "'realign', 'territory', 'alignment', CAST(:old AS jsonb), CAST(:new AS jsonb), "
        "nullif(current_setting('geo_crm.remote_addr', true), ''))"),
        {"old": json.dumps({"territory_ids": [t.id for t in existing]}),
         "new": json.dumps({"territory_ids": [t.id for t in out], "properties": suggestion.get("properties") or {}})})
    session.flush()
    return out
