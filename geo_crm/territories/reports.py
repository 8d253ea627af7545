"""Territory reports: overlaps and gaps, and the balance report.

Areas are km² on the spheroid. The country is the union of regions; a gap is the part
of it no territory covers. Balance figures count only what the caller may see.
"""
from __future__ import annotations

import json
import math
import statistics
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from geo_crm.models import Customer, Opportunity, Order, ServiceRecord, Territory
from geo_crm.security.scope import Scope
from geo_crm.spatial.density import _compile, _rename, _run
from geo_crm.territories.service import MIN_OVERLAP_KM2

OPEN_SERVICE = ("new", "assigned", "in_progress")


def overlaps_and_gaps(session: Session, scope: Scope) -> dict:
    """Pairwise overlaps (km², geometry) of visible territories and the uncovered part of
    the country (union of regions minus union of territories)."""
    tsql, tparams = _rename(*_compile(session, select(Territory.id).where(scope.territory_filter())), "t_")
    ov = _run(session, f"""
      WITH tv AS ({tsql})
      SELECT a.id AS a_id, a.name AS a_name, b.id AS b_id, b.name AS b_name,
             ST_Area(ST_Intersection(a.geom, b.geom)::geography) / 1e6 AS km2,
             ST_AsGeoJSON(ST_Intersection(a.geom, b.geom), 6) AS geometry
        FROM territory a JOIN territory b ON a.id < b.id AND a.geom && b.geom AND ST_Intersects(a.geom, b.geom)
       WHERE a.id IN (SELECT id FROM tv) AND b.id IN (SELECT id FROM tv)""", tparams)
    overlaps = [{"type": "Feature", "geometry": json.loads(r["geometry"]),
                 "properties": {"a": {"id": r["a_id"], "name": r["a_name"]}, "b": {"id": r["b_id"], "name": r["b_name"]},
                                "overlap_km2": round(float(r["km2"]), 3)}}
                for r in ov if r["km2"] and r["km2"] > MIN_OVERLAP_KM2]
    gap = _run(session, f"""
      WITH tv AS ({tsql}),
      country AS (SELECT ST_Union(geom) AS g FROM region),
      covered AS (SELECT ST_Union(geom) AS g FROM territory WHERE id IN (SELECT id FROM tv))
      SELECT ST_Area(country.g::geography) / 1e6 AS country_km2,
             ST_Area(ST_Difference(country.g, coalesce(covered.g, 'SRID=4326;POLYGON EMPTY'::geometry))::geography) / 1e6 AS gap_km2,
             ST_AsGeoJSON(ST_SimplifyPreserveTopology(ST_Difference(country.g,
                 coalesce(covered.g, 'SRID=4326;POLYGON EMPTY'::geometry)), 0.002), 6) AS geometry
        FROM country, covered""", tparams)[0]
    country = float(gap["country_km2"] or 0)
    gap_km2 = float(gap["gap_km2"] or 0)
    return {"overlaps": {"type": "FeatureCollection", "features": overlaps},
            "overlap_km2": round(sum(o["properties"]["overlap_km2"] for o in overlaps), 3),
            "country_km2": round(country, 3), "gap_km2": round(gap_km2, 3),
            "gap_share": round(gap_km2 / country, 6) if country else None,
            "gap": {"type": "Feature", "geometry": json.loads(gap["geometry"]) if gap["geometry"] else None,
                    "properties": {"area_km2": round(gap_km2, 3)}}}


def imbalance(values: list[float]) -> dict:
    """max/min ratio (None when min is 0) and coefficient of variation (population sd / mean)."""
    if not values:
        return {"max": None, "min": None, "max_min_ratio": None, "cv": None}
    mx, mn = max(values), min(values)
    mean = statistics.fmean(values)
    return {"max": mx, "min": mn, "max_min_ratio": round(mx / mn, 4) if mn > 0 else None,
            "cv": round(statistics.pstdev(values) / mean, 4) if mean > 0 else None}


def balance(session: Session, scope: Scope, as_of: date | None = None) -> dict:
    """Per visible territory: customers, revenue (12 months, non-cancelled orders), open
    opportunities, open service records, area_km2, travel burden (sum of distances from
    each customer to its nearest branch, km; and a TSP estimate 0.7·√(n·A) km), and the
    imbalance of each metric across territories."""
    as_of = as_of or date.today()
    cf_sql, cf_params = _rename(*_compile(session, select(Customer.id).where(scope.customer_filter())), "c_")
    of_sql, of_params = _rename(*_compile(session, select(Order.id).where(scope.order_filter())), "o_")
    op_sql, op_params = _rename(*_compile(session, select(Opportunity.id).where(scope.opportunity_filter())), "p_")
    sr_sql, sr_params = _rename(*_compile(session, select(ServiceRecord.id).where(scope.service_record_filter())), "s_")
    tsql, tparams = _rename(*_compile(session, select(Territory.id).where(scope.territory_filter())), "t_")
    rows = _run(session, f"""
      WITH tv AS ({tsql}),
      mem AS MATERIALIZED (SELECT ct.territory_id, ct.customer_id FROM customer_territory ct
                            WHERE ct.territory_id IN (SELECT id FROM tv) AND ct.customer_id IN ({cf_sql}))
      SELECT t.id, t.name, t.color, t.area_km2,
        (SELECT count(*) FROM mem WHERE mem.territory_id = t.id) AS customers,
        (SELECT coalesce(sum(o.total_amount), 0) FROM sales_order o JOIN mem ON mem.customer_id = o.customer_id
          WHERE mem.territory_id = t.id AND o.status <> 'cancelled' AND o.order_date > %(since)s
            AND o.order_date <= %(as_of)s AND o.id IN ({of_sql})) AS revenue,
        (SELECT count(*) FROM opportunity op JOIN mem ON mem.customer_id = op.customer_id
          WHERE mem.territory_id = t.id AND op.status = 'open' AND op.id IN ({op_sql})) AS open_opportunities,
        (SELECT count(*) FROM service_record sr JOIN mem ON mem.customer_id = sr.customer_id
          WHERE mem.territory_id = t.id AND sr.status IN ('new', 'assigned', 'in_progress')
            AND sr.id IN ({sr_sql})) AS open_service,
        (SELECT coalesce(sum((SELECT ST_Distance(b.geom::geography, c.geom::geography) FROM branch b
                               ORDER BY b.geom <-> c.geom LIMIT 1)), 0) / 1000
           FROM mem JOIN customer c ON c.id = mem.customer_id
          WHERE mem.territory_id = t.id AND c.geom IS NOT NULL) AS nearest_branch_km_sum
      FROM territory t WHERE t.id IN (SELECT id FROM tv) ORDER BY t.name""",
                {**cf_params, **of_params, **op_params, **sr_params, **tparams,
                 "since": as_of - timedelta(days=365), "as_of": as_of})
    items = []
    for r in rows:
        n, area = int(r["customers"]), float(r["area_km2"] or 0)
        items.append({"id": r["id"], "name": r["name"], "color": r["color"], "customers": n,
                      "revenue": round(float(r["revenue"]), 2) if scope.can("order.read") else None,
                      "open_opportunities": int(r["open_opportunities"]), "open_service": int(r["open_service"]),
                      "area_km2": round(area, 3),
                      "nearest_branch_km_sum": round(float(r["nearest_branch_km_sum"]), 3),
                      "tsp_estimate_km": round(0.7 * math.sqrt(n * area), 3)})
    metrics = ("customers", "revenue", "open_opportunities", "open_service", "area_km2",
               "nearest_branch_km_sum", "tsp_estimate_km")
    return {"as_of": as_of.isoformat(), "territories": items,
            "imbalance": {m: imbalance([float(i[m]) for i in items if i[m] is not None]) for m in metrics}}
