"""Density statistics per area: regions, territories or a hex grid.

One feature per area with `count` (visible customers matching the filter), `area_km2`
(geodesic), `per_km2`, `revenue` (sum of non-cancelled orders dated within the 12
months up to `as_of`, EUR; null when the caller may not read orders) and
`per_10k_inhabitants` (customers per 10,000 inhabitants: GeoNames populated places
summed per area; null when the area has no population).

- by region: counts use the stored `customer.region_id` (B-tree), not point-in-polygon;
  population from `place.region_id`. All regions are returned (count 0 included).
- by territory: counts use the stored `customer_territory` membership; territories are
  those the Scope lets the caller see; population from places inside the territory.
- by hex: flat-topped hexagons of edge `hex_size_m` metres in EPSG:3067, the cells of
  `ST_HexagonGrid` over the visible customers' extent; only cells with customers (or,
  from the snapshot, revenue) are returned.

Counts are always live. Revenue comes from the first source that can answer exactly,
named in the collection's properties (`revenue_source`, `revenue_refreshed_at`):
`snapshot` — the density revenue snapshot of geo_crm.spatial.aggregates, taken on
`as_of` (a small GROUP BY per area; a pass over ~one row per customer for hex);
`report_view` — the reports' 12-month view refreshed on `as_of` plus live drafts;
`orders` — summed from the orders (any `as_of`, any filter or scope).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import BigInteger, cast, func, literal_column, select
from sqlalchemy.orm import Session

from geo_crm import matviews
from geo_crm.customers.filters import CustomerFilter, FilterError, apply
from geo_crm.models import Customer, Order
from geo_crm.security.scope import Scope
from geo_crm.spatial import aggregates
from geo_crm.spatial.hexgrid import MAX_HEX_SIZE_M, MIN_HEX_SIZE_M, cell_sql, cells_sql

BY = ("region", "territory", "hex")
SIMPLIFY_DEG = 0.002   # ~100-200 m: output geometry simplification for region/territory
MAX_HEX_CELLS = 400_000


def _compile(session: Session, stmt) -> tuple[str, dict]:
    c = stmt.compile(dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True})
    return str(c), dict(c.params)


# `customer.geom_3067` = ST_Transform(geom, 3067), a stored generated column (migration
# 0011): null exactly when geom is null, and covered by `ix_customer_area_cover
# (region_id, id) INCLUDE (geom_3067)`, so unfiltered area counts are index-only scans.
GEOM_3067 = literal_column("customer.geom_3067")
REVENUE_VIEW = "mv_customer_revenue_12m"


def _visible_sql(session: Session, scope: Scope, f: CustomerFilter | None, *cols):
    stmt = apply(select(*cols), f, scope).where(GEOM_3067.is_not(None))
    return _compile(session, stmt)


def _view_freshness(session: Session) -> tuple[date | None, datetime | None]:
    """(as_of, refreshed_at) of the 12-month revenue view; (None, None) until it is
    populated."""
    st = matviews.status(session, [REVENUE_VIEW]).get(REVENUE_VIEW)
    if not st or not st["populated"]:
        return None, None
    return st["as_of"], st["refreshed_at"]


@dataclass
class RevenueInfo:
    """Where a density response's revenue came from (None: no revenue)."""
    source: str | None = None
    refreshed_at: datetime | None = None


def _snapshot_revenue(session: Session, scope: Scope, f, by: str, as_of: date, info: RevenueInfo,
                      area_col: str) -> tuple[str, dict] | None:
    """SQL of (area_id, revenue) per region or territory from the density snapshot, or
    None when it cannot answer exactly (see geo_crm.spatial.aggregates)."""
    if not scope.can("order.read"):
        return None
    name = {"region": aggregates.REGION_VIEW, "territory": aggregates.TERRITORY_VIEW}[by]
    t = aggregates.view(name, "region_id", "territory_id", "revenue")
    ok = aggregates.usable(session, scope, f, by, as_of, t)
    if ok is None:
        return None
    snap, pred = ok
    stmt = (select(t.c[area_col].label("area_id"), func.sum(t.c.revenue).label("revenue"))
            .where(pred).group_by(t.c[area_col]))
    info.source, info.refreshed_at = "snapshot", snap.refreshed_at
    return _rename(*_compile(session, stmt), "s_")


def _revenue_join(session: Session, scope: Scope, as_of: date, id_col: str,
                  info: RevenueInfo | None = None) -> tuple[str, str, dict] | None:
    """Revenue per customer over the 12 months up to `as_of` (orders the caller may read):
    the sum of non-cancelled orders dated in (as_of - 365 days, as_of]. Returns
    (LEFT JOIN clauses on customer id `id_col`, per-customer revenue expression (null or
    0 when none), params); None when the caller may not read orders.

    When the report view `mv_customer_revenue_12m` was refreshed on `as_of` (the default
    "today" of the density map), confirmed and delivered orders come from it (the same
    window and statuses; it is as fresh as the reports) and only draft orders, the one
    other non-cancelled status, are summed live from their partial index: a merge join on
    customer id instead of aggregating a year of orders per request. The caller's
    visibility comes from the visible customers being joined (every role that may read
    orders sees the orders of the customers it sees; the logistics role's order filter
    also drops drafts, and is applied to them here)."""
    if not scope.can("order.read"):
        return None
    since = as_of - timedelta(days=365)
    info = info if info is not None else RevenueInfo()
    view_as_of, view_refreshed_at = _view_freshness(session)
    if view_as_of == as_of:
        info.source, info.refreshed_at = "report_view", view_refreshed_at
        drafts = (select(Order.customer_id, func.sum(Order.total_amount).label("revenue"))
                  .where(Order.status == "draft", Order.order_date > since, Order.order_date <= as_of,
                         scope.order_filter())
                  .group_by(Order.customer_id))
        dsql, dparams = _rename(*_compile(session, drafts), "d_")
        joins = (f"LEFT JOIN {REVENUE_VIEW} rvm ON rvm.customer_id = {id_col} "
                 f"LEFT JOIN ({dsql}) rvd ON rvd.customer_id = {id_col}")
        return joins, "(coalesce(rvm.revenue, 0) + coalesce(rvd.revenue, 0))", dparams
    stmt = (select(Order.customer_id, func.sum(Order.total_amount).label("revenue"))
            .where(Order.status != "cancelled", Order.order_date > since, Order.order_date <= as_of,
                   scope.order_filter())
            .group_by(Order.customer_id))
    rsql, rparams = _rename(*_compile(session, stmt), "r_")
    info.source, info.refreshed_at = "orders", None
    return f"LEFT JOIN ({rsql}) rv ON rv.customer_id = {id_col}", "rv.revenue", rparams


def _rename(sql: str, params: dict, prefix: str) -> tuple[str, dict]:
    """Make bound parameter names unique when two compiled statements are combined."""
    out = sql
    new = {}
    for k in sorted(params, key=len, reverse=True):
        out = out.replace(f"%({k})s", f"%({prefix}{k})s")
        new[prefix + k] = params[k]
    return out, new


def _run(session: Session, sql: str, params: dict):
    return session.connection().exec_driver_sql(sql, params).mappings().all()


def _features(rows, id_key="id") -> dict:
    feats = []
    for r in rows:
        count = int(r["count"])
        area = float(r["area_km2"]) if r["area_km2"] is not None else None
        pop = int(r["population"] or 0)
        rev = r.get("revenue")
        props = {"id": r[id_key], "name": r["name"], "count": count,
                 "area_km2": round(area, 3) if area is not None else None,
                 "per_km2": float(f"{count / area:.6g}") if area else None,   # 6 significant digits
                 "revenue": (round(float(rev or 0), 2) if rev is not None or r.get("has_revenue") else None),
                 "population": pop,
                 "per_10k_inhabitants": round(count * 10_000 / pop, 4) if pop else None}
        for extra in ("i", "j"):
            if extra in r:
                props[extra] = r[extra]
        geom = r["geometry"]
        feats.append({"type": "Feature", "id": r[id_key], "properties": props,
                      "geometry": json.loads(geom) if isinstance(geom, str) else geom})
    return {"type": "FeatureCollection", "features": feats}


def density(session: Session, scope: Scope, by: str = "region", f: CustomerFilter | None = None,
            hex_size_m: float = 5000, as_of: date | None = None, simplify: bool = True,
            with_revenue: bool = True) -> dict:
    """Density FeatureCollection (see module docstring). `as_of` defaults to today.
    `with_revenue=False` skips the order aggregation (revenue is then null)."""
    if not with_revenue:
        scope = _NoOrders(scope)
    if by not in BY:
        raise FilterError("by", "must be one of region, territory, hex")
    as_of = as_of or date.today()
    info = RevenueInfo()
    if by == "region":
        fc = _by_region(session, scope, f, as_of, simplify, info)
    elif by == "territory":
        fc = _by_territory(session, scope, f, as_of, simplify, info)
    else:
        if not MIN_HEX_SIZE_M <= hex_size_m <= MAX_HEX_SIZE_M:
            raise FilterError("hex_size_m", f"must be between {MIN_HEX_SIZE_M} and {MAX_HEX_SIZE_M} metres")
        fc = _by_hex(session, scope, f, float(hex_size_m), as_of, info)
    fc["properties"] = {"by": by, "as_of": as_of.isoformat(), "revenue_months": 12,
                        "revenue_source": info.source,
                        "revenue_refreshed_at": info.refreshed_at.isoformat() if info.refreshed_at else None,
                        "hex_size_m": float(hex_size_m) if by == "hex" else None,
                        "total_count": sum(x["properties"]["count"] for x in fc["features"])}
    return fc


class _NoOrders:
    """A Scope wrapper that answers 'no' to order.read, so revenue is left out."""

    def __init__(self, scope):
        self._scope = scope

    def can(self, action: str) -> bool:
        return action != "order.read" and self._scope.can(action)

    def __getattr__(self, name):
        return getattr(self._scope, name)


def _geom_sql(col: str, simplify: bool) -> str:
    g = f"ST_SimplifyPreserveTopology({col}, {SIMPLIFY_DEG})" if simplify else col
    return f"ST_AsGeoJSON({g}, 6)"


def _by_region(session, scope, f, as_of, simplify, info) -> dict:
    vsql, vparams = _rename(*_visible_sql(session, scope, f, Customer.id, Customer.region_id), "v_")
    snap = _snapshot_revenue(session, scope, f, "region", as_of, info, "region_id")
    rev = None if snap else _revenue_join(session, scope, as_of, "vis.id", info)
    rev_cte, rev_outer = "", ""
    if snap:
        ssql, rparams = snap
        rev_sum = "NULL::numeric"
        rev_cte = f", rvs AS ({ssql})"
        rev_outer = "LEFT JOIN rvs ON rvs.area_id = r.id"
        rev_col = "coalesce(rvs.revenue, 0) AS revenue, true AS has_revenue"
        rev_join = ""
    elif rev is None:
        rev_join, rev_sum, rparams = "", "NULL::numeric", {}
        rev_col = "NULL::numeric AS revenue, false AS has_revenue"
    else:
        rev_join, expr, rparams = rev
        rev_sum = f"sum({expr})"
        rev_col = "coalesce(cnt.revenue, 0) AS revenue, true AS has_revenue"
    # one pass over the visible customers (an index-only scan in id order, merge-joined
    # with the revenue view when revenue comes from it, when nothing narrows them)
    sql = f"""
    WITH cnt AS (SELECT vis.region_id, count(*) AS count, {rev_sum} AS revenue
                   FROM ({vsql}) vis {rev_join} WHERE vis.region_id IS NOT NULL GROUP BY vis.region_id),
    pop AS (SELECT region_id, sum(population) AS population FROM place WHERE region_id IS NOT NULL
             GROUP BY region_id){rev_cte}
    SELECT r.id, r.name, coalesce(cnt.count, 0) AS count, r.area_km2, coalesce(pop.population, 0) AS population,
           {rev_col},
           {_geom_sql('r.geom', simplify)} AS geometry
      FROM region r LEFT JOIN cnt ON cnt.region_id = r.id LEFT JOIN pop ON pop.region_id = r.id {rev_outer}
     ORDER BY r.id"""
    return _features(_run(session, sql, {**vparams, **rparams}))


def _by_territory(session, scope, f, as_of, simplify, info) -> dict:
    from geo_crm.models import Territory
    vsql, vparams = _rename(*_visible_sql(session, scope, f, Customer.id), "v_")
    tsql, tparams = _rename(*_compile(session, select(Territory.id).where(scope.territory_filter())), "t_")
    snap = _snapshot_revenue(session, scope, f, "territory", as_of, info, "territory_id")
    rev = None if snap else _revenue_join(session, scope, as_of, "vis.id", info)
    if snap:
        ssql, rparams = snap
        rev_join = f"LEFT JOIN ({ssql}) rvt ON rvt.area_id = t.id"
        rev_col = "coalesce(rvt.revenue, 0) AS revenue, true AS has_revenue"
    elif rev is None:
        rev_join, rev_col, rparams = "", "NULL::numeric AS revenue, false AS has_revenue", {}
    else:
        joins, expr, rparams = rev
        rev_join = (f"LEFT JOIN (SELECT ct.territory_id, sum({expr}) AS revenue FROM vis "
                    f"JOIN customer_territory ct ON ct.customer_id = vis.id {joins} "
                    f"GROUP BY ct.territory_id) rvt ON rvt.territory_id = t.id")
        rev_col = "coalesce(rvt.revenue, 0) AS revenue, true AS has_revenue"
    # Every customer of a territory the caller may list is visible when the caller sees
    # everything or is a regional manager (who lists only their own territories, and sees
    # every customer in them); `customer_territory` holds located customers only (the
    # membership is point-in-polygon of customer.geom, migrations 0002/0015). Unfiltered,
    # the counts are then the membership rows per territory: no million-row join.
    unfiltered = f is None or not f.model_dump(exclude_none=True)
    if unfiltered and (scope.sees_everything or scope.role == "regional_manager"):
        counted = "customer_territory ct"
    else:
        counted = "vis JOIN customer_territory ct ON ct.customer_id = vis.id"
    sql = f"""
    WITH vis AS MATERIALIZED ({vsql}),
    tv AS ({tsql}),
    cnt AS (SELECT ct.territory_id, count(*) AS count FROM {counted}
             WHERE ct.territory_id IN (SELECT id FROM tv) GROUP BY ct.territory_id)
    SELECT t.id, t.name, coalesce(cnt.count, 0) AS count, t.area_km2,
           (SELECT coalesce(sum(p.population), 0) FROM place p WHERE ST_Intersects(t.geom, p.geom)) AS population,
           {rev_col},
           {_geom_sql('t.geom', simplify)} AS geometry
      FROM territory t LEFT JOIN cnt ON cnt.territory_id = t.id {rev_join}
     WHERE t.id IN (SELECT id FROM tv)
     ORDER BY t.id"""
    return _features(_run(session, sql, {**vparams, **tparams, **rparams}))


def hex_cells_sql(session, scope, f, size_param="%(size)s", revenue: tuple[str, str] | None = None
                  ) -> tuple[str, dict]:
    """SQL of (id, i, j) per visible customer: the hex cell of each customer. With
    `revenue` = (LEFT JOIN clauses on `v.id`, expression), also a `revenue` column."""
    vsql, vparams = _rename(*_visible_sql(session, scope, f, Customer.id, GEOM_3067.label("g")), "v_")
    joins, expr = revenue or ("", None)
    extra = f", {expr} AS revenue" if expr else ""
    # the stored EPSG:3067 point (no per-request projection); OFFSET 0 keeps ST_X/ST_Y in
    # their own subquery, else the planner inlines them into every use of x and y
    src = f"SELECT v.id, ST_X(v.g) AS x, ST_Y(v.g) AS y{extra} FROM ({vsql}) v {joins} OFFSET 0"
    return cells_sql(src, size_param, keep="id, revenue" if expr else "id"), vparams


PLACE_XY_SQL = ("(SELECT ST_X(pg) AS x, ST_Y(pg) AS y, population FROM "
                "(SELECT ST_Transform(geom, 3067) AS pg, population FROM place) p0 OFFSET 0)")


def _by_hex(session, scope, f, size, as_of, info) -> dict:
    """Counts (and revenue from the snapshot) in numpy; revenue the snapshot cannot answer
    in one SQL pass over the visible customers joined to their revenue."""
    if not scope.can("order.read"):
        return _by_hex_arrays(session, scope, f, size, None)
    snap = _snapshot_view(session, scope, f, "hex", as_of, info)
    if snap is not None:
        return _by_hex_arrays(session, scope, f, size, snap)
    pi, pj = cell_sql("x", "y", "%(size)s")
    joins, expr, rparams = _revenue_join(session, scope, as_of, "v.id", info)
    csql, cparams = hex_cells_sql(session, scope, f, revenue=(joins, expr))
    rev_col = "coalesce(hexes.revenue, 0) AS revenue, true AS has_revenue"
    # one pass over the visible customers: cell index, count and revenue per cell
    agg = """agg AS (SELECT cells.i, cells.j, count(*) AS count, sum(cells.revenue) AS revenue
                   FROM ({csql}) cells GROUP BY cells.i, cells.j)""".replace("{csql}", csql)
    sql = f"""
    WITH {agg},
    pop AS (SELECT i, j, sum(population) AS population FROM (
              SELECT {pi} AS i, {pj} AS j, population FROM {PLACE_XY_SQL} p0) p GROUP BY i, j),
    hexes AS (SELECT agg.*, ST_Transform(ST_SetSRID(ST_Hexagon(%(size)s, agg.i, agg.j), 3067), 4326) AS h FROM agg)
    SELECT hexes.i || ':' || hexes.j AS id, hexes.i, hexes.j, 'hex ' || hexes.i || ',' || hexes.j AS name,
           hexes.count, ST_Area(h::geography) / 1e6 AS area_km2,
           coalesce(pop.population, 0) AS population, {rev_col},
           ST_AsGeoJSON(h, 6) AS geometry
      FROM hexes LEFT JOIN pop ON pop.i = hexes.i AND pop.j = hexes.j
     ORDER BY hexes.i, hexes.j"""
    return _features(_run(session, sql, {**cparams, **rparams, "size": size}))


def _snapshot_view(session, scope, f, by, as_of, info):
    """(snapshot view table, predicate) when the snapshot answers revenue exactly, else None."""
    t = aggregates.view(aggregates.CUSTOMER_VIEW, "region_id", "revenue", "x", "y")
    ok = aggregates.usable(session, scope, f, by, as_of, t)
    if ok is None:
        return None
    info.source, info.refreshed_at = "snapshot", ok[0].refreshed_at
    return t, ok[1]


DENSE_BINS = 4_000_000   # cells of the (i, j) bounding box up to which binning uses a dense array


def _bin(i, j, weights=None):
    """[((i, j), count or exact integer sum of `weights`)] per distinct cell, in (i, j) order.
    Integer weights (cents) are summed in float64: exact below 2^53."""
    import numpy as np
    if not len(i):
        return []
    w = None if weights is None else weights.astype(np.float64)
    i0, j0 = int(i.min()), int(j.min())
    ni, nj = int(i.max()) - i0 + 1, int(j.max()) - j0 + 1
    if ni * nj <= DENSE_BINS:                        # a small box (e.g. 1 km cells over Finland): bincount
        sums = np.bincount((i - i0) * nj + (j - j0), weights=w, minlength=ni * nj)
        keys = np.flatnonzero(np.bincount((i - i0) * nj + (j - j0), minlength=ni * nj)) if w is not None \
            else np.flatnonzero(sums)
        vals = np.rint(sums[keys]).astype(np.int64)
        return [((i0 + k // nj, j0 + k % nj), v) for k, v in zip(keys.tolist(), vals.tolist())]
    key = (i << 32) + (j + (1 << 31))                # one int64 per cell (|i|, |j| < 2^31)
    uniq, inv = np.unique(key, return_inverse=True)
    sums = np.bincount(inv.ravel(), weights=w, minlength=len(uniq))
    vals = np.rint(sums).astype(np.int64)
    return [((int(k >> 32), int((k & 0xFFFFFFFF) - (1 << 31))), v) for k, v in zip(uniq.tolist(), vals.tolist())]


def _by_hex_arrays(session, scope, f, size, snap) -> dict:
    """Hex density computed in numpy: the visible customers' EPSG:3067 points (and, from
    the snapshot `snap` = (view, predicate), the points and revenue in integer cents)
    fetched with one binary COPY each, binned with `hexgrid.cells_of` — the arithmetic of
    `cells_sql`, so the same cells — and summed exactly. A million points take a fraction
    of the time of the same arithmetic row by row in SQL. Hexagon geometry, geodesic area
    and population of the non-empty cells then come from PostGIS."""
    from geo_crm.analytics.arrays import fetch_columns
    from geo_crm.spatial.hexgrid import cells_of
    pts = apply(select(func.ST_X(GEOM_3067).label("x"), func.ST_Y(GEOM_3067).label("y")).select_from(Customer),
                f, scope).where(GEOM_3067.is_not(None))
    cols = fetch_columns(session, pts, [("x", "float8"), ("y", "float8")])
    cells: dict[tuple[int, int], list] = {}
    for (i, j), n in _bin(*cells_of(cols["x"], cols["y"], size)):
        cells[(i, j)] = [n, 0]
    if snap is not None:
        t, pred = snap
        rv = fetch_columns(session, select(t.c.x, t.c.y, cast(func.round(t.c.revenue * 100), BigInteger))
                           .where(pred), [("x", "float8"), ("y", "float8"), ("cents", "int8")])
        for (i, j), c in _bin(*cells_of(rv["x"], rv["y"], size), rv["cents"]):
            cells.setdefault((i, j), [0, 0])[1] = c
    if not cells:
        return _features([])
    pi, pj = cell_sql("x", "y", "%(size)s")
    ordered = sorted(cells)
    sql = f"""
    WITH c AS (SELECT * FROM unnest(%(ci)s::integer[], %(cj)s::integer[]) AS c(i, j)),
    pop AS (SELECT i, j, sum(population) AS population FROM (
              SELECT {pi} AS i, {pj} AS j, population FROM {PLACE_XY_SQL} p0) p GROUP BY i, j),
    hexes AS (SELECT c.i, c.j, ST_Transform(ST_SetSRID(ST_Hexagon(%(size)s, c.i, c.j), 3067), 4326) AS h FROM c)
    SELECT json_agg(json_build_array(hexes.i, hexes.j, ST_Area(h::geography) / 1e6, coalesce(pop.population, 0),
                                     ST_AsGeoJSON(h, 6)::json) ORDER BY hexes.i, hexes.j)::text
      FROM hexes LEFT JOIN pop ON pop.i = hexes.i AND pop.j = hexes.j"""
    # one JSON document for all cells: one parse instead of one per hexagon
    (doc,), = session.connection().exec_driver_sql(
        sql, {"ci": [k[0] for k in ordered], "cj": [k[1] for k in ordered], "size": size}).all()
    out = []
    for i, j, area_km2, population, geometry in json.loads(doc):
        n, cents = cells[(i, j)]
        out.append({"id": f"{i}:{j}", "i": i, "j": j, "name": f"hex {i},{j}", "count": n, "area_km2": area_km2,
                    "population": population, "revenue": cents / 100 if snap is not None else None,
                    "has_revenue": snap is not None, "geometry": geometry})
    return _features(out)
