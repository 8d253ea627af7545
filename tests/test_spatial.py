"""Spatial queries against ground truth computed independently (pyproj geodesics,
Shapely containment) on the same rows; index use proven with EXPLAIN; visibility."""
from __future__ import annotations

import pytest
from pyproj import Geod
from shapely import wkb
from sqlalchemy import text

GEOD = Geod(ellps="WGS84")


def geod_m(lon1, lat1, lon2, lat2) -> float:
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


def rows(conn, sql, **p):
    return conn.execute(text(sql), p).mappings().all()


def customers(conn):
    return rows(conn, "SELECT id, level, region_id, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM customer "
                      "WHERE geom IS NOT NULL")


def territory_ids(conn, username):
    return [r["territory_id"] for r in rows(conn, "SELECT ut.territory_id FROM user_territory ut JOIN app_user u "
                                                  "ON u.id = ut.user_id WHERE u.username = :u", u=username)]


def visible_ids(conn, username):
    tids = territory_ids(conn, username)
    return {r["customer_id"] for r in rows(conn, "SELECT DISTINCT customer_id FROM customer_territory "
                                                 "WHERE territory_id = ANY(:t)", t=tids)}


def test_nearest_branches_match_geodesic_ground_truth(api, connection):
    lon, lat = 25.0, 61.0
    r = api("admin").get(f"/api/v1/nearest?kind=branch&lon={lon}&lat={lat}&n=4")
    assert r.status_code == 200, r.get_json()
    got = r.get_json()["items"]
    truth = sorted(((geod_m(lon, lat, b["lon"], b["lat"]), b["id"]) for b in
                    rows(connection, "SELECT id, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM branch")))[:4]
    assert [g["id"] for g in got] == [t[1] for t in truth]
    for g, (d, _) in zip(got, truth):
        assert g["distance_m"] == pytest.approx(d, abs=1.0)


def test_nearest_partner_from_customer_and_visibility(api, connection):
    cid = visible_ids(connection, "regional")
    mine = min(cid)
    c = rows(connection, "SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat FROM customer WHERE id = :i", i=mine)[0]
    r = api("regional").get(f"/api/v1/nearest?kind=partner&customer_id={mine}&n=1")
    assert r.status_code == 200
    best = min(rows(connection, "SELECT id, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM partner"),
               key=lambda p: geod_m(c["lon"], c["lat"], p["lon"], p["lat"]))
    assert r.get_json()["items"][0]["id"] == best["id"]
    hidden = rows(connection, "SELECT id FROM customer WHERE id <> ALL(:v) ORDER BY id LIMIT 1", v=list(cid))[0]["id"]
    assert api("regional").get(f"/api/v1/nearest?kind=branch&customer_id={hidden}").status_code == 404
    assert api("customer").get("/api/v1/nearest?kind=partner&lon=25&lat=61").status_code == 403


@pytest.mark.parametrize("query,problem", [
    ("kind=branch&lon=25", "lon and lat"), ("kind=shop&lon=25&lat=60", None), ("kind=branch&lon=200&lat=60", None),
    ("kind=branch", "either"), ("kind=branch&lon=25&lat=60&n=0", None)])
def test_nearest_bad_input_is_422(api, query, problem):
    r = api("admin").get("/api/v1/nearest?" + query)
    assert r.status_code == 422
    assert r.get_json()["error"]["fields"]


def test_within_radius_matches_geodesic_ground_truth_sorted(api, connection):
    cs = customers(connection)
    centre = cs[17]
    radius = 15_000
    r = api("admin").get(f"/api/v1/customers/within-radius?customer_id={centre['id']}&radius_m={radius}&limit=1000")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    truth = sorted((geod_m(centre["lon"], centre["lat"], c["lon"], c["lat"]), c["id"]) for c in cs)
    truth = [t for t in truth if t[0] <= radius]
    got = [(f["properties"]["distance_m"], f["id"]) for f in body["features"]]
    assert [i for _, i in got] == [i for _, i in truth] or sorted(i for _, i in got) == sorted(i for _, i in truth)
    assert [d for d, _ in got] == sorted(d for d, _ in got)
    for (d, _), (t, _) in zip(got, truth):
        assert d == pytest.approx(t, abs=1.0)
    assert body["numberMatched"] == len(truth) and got[0][1] == centre["id"]


def test_within_radius_of_branch_with_filter_and_scope(api, connection):
    b = rows(connection, "SELECT id, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM branch ORDER BY id LIMIT 1")[0]
    vis = visible_ids(connection, "regional")
    r = api("regional").get(f"/api/v1/customers/within-radius?branch_id={b['id']}&radius_m=50000&level=key,major"
                            "&limit=1000")
    assert r.status_code == 200, r.get_json()
    truth = {c["id"] for c in customers(connection) if c["id"] in vis and c["level"] in ("key", "major")
             and geod_m(b["lon"], b["lat"], c["lon"], c["lat"]) <= 50_000}
    assert {f["id"] for f in r.get_json()["features"]} == truth


def test_within_radius_empty_and_paging(api, connection):
    r = api("admin").get("/api/v1/customers/within-radius?lon=-150&lat=10&radius_m=1000")
    assert r.status_code == 200 and r.get_json()["features"] == [] and r.get_json()["numberMatched"] == 0
    cs = customers(connection)
    c = cs[3]
    a = api("admin").get(f"/api/v1/customers/within-radius?lon={c['lon']}&lat={c['lat']}&radius_m=30000&limit=5")
    b = api("admin").get(f"/api/v1/customers/within-radius?lon={c['lon']}&lat={c['lat']}&radius_m=30000&limit=5&offset=5")
    ids_a = [f["id"] for f in a.get_json()["features"]]
    ids_b = [f["id"] for f in b.get_json()["features"]]
    assert not set(ids_a) & set(ids_b)
    assert a.get_json()["numberMatched"] == b.get_json()["numberMatched"] >= len(ids_a) + len(ids_b)


@pytest.mark.parametrize("query", ["radius_m=100", "lon=25&lat=60", "lon=25&lat=60&customer_id=1&radius_m=5",
                                   "lon=25&lat=60&radius_m=-1", "lon=25&lat=60&radius_m=100&bbox=1,2"])
def test_within_radius_bad_input(api, query):
    r = api("admin").get("/api/v1/customers/within-radius?" + query)
    assert r.status_code == 422, r.get_json()


def test_areas_match_shapely_and_geodesic_ground_truth(api, connection):
    cid = rows(connection, "SELECT id FROM customer WHERE region_id IS NOT NULL ORDER BY id LIMIT 1 OFFSET 40")[0]["id"]
    c = rows(connection, "SELECT ST_AsBinary(geom) AS g, service_branch_id FROM customer WHERE id = :i", i=cid)[0]
    pt = wkb.loads(bytes(c["g"]))
    regions = [(r["id"], wkb.loads(bytes(r["g"]))) for r in rows(connection, "SELECT id, ST_AsBinary(geom) AS g FROM region")]
    containing = sorted(rid for rid, g in regions if g.covers(pt))
    terrs = sorted(r["id"] for r in rows(connection, "SELECT id, ST_AsBinary(geom) AS g FROM territory")
                   if wkb.loads(bytes(r["g"])).covers(pt))
    body = api("admin").get(f"/api/v1/customers/{cid}/areas").get_json()
    assert body["region"]["id"] == containing[0]
    assert sorted(t["id"] for t in body["territories"]) == terrs
    br = min(rows(connection, "SELECT id, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM branch"),
             key=lambda b: geod_m(pt.x, pt.y, b["lon"], b["lat"]))
    assert body["nearest_branch"]["id"] == br["id"]
    assert body["nearest_branch"]["distance_m"] == pytest.approx(geod_m(pt.x, pt.y, br["lon"], br["lat"]), abs=1)
    if c["service_branch_id"]:
        assert body["service_branch"]["id"] == c["service_branch_id"]
    assert body["nearest_partner"]["distance_m"] > 0


def test_areas_hidden_customer_is_404_and_territories_scoped(api, connection):
    vis = visible_ids(connection, "regional")
    hidden = rows(connection, "SELECT id FROM customer WHERE id <> ALL(:v) ORDER BY id LIMIT 1", v=list(vis))[0]["id"]
    assert api("regional").get(f"/api/v1/customers/{hidden}/areas").status_code == 404
    mine = territory_ids(connection, "regional")
    body = api("regional").get(f"/api/v1/customers/{min(vis)}/areas").get_json()
    assert body["territories"] and all(t["id"] in mine for t in body["territories"])
    assert api("admin").get("/api/v1/customers/999999999/areas").status_code == 404


def test_point_on_shared_region_boundary_belongs_to_one_region(api, connection):
    """A customer exactly on a vertex shared by two regions is counted once, in the lowest
    id (the documented tie rule), in both the areas endpoint and density by region."""
    a, b = rows(connection, """
        SELECT a.id AS a, b.id AS b FROM region a JOIN region b ON a.id < b.id AND ST_Touches(a.geom, b.geom)
        ORDER BY a.id, b.id LIMIT 1""")[0].values()
    shared = rows(connection, "SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM (SELECT (ST_DumpPoints("
                              "ST_Intersection(a.geom, b.geom))).geom AS p FROM region a, region b "
                              "WHERE a.id = :a AND b.id = :b) x LIMIT 1", a=a, b=b)[0]
    before = {f["id"]: f["properties"]["count"] for f in
              api("admin").get("/api/v1/stats/density?by=region&q=Boundary%20Test%20Oy").get_json()["features"]}
    assert sum(before.values()) == 0
    cid = connection.execute(text(
        "INSERT INTO customer (code, name, geom, geocode_quality) VALUES ('BT-1', 'Boundary Test Oy', "
        "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), 'manual') RETURNING id"), dict(shared)).scalar()
    areas = api("admin").get(f"/api/v1/customers/{cid}/areas").get_json()
    pt_regions = sorted(r["id"] for r in rows(connection, "SELECT id FROM region WHERE ST_Covers(geom, "
                        "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))", **shared))
    assert len(pt_regions) >= 2 and areas["region"]["id"] == pt_regions[0]
    counts = {f["id"]: f["properties"]["count"] for f in
              api("admin").get("/api/v1/stats/density?by=region&q=Boundary%20Test%20Oy").get_json()["features"]}
    assert sum(counts.values()) == 1 and counts[pt_regions[0]] == 1


# -- EXPLAIN: the spatial and membership predicates use their indexes ----------------------
def explain(conn, sql, params):
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + sql), params))
    conn.execute(text("SET LOCAL enable_seqscan = on"))
    return plan


def _compiled(session, stmt):
    from geo_crm.spatial.density import _compile
    return _compile(session, stmt)


def test_explain_radius_uses_gist(db_session, connection):
    from sqlalchemy import func, select

    from geo_crm.customers.filters import apply, within_radius
    from geo_crm.models import Customer
    from geo_crm.security.scope import Scope
    stmt = apply(select(Customer.id), None, Scope.system()).where(within_radius(Customer.geom, 24.9, 60.2, 5000))
    sql, p = _compiled(db_session, stmt)
    plan = "\n".join(r[0] for r in connection.exec_driver_sql("EXPLAIN " + sql, p)) if False else None
    connection.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(r[0] for r in connection.exec_driver_sql("EXPLAIN " + sql, p))
    assert "idx_customer_geom" in plan, plan


def test_explain_knn_uses_gist_order_by(connection):
    plan = explain(connection, "SELECT id FROM branch ORDER BY geom <-> ST_SetSRID(ST_MakePoint(25, 61), 4326) LIMIT 4", {})
    assert "idx_branch_geom" in plan, plan


def test_explain_region_and_territory_use_btree(connection, db_session):
    from sqlalchemy import func, select

    from geo_crm.customers.filters import CustomerFilter, apply
    from geo_crm.models import Customer
    from geo_crm.security.scope import Scope
    sql, p = _compiled(db_session, apply(select(func.count()).select_from(Customer), CustomerFilter(region_id=3),
                                         Scope.system()))
    connection.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(r[0] for r in connection.exec_driver_sql("EXPLAIN " + sql, p))
    assert "ix_customer_region_id" in plan, plan
    regional = Scope(role="regional_manager", user_id=1, territory_ids=(1,))
    sql, p = _compiled(db_session, apply(select(func.count()).select_from(Customer), None, regional))
    plan = "\n".join(r[0] for r in connection.exec_driver_sql("EXPLAIN " + sql, p))
    assert "customer_territory" in plan and ("ix_customer_territory" in plan or "pk_customer_territory" in plan), plan


def test_cli_nearest_and_density(database_url, monkeypatch):
    import json

    from click.testing import CliRunner

    from geo_crm.spatial.cli import spatial
    monkeypatch.setenv("DATABASE_URL", database_url)
    r = CliRunner().invoke(spatial, ["nearest", "--lon", "24.94", "--lat", "60.17", "--n", "2"])
    assert r.exit_code == 0, r.output
    assert len([ln for ln in r.output.splitlines() if " m  " in ln]) == 2
    r = CliRunner().invoke(spatial, ["density", "--by", "region", "--level", "key"])
    assert r.exit_code == 0, r.output
    fc = json.loads(r.output)
    assert fc["type"] == "FeatureCollection" and fc["features"]
    r = CliRunner().invoke(spatial, ["density", "--by", "hex", "--hex-size-m", "5"])
    assert r.exit_code != 0 and "hex_size_m" in r.output
