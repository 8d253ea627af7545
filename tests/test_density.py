"""Density statistics and spatial patterns against independent ground truth: Shapely/
pyproj on the same rows, PostGIS ST_HexagonGrid for the hex cells, a NumPy Gi*."""
from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import numpy as np
import pytest
from pyproj import Geod, Transformer
from shapely import wkb
from shapely.geometry import Point, shape
from shapely.strtree import STRtree
from sqlalchemy import text

from tests.conftest import AS_OF
from tests.test_spatial import rows, territory_ids, visible_ids

GEOD = Geod(ellps="WGS84")
TO_3067 = Transformer.from_crs(4326, 3067, always_xy=True)


def fc(api, user, query):
    r = api(user).get("/api/v1/stats/density?" + query)
    assert r.status_code == 200, r.get_json()
    assert r.mimetype == "application/geo+json"
    return r.get_json()


def test_density_by_region_matches_ground_truth(api, connection):
    body = fc(api, "admin", f"by=region&as_of={AS_OF}")
    regions = {r["id"]: r for r in rows(connection, "SELECT id, name, ST_AsBinary(geom) AS g FROM region")}
    cust = rows(connection, "SELECT id, region_id FROM customer WHERE geom IS NOT NULL")
    count = Counter(c["region_id"] for c in cust)
    places = rows(connection, "SELECT region_id, population FROM place")
    pop = Counter()
    for p in places:
        pop[p["region_id"]] += p["population"]
    since = AS_OF - timedelta(days=365)
    rev = Counter()
    for o in rows(connection, "SELECT c.region_id, o.total_amount FROM sales_order o JOIN customer c ON c.id = o.customer_id "
                              "WHERE o.status <> 'cancelled' AND o.order_date > :s AND o.order_date <= :a "
                              "AND c.geom IS NOT NULL", s=since, a=AS_OF):
        rev[o["region_id"]] += float(o["total_amount"])
    assert {f["id"] for f in body["features"]} == set(regions)
    for f in body["features"]:
        p, rid = f["properties"], f["id"]
        area = abs(GEOD.geometry_area_perimeter(wkb.loads(bytes(regions[rid]["g"])))[0]) / 1e6
        assert p["count"] == count[rid]
        assert p["area_km2"] == pytest.approx(area, rel=1e-3)
        assert p["per_km2"] == pytest.approx(count[rid] / area, rel=1e-3)
        assert p["population"] == pop[rid]
        assert p["revenue"] == pytest.approx(rev[rid], abs=0.01)
        if pop[rid]:
            assert p["per_10k_inhabitants"] == pytest.approx(count[rid] * 1e4 / pop[rid], rel=1e-3)
    assert body["properties"]["total_count"] == sum(count[r] for r in regions)


def test_density_by_region_uses_places_inside_the_region(api, connection):
    """place.region_id agrees with Shapely containment of the place points (coastal places
    just outside the generalised polygons are given their nearest region by the loader)."""
    regions = [(r["id"], wkb.loads(bytes(r["g"]))) for r in rows(connection, "SELECT id, ST_AsBinary(geom) AS g FROM region")]
    tree = STRtree([g for _, g in regions])
    wrong = outside = 0
    for p in rows(connection, "SELECT region_id, ST_X(geom) AS x, ST_Y(geom) AS y FROM place"):
        hits = sorted(regions[i][0] for i in tree.query(Point(p["x"], p["y"]), predicate="intersects"))
        if hits:
            wrong += hits[0] != p["region_id"]
        else:
            outside += 1
            assert p["region_id"] is not None
    assert wrong == 0 and outside < 50


def test_density_regional_manager_sees_only_their_territory(api, connection):
    vis = visible_ids(connection, "regional")
    body = fc(api, "regional", "by=region")
    regions = Counter(r["region_id"] for r in rows(connection, "SELECT region_id FROM customer WHERE id = ANY(:v) "
                                                               "AND geom IS NOT NULL", v=list(vis)))
    assert {f["id"]: f["properties"]["count"] for f in body["features"] if f["properties"]["count"]} == \
        {k: v for k, v in regions.items() if k is not None}
    terr = fc(api, "regional", "by=territory")
    assert {f["id"] for f in terr["features"]} == set(territory_ids(connection, "regional"))
    hexes = fc(api, "regional", "by=hex&hex_size_m=20000")
    assert hexes["properties"]["total_count"] == len(vis)


def test_density_by_territory_counts_and_population(api, connection):
    body = fc(api, "admin", "by=territory")
    ts = rows(connection, "SELECT id, ST_AsBinary(geom) AS g FROM territory")
    cust = [(c["id"], Point(c["x"], c["y"])) for c in rows(connection, "SELECT id, ST_X(geom) AS x, ST_Y(geom) AS y "
                                                                        "FROM customer WHERE geom IS NOT NULL")]
    places = [(p["population"], Point(p["x"], p["y"])) for p in rows(connection, "SELECT population, ST_X(geom) AS x, "
                                                                                  "ST_Y(geom) AS y FROM place")]
    got = {f["id"]: f["properties"] for f in body["features"]}
    for t in ts:
        g = wkb.loads(bytes(t["g"]))
        assert got[t["id"]]["count"] == sum(1 for _, p in cust if g.covers(p))
        assert got[t["id"]]["population"] == sum(pop for pop, p in places if g.covers(p))


def test_hex_cells_match_st_hexagongrid_and_shapely(api, connection):
    size = 25_000
    body = fc(api, "admin", f"by=hex&hex_size_m={size}")
    got = {(f["properties"]["i"], f["properties"]["j"]): f["properties"]["count"] for f in body["features"]}
    grid = rows(connection, """
        WITH e AS (SELECT ST_SetSRID(ST_Extent(ST_Transform(geom, 3067)), 3067) AS e FROM customer WHERE geom IS NOT NULL)
        SELECT h.i, h.j, ST_AsBinary(h.geom) AS g FROM e, ST_HexagonGrid(:s, e.e) h""", s=size)
    polys = [wkb.loads(bytes(r["g"])) for r in grid]
    tree = STRtree(polys)
    truth = Counter()
    for c in rows(connection, "SELECT ST_X(geom) AS x, ST_Y(geom) AS y FROM customer WHERE geom IS NOT NULL"):
        pt = Point(*TO_3067.transform(c["x"], c["y"]))
        hits = tree.query(pt, predicate="intersects")
        assert len(hits) >= 1
        k = int(hits[0])
        truth[(grid[k]["i"], grid[k]["j"])] += 1
    assert got == dict(truth)
    assert all(v > 0 for v in got.values())          # only non-empty cells
    # without revenue the cells are binned in numpy (hexgrid.cells_of): the same cells
    arrays = fc(api, "admin", f"by=hex&hex_size_m={size}&revenue=false")
    assert {(f["properties"]["i"], f["properties"]["j"]): f["properties"]["count"]
            for f in arrays["features"]} == dict(truth)
    assert [f["geometry"] for f in arrays["features"]] == [f["geometry"] for f in body["features"]]
    one = body["features"][0]
    cell = shape(one["geometry"])
    area = abs(GEOD.geometry_area_perimeter(cell)[0]) / 1e6
    assert one["properties"]["area_km2"] == pytest.approx(area, rel=2e-3)
    assert area == pytest.approx(3 * np.sqrt(3) / 2 * size ** 2 / 1e6, rel=0.01)


def test_density_filters_antimeridian_bbox_and_empty(api, connection):
    everything = fc(api, "admin", "by=region")["properties"]["total_count"]
    # a box from 20°E across the antimeridian to 170°W contains all of Finland
    assert fc(api, "admin", "by=region&bbox=20,55,-170,71")["properties"]["total_count"] == everything
    # a box around the antimeridian only contains nothing
    empty = fc(api, "admin", "by=hex&bbox=170,55,-170,71")
    assert empty["features"] == [] and empty["properties"]["total_count"] == 0
    key = fc(api, "admin", "by=region&level=key")
    n_key = rows(connection, "SELECT count(*) AS n FROM customer WHERE level = 'key' AND region_id IS NOT NULL")[0]["n"]
    assert key["properties"]["total_count"] == n_key
    none = fc(api, "admin", "by=region&q=zzzz-no-such-customer")
    assert all(f["properties"]["count"] == 0 for f in none["features"])


def test_density_cache_etag_and_cache_control(api):
    a = api("admin").get("/api/v1/stats/density?by=hex&hex_size_m=20000")
    assert a.headers["ETag"] and a.headers["Cache-Control"].startswith("public")
    b = api("admin").get("/api/v1/stats/density?by=hex&hex_size_m=20000", headers={"If-None-Match": a.headers["ETag"]})
    assert b.status_code == 304
    r = api("regional").get("/api/v1/stats/density?by=hex&hex_size_m=20000")
    assert r.headers["Cache-Control"].startswith("private") and r.headers["ETag"] != a.headers["ETag"]


@pytest.mark.parametrize("query", ["by=planet", "by=hex&hex_size_m=10", "level=gold", "bbox=1,2,3", "near=25,60"])
def test_density_bad_input(api, query):
    assert api("admin").get("/api/v1/stats/density?" + query).status_code == 422


def test_density_forbidden_for_customer_role(api):
    assert api("customer").get("/api/v1/stats/density").status_code == 403


def test_hot_spots_match_numpy_gi_star(api, connection):
    size = 20_000
    r = api("admin").get(f"/api/v1/stats/hotspots?hex_size_m={size}")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert any(f["properties"]["class"].startswith("hot") for f in body["features"])
    # independent Gi*: recompute on the study area cells the endpoint used
    from geo_crm.spatial.hexgrid import SQRT3
    from geo_crm.spatial.patterns import hot_spots
    from geo_crm.security.scope import Scope
    from sqlalchemy.orm import Session
    s = Session(bind=connection)
    cells = rows(connection, """
        WITH e AS (SELECT ST_SetSRID(ST_Extent(ST_Transform(geom, 3067)), 3067) AS e FROM customer WHERE geom IS NOT NULL)
        SELECT h.i, h.j, ST_X(ST_Centroid(h.geom)) AS x, ST_Y(ST_Centroid(h.geom)) AS y, ST_AsBinary(h.geom) AS g
          FROM e, ST_HexagonGrid(:s, e.e) h
         WHERE EXISTS (SELECT 1 FROM region_part rp WHERE ST_Intersects(rp.geom, ST_Transform(h.geom, 4326)))
            OR EXISTS (SELECT 1 FROM customer c WHERE c.geom IS NOT NULL AND ST_Intersects(ST_Transform(c.geom, 3067), h.geom))
        """, s=size)
    tree = STRtree([wkb.loads(bytes(c["g"])) for c in cells])
    y = np.zeros(len(cells))
    for c in rows(connection, "SELECT ST_X(geom) AS x, ST_Y(geom) AS y FROM customer WHERE geom IS NOT NULL"):
        hits = tree.query(Point(*TO_3067.transform(c["x"], c["y"])), predicate="intersects")
        y[int(hits[0])] += 1
    xy = np.array([[c["x"], c["y"]] for c in cells])
    n = len(y)
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    w = (d <= SQRT3 * size * 1.01).astype(float)          # binary contiguity incl. self (Gi*)
    xbar, s_ = y.mean(), np.sqrt((y ** 2).mean() - y.mean() ** 2)
    wsum = w.sum(1)
    z = (w @ y - xbar * wsum) / (s_ * np.sqrt((n * (w ** 2).sum(1) - wsum ** 2) / (n - 1)))
    truth = {(cells[k]["i"], cells[k]["j"]): z[k] for k in range(n)}
    for f in body["features"]:
        i, j = map(int, f["properties"]["id"].split(":"))
        assert f["properties"]["z"] == pytest.approx(truth[(i, j)], abs=1e-3)
    s.close()


def test_underserved_far_customers_and_branch_table(api, connection):
    u = api("admin").get("/api/v1/stats/underserved?by=hex&hex_size_m=20000&min_population=500").get_json()
    thr = u["properties"]["threshold_per_10k"]
    assert u["features"] and all((f["properties"]["per_10k_inhabitants"] or 0) < thr for f in u["features"])
    assert all(f["properties"]["population"] >= 500 for f in u["features"])
    far = api("admin").get("/api/v1/stats/far-customers?min_km=60&limit=1000").get_json()
    sites = rows(connection, "SELECT ST_X(geom) AS x, ST_Y(geom) AS y FROM branch UNION ALL "
                             "SELECT ST_X(geom), ST_Y(geom) FROM partner")
    truth = {}
    for c in rows(connection, "SELECT id, ST_X(geom) AS x, ST_Y(geom) AS y FROM customer WHERE geom IS NOT NULL"):
        dmin = min(GEOD.inv(c["x"], c["y"], s["x"], s["y"])[2] for s in sites) / 1000
        if dmin > 60:
            truth[c["id"]] = dmin
    assert far["total"] == len(truth)
    for it in far["items"]:
        assert it["nearest_site_km"] == pytest.approx(truth[it["id"]], abs=0.01)
    table = api("admin").get("/api/v1/stats/branch-distances").get_json()["items"]
    b = max(table, key=lambda x: x["count"])
    br = rows(connection, "SELECT ST_X(geom) AS x, ST_Y(geom) AS y FROM branch WHERE id = :i", i=b["branch_id"])[0]
    ds = np.array([GEOD.inv(br["x"], br["y"], c["x"], c["y"])[2] / 1000 for c in rows(
        connection, "SELECT ST_X(geom) AS x, ST_Y(geom) AS y FROM customer WHERE service_branch_id = :i", i=b["branch_id"])])
    assert b["count"] == len(ds)
    assert b["median_km"] == pytest.approx(np.median(ds), abs=0.01)
    assert b["p90_km"] == pytest.approx(np.percentile(ds, 90), abs=0.01)
    assert b["max_km"] == pytest.approx(ds.max(), abs=0.01)
    # regional: only their customers
    vis = visible_ids(connection, "regional")
    t2 = api("regional").get("/api/v1/stats/branch-distances").get_json()["items"]
    assert sum(x["count"] for x in t2) == rows(connection, "SELECT count(*) AS n FROM customer WHERE id = ANY(:v) AND "
                                                           "service_branch_id IS NOT NULL", v=list(vis))[0]["n"]


def test_map_pages_render_scoped_with_nonce(web_login, connection):
    import re
    c = web_login("regional")
    mine = set(territory_ids(connection, "regional"))
    names = {r["id"]: r["name"] for r in rows(connection, "SELECT id, name FROM territory")}
    for path in ("/map", "/map?level=key&q=oy", "/map/density?by=hex&metric=per_km2&scheme=jenks&k=4",
                 "/map/density?by=territory&metric=revenue", "/map/territories"):
        r = c.get(path)
        assert r.status_code == 200, path
        html = r.get_data(as_text=True)
        nonce = re.search(r"'nonce-([^']+)'", r.headers["Content-Security-Policy"]).group(1)
        assert all(f'nonce="{nonce}"' in tag for tag in re.findall(r"<script[^>]*>", html)), path
        assert "cdn" not in html.lower() and "unpkg" not in html.lower()
        for tid, name in names.items():
            # territory features carry name then description; regions share some names
            pattern = re.compile(r'"name":\s*"' + re.escape(json_escaped(name)) + r'",\s*"description"')
            assert bool(pattern.search(html)) == (tid in mine and path in ("/map", "/map?level=key&q=oy",
                                                                             "/map/territories")), (path, name)
    assert c.get("/map?level=gold").status_code == 200          # bad filter: message, not 500


def json_escaped(s: str) -> str:
    import json
    return json.dumps(s)[1:-1].replace("&", "\\u0026")


# -- revenue snapshot (geo_crm.spatial.aggregates) -------------------------------------------
def _refresh_snapshot(connection):
    from sqlalchemy.orm import Session

    from geo_crm.spatial.aggregates import refresh
    with Session(bind=connection, join_transaction_mode="create_savepoint") as s:
        refresh(s, concurrently=False)
        s.commit()


def _revenue_truth(connection, key_sql: str, as_of: date, where: str = "TRUE", **p) -> Counter:
    """Revenue (non-cancelled orders in (as_of - 365, as_of]) per area key, from the base tables."""
    out = Counter()
    join = "JOIN customer_territory ct ON ct.customer_id = c.id" if "ct." in key_sql else ""
    for r in rows(connection, f"SELECT {key_sql} AS k, o.total_amount FROM sales_order o "
                              f"JOIN customer c ON c.id = o.customer_id {join} "
                              f"WHERE o.status <> 'cancelled' AND o.order_date > :s AND o.order_date <= :a "
                              f"AND c.geom IS NOT NULL AND {where}", s=as_of - timedelta(days=365), a=as_of, **p):
        out[r["k"]] += float(r["total_amount"])
    return out


def _revenues(body) -> dict:
    return {f["id"]: f["properties"]["revenue"] for f in body["features"]}


def test_density_revenue_from_the_snapshot_equals_the_orders(api, connection):
    today = date.today()
    before = fc(api, "admin", "by=region")
    assert before["properties"]["revenue_source"] in ("orders", "report_view")   # not refreshed yet
    _refresh_snapshot(connection)
    reg = fc(api, "admin", "by=region")
    assert reg["properties"]["revenue_source"] == "snapshot" and reg["properties"]["revenue_refreshed_at"]
    truth = _revenue_truth(connection, "c.region_id", today)
    assert _revenues(reg) == pytest.approx({rid: truth[rid] for rid in _revenues(reg)}, abs=0.01)
    assert [f["properties"]["count"] for f in reg["features"]] == [f["properties"]["count"] for f in before["features"]]
    key = fc(api, "admin", "by=region&level=key,major&status=active")
    assert key["properties"]["revenue_source"] == "snapshot"
    truth = _revenue_truth(connection, "c.region_id", today, "c.level IN ('key', 'major') AND c.status = 'active'")
    assert _revenues(key) == pytest.approx({rid: truth[rid] for rid in _revenues(key)}, abs=0.01)
    ter = fc(api, "admin", "by=territory")
    assert ter["properties"]["revenue_source"] == "snapshot"
    truth = _revenue_truth(connection, "ct.territory_id", today)
    assert _revenues(ter) == pytest.approx({t: truth[t] for t in _revenues(ter)}, abs=0.01)
    hexes = fc(api, "admin", "by=hex&hex_size_m=20000")
    assert hexes["properties"]["revenue_source"] == "snapshot"
    exact = fc(api, "admin", "by=hex&hex_size_m=20000&bbox=-180,-90,180,90")   # a filter the snapshot cannot answer
    assert exact["properties"]["revenue_source"] in ("orders", "report_view")
    assert {f["id"]: f["properties"]["count"] for f in hexes["features"]} == \
        {f["id"]: f["properties"]["count"] for f in exact["features"]}
    assert _revenues(hexes) == pytest.approx(_revenues(exact), abs=0.01)
    assert sum(_revenues(hexes).values()) == pytest.approx(sum(_revenue_truth(connection, "1", today).values()), abs=0.05)
    # another as_of than the snapshot's: summed from the orders
    old = fc(api, "admin", f"by=region&as_of={AS_OF}")
    assert old["properties"]["revenue_source"] in ("orders", "report_view")


def test_density_snapshot_is_scoped_or_falls_back(api, connection):
    """Only callers who see everything get the snapshot; others get their visible
    customers' revenue from the orders (ownership and membership may have changed since
    the refresh)."""
    today = date.today()
    _refresh_snapshot(connection)
    assert fc(api, "executive", "by=region")["properties"]["revenue_source"] == "snapshot"
    owner = rows(connection, "SELECT id FROM app_user WHERE username = 'account'")[0]["id"]
    # reassign one of the account manager's customers after the refresh: it must not count for them
    moved = rows(connection, "SELECT c.id FROM customer c JOIN sales_order o ON o.customer_id = c.id "
                             "WHERE c.owner_id = :o AND o.status <> 'cancelled' AND o.order_date > :s LIMIT 1",
                 o=owner, s=today - timedelta(days=300))[0]["id"]
    other = rows(connection, "SELECT id FROM app_user WHERE username = 'admin'")[0]["id"]
    connection.execute(text("UPDATE customer SET owner_id = :u WHERE id = :c"), {"u": other, "c": moved})
    acc = fc(api, "account", "by=region")
    assert acc["properties"]["revenue_source"] in ("orders", "report_view")
    truth = _revenue_truth(connection, "c.region_id", today, "c.owner_id = :o", o=owner)
    assert _revenues(acc) == pytest.approx({rid: truth[rid] for rid in _revenues(acc)}, abs=0.01)
    vis = list(visible_ids(connection, "regional"))
    mine = territory_ids(connection, "regional")
    ter = fc(api, "regional", "by=territory")
    assert ter["properties"]["revenue_source"] in ("orders", "report_view")
    assert {f["id"] for f in ter["features"]} == set(mine)
    truth = _revenue_truth(connection, "ct.territory_id", today)
    assert _revenues(ter) == pytest.approx({t: truth[t] for t in mine}, abs=0.01)
    reg = fc(api, "regional", "by=region")
    assert reg["properties"]["revenue_source"] in ("orders", "report_view")
    truth = _revenue_truth(connection, "c.region_id", today, "c.id = ANY(:v)", v=vis)
    assert _revenues(reg) == pytest.approx({rid: truth[rid] for rid in _revenues(reg)}, abs=0.01)
    hexes = fc(api, "regional", "by=hex&hex_size_m=20000")
    assert hexes["properties"]["revenue_source"] in ("orders", "report_view")
    assert sum(_revenues(hexes).values()) == pytest.approx(
        sum(_revenue_truth(connection, "1", today, "c.id = ANY(:v)", v=vis).values()), abs=0.05)
    nrev = fc(api, "admin", "by=region&revenue=false")
    assert nrev["properties"]["revenue_source"] is None and all(
        f["properties"]["revenue"] is None for f in nrev["features"])


def test_density_snapshot_is_exactly_the_refresh_time(api, connection):
    """After a refresh, an order change shows in the exact path at once and in the snapshot
    after the next refresh; counts are live in both."""
    today = date.today()
    _refresh_snapshot(connection)
    o = rows(connection, "SELECT o.id, o.total_amount, c.region_id FROM sales_order o JOIN customer c "
                         "ON c.id = o.customer_id WHERE o.status <> 'cancelled' AND o.order_date > :s "
                         "AND c.geom IS NOT NULL AND c.region_id IS NOT NULL ORDER BY o.total_amount DESC LIMIT 1",
             s=today - timedelta(days=300))[0]
    snap0 = _revenues(fc(api, "admin", "by=region"))
    connection.execute(text("UPDATE sales_order SET status = 'cancelled' WHERE id = :i"), {"i": o["id"]})
    snap1 = fc(api, "admin", "by=region")
    assert _revenues(snap1) == snap0                                  # as of the refresh
    exact = _revenues(fc(api, "admin", "by=region&bbox=-180,-90,180,90"))
    assert exact[o["region_id"]] == pytest.approx(snap0[o["region_id"]] - float(o["total_amount"]), abs=0.01)
    _refresh_snapshot(connection)
    assert _revenues(fc(api, "admin", "by=region")) == pytest.approx(exact, abs=0.01)


def test_hex_arithmetic_in_python_sql_and_numpy_agrees_with_st_hexagon(connection):
    """cell_of (Python), cells_sql and cell_sql (SQL) and cells_of (numpy) give the same
    cell for random points and for points on cell edges and corners, and it covers the
    point (ST_Hexagon with ST_Covers)."""
    import random

    from geo_crm.spatial.hexgrid import cell_of, cell_sql, cells_of, cells_sql
    rng = random.Random(5)
    for size in (100.0, 1000.0, 5000.0, 25_000.0):
        pts = [(rng.uniform(50_000, 750_000), rng.uniform(6.6e6, 7.8e6)) for _ in range(300)]
        pts += [(0.75 * size * k, float(np.sqrt(3)) / 4 * size * m) for k in range(-4, 5) for m in range(-4, 5)]
        vals = ",".join(f"({k},{x!r}::float8,{y!r}::float8)" for k, (x, y) in enumerate(pts))
        src = f"SELECT id, x, y FROM (VALUES {vals}) v(id, x, y)"
        ci, cj = cell_sql("x", "y", repr(size))
        got = {r[0]: (r[1], r[2]) for r in connection.execute(text(cells_sql(src, repr(size))))}
        one = {r[0]: (r[1], r[2]) for r in connection.execute(text(f"SELECT id, {ci}, {cj} FROM ({src}) s"))}
        ni, nj = cells_of(np.array([p[0] for p in pts]), np.array([p[1] for p in pts]), size)
        for k, (x, y) in enumerate(pts):
            assert got[k] == one[k] == cell_of(x, y, size) == (int(ni[k]), int(nj[k])), (size, x, y)
        covered = connection.execute(text(
            "SELECT bool_and(ST_DWithin(ST_Hexagon(:s, i, j), ST_Point(x, y), 1e-6)) "     # edges: float tolerance
            "FROM unnest(:i, :j, :x, :y) AS t(i, j, x, y)"),
            {"s": size, "i": [got[k][0] for k in range(len(pts))], "j": [got[k][1] for k in range(len(pts))],
             "x": [p[0] for p in pts], "y": [p[1] for p in pts]}).scalar()
        assert covered


def test_territory_counts_equal_the_visible_customers_in_each_territory(api, connection):
    """Unfiltered counts for the executive and the regional manager come from the membership
    rows; they equal the visible located customers per territory (and the filtered path)."""
    truth = Counter(r["territory_id"] for r in rows(connection, (
        "SELECT ct.territory_id FROM customer_territory ct JOIN customer c ON c.id = ct.customer_id "
        "WHERE c.geom IS NOT NULL")))
    assert rows(connection, "SELECT count(*) AS n FROM customer_territory ct JOIN customer c ON c.id = ct.customer_id "
                            "WHERE c.geom IS NULL")[0]["n"] == 0        # the invariant the fast path relies on
    for user in ("executive", "regional"):
        body = fc(api, user, "by=territory")
        filtered = fc(api, user, "by=territory&level=key,major,ordinary,small")
        got = {f["id"]: f["properties"]["count"] for f in body["features"]}
        assert got == {t: truth[t] for t in got}
        assert got == {f["id"]: f["properties"]["count"] for f in filtered["features"]}
    mine = set(territory_ids(connection, "regional"))
    assert set(got) == mine
