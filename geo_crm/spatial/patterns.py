"""Spatial patterns of the customer base.

- `hot_spots`: Getis-Ord Gi* (esda.G_Local, star=True) of customer counts on the hex grid
  (EPSG:3067 hexagons, see hexgrid.py). The study area is every grid cell over the
  visible customers' extent that touches land (the union of regions), empty cells
  included (count 0); weights are hexagon contiguity (centres √3·size apart), binary.
  Each cell gets `z`, `p` (normal approximation) and `class`:
  hot_99/hot_95/hot_90, cold_99/cold_95/cold_90 or `ns`.
- `underserved_areas`: regions or hex cells with inhabitants and a penetration
  (customers per 10k inhabitants) below a threshold.
- `far_customers`: visible customers farther than `min_km` from any branch or partner.
- `branch_distance_table`: per branch, distance to the customers it serves (count,
  median, p90, max, km on the spheroid).
"""
from __future__ import annotations

import json
import math

import numpy as np
from sqlalchemy.orm import Session

from geo_crm.customers.filters import CustomerFilter, FilterError
from geo_crm.models import Customer
from geo_crm.security.scope import Scope
from geo_crm.spatial.density import PLACE_XY_SQL, _rename, _run, _visible_sql, density, hex_cells_sql
from geo_crm.spatial.hexgrid import SQRT3

MIN_HOTSPOT_HEX_M = 1000
MAX_HOTSPOT_CELLS = 60_000


def _classify(z: float, p: float) -> str:
    if not (math.isfinite(z) and math.isfinite(p)):
        return "ns"
    side = "hot" if z > 0 else "cold"
    for level, alpha in ((99, 0.01), (95, 0.05), (90, 0.10)):
        if p <= alpha:
            return f"{side}_{level}"
    return "ns"


def hot_spots(session: Session, scope: Scope, f: CustomerFilter | None = None,
              hex_size_m: float = 10_000) -> dict:
    """Gi* hot/cold spots of customer counts per hex cell (FeatureCollection)."""
    if hex_size_m < MIN_HOTSPOT_HEX_M:
        raise FilterError("hex_size_m", f"hot spots need cells of at least {MIN_HOTSPOT_HEX_M} m")
    csql, cparams = hex_cells_sql(session, scope, f)
    vsql, vparams = _rename(*_visible_sql(session, scope, f, Customer.geom), "e_")
    sql = f"""
    WITH cells AS MATERIALIZED ({csql}),
    agg AS (SELECT i, j, count(*) AS count FROM cells GROUP BY i, j),
    ext AS (SELECT ST_SetSRID(ST_Extent(ST_Transform(geom, 3067)), 3067) AS e FROM ({vsql}) v),
    grid AS (SELECT h.i, h.j, h.geom FROM ext, ST_HexagonGrid(%(size)s, ext.e) h WHERE ext.e IS NOT NULL)
    SELECT g.i, g.j, coalesce(agg.count, 0) AS count,
           ST_X(ST_Centroid(g.geom)) AS cx, ST_Y(ST_Centroid(g.geom)) AS cy,
           ST_AsGeoJSON(ST_Transform(g.geom, 4326), 6) AS geometry
      FROM grid g LEFT JOIN agg ON agg.i = g.i AND agg.j = g.j
     WHERE agg.count IS NOT NULL OR EXISTS (
           SELECT 1 FROM region_part rp WHERE ST_Intersects(rp.geom, ST_Transform(g.geom, 4326)))
     ORDER BY g.i, g.j LIMIT {MAX_HOTSPOT_CELLS + 1}"""
    rows = _run(session, sql, {**cparams, **vparams, "size": float(hex_size_m)})
    if len(rows) > MAX_HOTSPOT_CELLS:
        raise FilterError("hex_size_m", "too many cells for a hot-spot analysis: use larger cells")
    props = {"hex_size_m": float(hex_size_m), "method": "Getis-Ord Gi* (esda.G_Local, star=True)",
             "cells": len(rows)}
    if len(rows) < 3 or sum(r["count"] for r in rows) == 0:
        return {"type": "FeatureCollection", "features": [], "properties": props}
    from esda.getisord import G_Local
    from libpysal.weights import DistanceBand
    pts = np.array([[r["cx"], r["cy"]] for r in rows])
    y = np.array([float(r["count"]) for r in rows])
    w = DistanceBand(pts, threshold=SQRT3 * hex_size_m * 1.01, binary=True, silence_warnings=True)
    g = G_Local(y, w, star=True, permutations=0, transform="B")
    feats = []
    for r, z, p in zip(rows, g.Zs, g.p_norm):
        cls = _classify(float(z), float(p))
        if r["count"] == 0 and cls == "ns":
            continue
        feats.append({"type": "Feature", "id": f"{r['i']}:{r['j']}", "geometry": json.loads(r["geometry"]),
                      "properties": {"id": f"{r['i']}:{r['j']}", "count": int(r["count"]),
                                     "z": round(float(z), 4), "p": round(float(p), 6), "class": cls}})
    return {"type": "FeatureCollection", "features": feats, "properties": props}


def underserved_areas(session: Session, scope: Scope, f: CustomerFilter | None = None, by: str = "region",
                      hex_size_m: float = 10_000, max_per_10k: float | None = None,
                      min_population: int = 1000) -> dict:
    """Areas with at least `min_population` inhabitants and fewer than `max_per_10k`
    customers per 10,000 inhabitants (default: half the overall visible rate). Hex
    mode looks at every cell with population, customers or not."""
    if by == "hex":
        fc = _hex_population_cells(session, scope, f, hex_size_m)
    else:
        fc = density(session, scope, by, f)
    feats = [x for x in fc["features"] if (x["properties"]["population"] or 0) >= min_population]
    pop = sum(x["properties"]["population"] for x in feats)
    cnt = sum(x["properties"]["count"] for x in feats)
    overall = cnt * 10_000 / pop if pop else 0.0
    threshold = max_per_10k if max_per_10k is not None else overall / 2
    out = [x for x in feats if (x["properties"]["per_10k_inhabitants"] or 0) < threshold]
    for x in out:
        p = x["properties"]
        p["expected"] = round(p["population"] * overall / 10_000, 1)
        p["gap"] = round(p["expected"] - p["count"], 1)
    out.sort(key=lambda x: -x["properties"]["gap"])
    return {"type": "FeatureCollection", "features": out,
            "properties": {"by": by, "overall_per_10k": round(overall, 4), "threshold_per_10k": round(threshold, 4),
                           "min_population": min_population}}


def _hex_population_cells(session, scope, f, size) -> dict:
    from geo_crm.spatial.hexgrid import cell_sql
    csql, cparams = hex_cells_sql(session, scope, f)
    pi, pj = cell_sql("x", "y", "%(size)s")
    sql = f"""
    WITH cells AS MATERIALIZED ({csql}),
    agg AS (SELECT i, j, count(*) AS count FROM cells GROUP BY i, j),
    pop AS (SELECT i, j, sum(population) AS population FROM (
              SELECT {pi} AS i, {pj} AS j, population FROM {PLACE_XY_SQL} p0) p GROUP BY i, j)
    SELECT pop.i || ':' || pop.j AS id, 'hex ' || pop.i || ',' || pop.j AS name, pop.population,
           coalesce(agg.count, 0) AS count,
           ST_AsGeoJSON(ST_Transform(ST_SetSRID(ST_Hexagon(%(size)s, pop.i, pop.j), 3067), 4326), 6) AS geometry
      FROM pop LEFT JOIN agg ON agg.i = pop.i AND agg.j = pop.j"""
    feats = []
    for r in _run(session, sql, {**cparams, "size": float(size)}):
        pop = int(r["population"])
        feats.append({"type": "Feature", "id": r["id"], "geometry": json.loads(r["geometry"]),
                      "properties": {"id": r["id"], "name": r["name"], "count": int(r["count"]),
                                     "population": pop,
                                     "per_10k_inhabitants": round(r["count"] * 10_000 / pop, 4) if pop else None}})
    return {"type": "FeatureCollection", "features": feats}


def far_customers(session: Session, scope: Scope, f: CustomerFilter | None = None, min_km: float = 50,
                  limit: int = 100) -> dict:
    """Visible customers whose nearest branch or partner is farther than `min_km`
    (nearest site by KNN on the GiST index, then spheroidal distance), farthest first."""
    if not 0 < min_km <= 2000:
        raise FilterError("min_km", "must be in 0 < min_km <= 2000")
    sites = ["SELECT geom FROM branch"]
    if scope.can("partner.read"):
        sites.append("SELECT geom FROM partner")
    vsql, vparams = _rename(*_visible_sql(session, scope, f, Customer.id, Customer.code, Customer.name,
                                          Customer.geom), "v_")
    # exact nearest site per customer: planar KNN (GiST) gives an upper bound D on the
    # spheroidal distance; the minimum over sites within D is the true nearest
    knn = " UNION ALL ".join(
        f"(SELECT min(ST_Distance(s.geom::geography, v.geom::geography)) AS d FROM ({q}) s "
        f"WHERE ST_DWithin(s.geom::geography, v.geom::geography, 1 + (SELECT ST_Distance(s2.geom::geography, "
        f"v.geom::geography) FROM ({q}) s2 ORDER BY s2.geom <-> v.geom LIMIT 1)))" for q in sites)
    sql = f"""
    WITH far AS MATERIALIZED (
      SELECT v.id, v.code, v.name, ST_X(v.geom) AS lon, ST_Y(v.geom) AS lat,
             (SELECT min(d) FROM ({knn}) k) / 1000.0 AS nearest_km
        FROM ({vsql}) v)
    SELECT *, count(*) OVER () AS total FROM far WHERE nearest_km > %(min_km)s
     ORDER BY nearest_km DESC, id LIMIT %(limit)s"""
    rows = _run(session, sql, {**vparams, "min_km": float(min_km), "limit": int(limit)})
    return {"min_km": min_km, "total": int(rows[0]["total"]) if rows else 0,
            "items": [{"id": r["id"], "code": r["code"], "name": r["name"], "lon": r["lon"], "lat": r["lat"],
                       "nearest_site_km": round(float(r["nearest_km"]), 3)} for r in rows]}


def branch_distance_table(session: Session, scope: Scope, f: CustomerFilter | None = None) -> list[dict]:
    """Per branch: visible customers it serves (stored `service_branch_id`) and their
    distance to the branch in km: count, median, p90, max (spheroidal)."""
    vsql, vparams = _rename(*_visible_sql(session, scope, f, Customer.id, Customer.service_branch_id,
                                          Customer.geom), "v_")
    sql = f"""
    SELECT b.id, b.code, b.name, count(v.id) AS count,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY ST_Distance(v.geom::geography, b.geom::geography)) / 1000 AS median_km,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY ST_Distance(v.geom::geography, b.geom::geography)) / 1000 AS p90_km,
           max(ST_Distance(v.geom::geography, b.geom::geography)) / 1000 AS max_km
      FROM branch b LEFT JOIN ({vsql}) v ON v.service_branch_id = b.id
     GROUP BY b.id ORDER BY b.name, b.id"""
    out = []
    for r in _run(session, sql, vparams):
        out.append({"branch_id": r["id"], "code": r["code"], "name": r["name"], "count": int(r["count"]),
                    **{k: (round(float(r[k]), 3) if r[k] is not None else None)
                       for k in ("median_km", "p90_km", "max_km")}})
    return out
