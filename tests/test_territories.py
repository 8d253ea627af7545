"""Territory planning: CRUD with overlap refusal, membership recomputed by the DB,
build from regions, split, merge, overlap/gap and balance reports against Shapely/pyproj,
suggested alignment and its one-transaction acceptance, service areas, permissions."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from shapely import wkb
from shapely.geometry import Point, box, mapping, shape

from tests.conftest import AS_OF
from tests.test_spatial import rows, territory_ids

GEOD = Geod(ellps="WGS84")
TO_3067 = Transformer.from_crs(4326, 3067, always_xy=True)
# a box in the sea off Åland-Turku archipelago edge (no territory assumptions: we check overlaps live)
FAR_NORTH = box(27.0, 69.0, 27.5, 69.3)


def km2(g) -> float:
    return abs(GEOD.geometry_area_perimeter(g)[0]) / 1e6


def members(conn, tid):
    return {r["customer_id"] for r in rows(conn, "SELECT customer_id FROM customer_territory WHERE territory_id = :t", t=tid)}


def inside(conn, g):
    return {r["id"] for r in rows(conn, "SELECT id, ST_X(geom) AS x, ST_Y(geom) AS y FROM customer WHERE geom IS NOT NULL")
            if g.covers(Point(r["x"], r["y"]))}


def test_create_refuses_overlap_then_allows_with_flag(api, connection):
    r = api("admin").post("/api/v1/territories", json={"name": "North test", "geometry": mapping(FAR_NORTH)})
    assert r.status_code == 409, r.get_json()
    err = r.get_json()["error"]
    assert err["code"] == "overlap" and err["fields"]
    truth = {t["id"]: km2(wkb.loads(bytes(t["g"])).intersection(FAR_NORTH))
             for t in rows(connection, "SELECT id, ST_AsBinary(geom) AS g FROM territory")}
    for f in err["fields"]:
        assert f["overlap_km2"] == pytest.approx(truth[f["territory_id"]], rel=1e-3)
    r = api("admin").post("/api/v1/territories", json={"name": "North test", "geometry": mapping(FAR_NORTH),
                                                       "allow_overlap": True, "color": "#123456"})
    assert r.status_code == 201, r.get_json()
    t = r.get_json()
    assert t["properties"]["area_km2"] == pytest.approx(km2(FAR_NORTH), rel=1e-3)
    assert members(connection, t["id"]) == inside(connection, FAR_NORTH)
    assert r.headers["ETag"] == '"1"'
    hist = rows(connection, "SELECT action FROM territory_history WHERE territory_id = :t", t=t["id"])
    assert [h["action"] for h in hist] == ["create"]
    audit = rows(connection, "SELECT action FROM audit_log WHERE entity = 'territory' AND entity_id = :i", i=str(t["id"]))
    assert audit and audit[0]["action"] == "insert"


def test_update_redraw_recomputes_membership_and_versions(api, connection):
    tid = rows(connection, "SELECT id FROM territory ORDER BY id LIMIT 1")[0]["id"]
    g = box(24.5, 60.0, 25.2, 60.4)
    stale = api("admin").patch(f"/api/v1/territories/{tid}", json={"geometry": mapping(g), "allow_overlap": True},
                               headers={"If-Match": '"99"'})
    assert stale.status_code == 412
    r = api("admin").patch(f"/api/v1/territories/{tid}", json={"geometry": mapping(g), "allow_overlap": True},
                           headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["properties"]["version"] == 2
    assert members(connection, tid) == inside(connection, g)


@pytest.mark.parametrize("geometry", [
    {"type": "Point", "coordinates": [25, 60]},
    {"type": "Polygon", "coordinates": [[[25, 60], [26, 61], [26, 60], [25, 61], [25, 60]]]},   # bow-tie
    {"type": "Polygon", "coordinates": [[[25, 60], [200, 61], [26, 60], [25, 60]]]},
    "nonsense"])
def test_invalid_geometry_is_422(api, geometry):
    r = api("admin").post("/api/v1/territories", json={"name": "Bad", "geometry": geometry, "allow_overlap": True})
    assert r.status_code == 422, r.get_json()


def test_from_regions_split_and_merge(api, connection):
    regs = rows(connection, "SELECT id, ST_AsBinary(geom) AS g FROM region ORDER BY id LIMIT 2")
    union = shapely.union_all([wkb.loads(bytes(r["g"])) for r in regs])
    r = api("admin").post("/api/v1/territories/from-regions",
                          json={"name": "Two regions", "region_ids": [r["id"] for r in regs], "allow_overlap": True})
    assert r.status_code == 201, r.get_json()
    t = r.get_json()
    assert t["properties"]["source"] == "regions"
    assert t["properties"]["area_km2"] == pytest.approx(km2(union), rel=1e-3)
    assert api("admin").post("/api/v1/territories/from-regions", json={"name": "x", "region_ids": [99999]}).status_code == 422
    # split along the union's centroid meridian
    c = union.centroid
    line = {"type": "LineString", "coordinates": [[c.x, union.bounds[1] - 1], [c.x, union.bounds[3] + 1]]}
    r = api("admin").post(f"/api/v1/territories/{t['id']}/split", json={"line": line, "names": ["Part W", "Part E"]})
    assert r.status_code == 200, r.get_json()
    a, b = r.get_json()["features"]
    assert a["id"] == t["id"] and {a["properties"]["name"], b["properties"]["name"]} == {"Part W", "Part E"}
    assert a["properties"]["area_km2"] + b["properties"]["area_km2"] == pytest.approx(km2(union), rel=1e-3)
    assert shape(a["geometry"]).intersection(shape(b["geometry"])).area < 1e-9
    assert members(connection, a["id"]) | members(connection, b["id"]) == inside(connection, union)
    miss = {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}
    assert api("admin").post(f"/api/v1/territories/{a['id']}/split", json={"line": miss}).status_code == 422
    r = api("admin").post("/api/v1/territories/merge", json={"territory_ids": [a["id"], b["id"]], "name": "Both"})
    assert r.status_code == 200, r.get_json()
    m = r.get_json()
    assert m["id"] == a["id"] and m["properties"]["area_km2"] == pytest.approx(km2(union), rel=1e-3)
    assert api("admin").get(f"/api/v1/territories/{b['id']}").status_code == 404
    assert members(connection, m["id"]) == inside(connection, union)
    actions = [h["action"] for h in rows(connection, "SELECT action FROM territory_history WHERE territory_id = :t "
                                                     "ORDER BY id", t=a["id"])]
    assert actions == ["create", "split", "merge"]


def test_overlaps_and_gaps_report(api, connection):
    ts = rows(connection, "SELECT id, ST_AsBinary(geom) AS g FROM territory ORDER BY id")
    g0 = wkb.loads(bytes(ts[0]["g"]))
    # shrink territory 0 to half its bbox and add a territory overlapping territory 1
    half = g0.intersection(box(*g0.bounds[:2], (g0.bounds[0] + g0.bounds[2]) / 2, g0.bounds[3]))
    api("admin").patch(f"/api/v1/territories/{ts[0]['id']}", json={"geometry": mapping(half), "allow_overlap": True})
    g1 = wkb.loads(bytes(ts[1]["g"]))
    extra = box(*g1.centroid.buffer(0.3).bounds)
    assert api("admin").post("/api/v1/territories", json={"name": "Overlapper", "geometry": mapping(extra),
                                                          "allow_overlap": True}).status_code == 201
    body = api("admin").get("/api/v1/territories/report/overlaps").get_json()
    cur = [wkb.loads(bytes(r["g"])) for r in rows(connection, "SELECT ST_AsBinary(geom) AS g FROM territory")]
    country = shapely.union_all([wkb.loads(bytes(r["g"])) for r in rows(connection, "SELECT ST_AsBinary(geom) AS g FROM region")])
    gap = country.difference(shapely.union_all(cur))
    assert body["gap_km2"] == pytest.approx(km2(gap), rel=1e-2)
    assert body["country_km2"] == pytest.approx(km2(country), rel=1e-3)
    pairs = sum(km2(a.intersection(b)) for i, a in enumerate(cur) for b in cur[i + 1:]
                if km2(a.intersection(b)) > 0.01)
    assert body["overlap_km2"] == pytest.approx(pairs, rel=1e-2) and body["overlap_km2"] > 0


def test_balance_report_matches_ground_truth(api, connection):
    body = api("admin").get(f"/api/v1/territories/report/balance?as_of={AS_OF}").get_json()
    since = AS_OF - timedelta(days=365)
    for t in body["territories"]:
        mem = members(connection, t["id"])
        assert t["customers"] == len(mem)
        rev = sum(float(r["total_amount"]) for r in rows(
            connection, "SELECT total_amount FROM sales_order WHERE customer_id = ANY(:m) AND status <> 'cancelled' "
                        "AND order_date > :s AND order_date <= :a", m=list(mem), s=since, a=AS_OF))
        assert t["revenue"] == pytest.approx(rev, abs=0.01)
        n_opp = rows(connection, "SELECT count(*) AS n FROM opportunity WHERE customer_id = ANY(:m) AND status = 'open'",
                     m=list(mem))[0]["n"]
        assert t["open_opportunities"] == n_opp
        assert t["tsp_estimate_km"] == pytest.approx(0.7 * np.sqrt(len(mem) * t["area_km2"]), rel=1e-3)
    vals = [t["customers"] for t in body["territories"]]
    imb = body["imbalance"]["customers"]
    assert imb["max_min_ratio"] == pytest.approx(max(vals) / min(vals), rel=1e-3)
    assert imb["cv"] == pytest.approx(np.std(vals) / np.mean(vals), rel=1e-3)
    reg = api("regional").get("/api/v1/territories/report/balance").get_json()
    assert {t["id"] for t in reg["territories"]} == set(territory_ids(connection, "regional"))


def test_suggest_and_accept_in_one_transaction(api, connection):
    r = api("admin").get("/api/v1/territories/suggest?k=4&metric=customers&hex_size_m=20000")
    assert r.status_code == 200, r.get_json()
    sug = r.get_json()
    feats = sug["features"]
    assert len(feats) == 4
    geoms = [shape(f["geometry"]) for f in feats]
    for i, a in enumerate(geoms):                  # no overlaps between suggested territories
        for b in geoms[i + 1:]:
            assert km2(a.intersection(b)) < 1.0
    n = rows(connection, "SELECT count(*) AS n FROM customer WHERE geom IS NOT NULL")[0]["n"]
    assert sum(f["properties"]["load"] for f in feats) == n
    loads = [f["properties"]["load"] for f in feats]
    assert sug["properties"]["imbalance"]["cv"] == pytest.approx(np.std(loads) / np.mean(loads), rel=1e-3)
    before = rows(connection, "SELECT id, name FROM territory ORDER BY id")
    assert api("sales").post("/api/v1/territories/suggest/accept", json=sug).status_code == 403
    r = api("admin").post("/api/v1/territories/suggest/accept", json=sug)
    assert r.status_code == 200, r.get_json()
    after = rows(connection, "SELECT id, ST_AsBinary(geom) AS g FROM territory ORDER BY id")
    assert len(after) == 4 and {a["id"] for a in after} <= {b["id"] for b in before} | {a["id"] for a in after}
    for a in after:
        assert members(connection, a["id"]) == inside(connection, wkb.loads(bytes(a["g"])))
    assert rows(connection, "SELECT count(*) AS n FROM audit_log WHERE action = 'realign'")[0]["n"] == 1
    assert rows(connection, "SELECT count(*) AS n FROM territory_history WHERE note = 'accepted suggested alignment'")[0]["n"] == 4


def test_suggest_bad_input(api):
    assert api("admin").get("/api/v1/territories/suggest?k=1").status_code == 422
    assert api("admin").get("/api/v1/territories/suggest?metric=vibes").status_code == 422
    assert api("regional").get("/api/v1/territories/suggest").status_code == 403


def test_permissions_and_visibility(api, connection):
    mine = set(territory_ids(connection, "regional"))
    listed = {f["id"] for f in api("regional").get("/api/v1/territories").get_json()["features"]}
    assert listed == mine
    other = rows(connection, "SELECT id FROM territory WHERE id <> ALL(:m) ORDER BY id LIMIT 1", m=list(mine))[0]["id"]
    assert api("regional").get(f"/api/v1/territories/{other}").status_code == 404
    assert api("regional").post("/api/v1/territories", json={"name": "x", "geometry": mapping(FAR_NORTH)}).status_code == 403
    assert api("regional").delete(f"/api/v1/territories/{min(mine)}").status_code == 403
    r = api("sales").post("/api/v1/territories", json={"name": "Sales drawn", "geometry": mapping(FAR_NORTH),
                                                       "allow_overlap": True})
    assert r.status_code == 201
    uid = rows(connection, "SELECT id FROM app_user WHERE username = 'regional'")[0]["id"]
    r = api("admin").put(f"/api/v1/territories/{r.get_json()['id']}/users", json={"user_ids": [uid]})
    assert r.status_code == 200 and [u["id"] for u in r.get_json()["properties"]["users"]] == [uid]
    assert api("admin").delete(f"/api/v1/territories/{r.get_json()['id']}").status_code == 204


def test_voronoi_service_areas_assign_customers_to_nearest_branch(api, connection):
    assert api("sales").post("/api/v1/service-areas/voronoi").status_code == 403
    r = api("admin").post("/api/v1/service-areas/voronoi")
    assert r.status_code == 200 and r.get_json()["updated"] == rows(connection, "SELECT count(*) AS n FROM branch")[0]["n"]
    br = [(b["id"], TO_3067.transform(b["x"], b["y"])) for b in rows(connection, "SELECT id, ST_X(geom) AS x, "
                                                                                 "ST_Y(geom) AS y FROM branch")]
    ok = total = 0
    for c in rows(connection, "SELECT service_branch_id, ST_X(geom) AS x, ST_Y(geom) AS y FROM customer "
                              "WHERE region_id IS NOT NULL"):
        x, y = TO_3067.transform(c["x"], c["y"])
        d = sorted((np.hypot(x - bx, y - by), bid) for bid, (bx, by) in br)
        if d[1][0] - d[0][0] < 50:      # within 50 m of a cell edge: either answer is fine
            continue
        total += 1
        ok += c["service_branch_id"] == d[0][1]
    assert total > 500 and ok == total
    sa = api("admin").get("/api/v1/service-areas").get_json()
    assert all(f["properties"]["kind"] == "voronoi" for f in sa["features"])
    drawn = {"type": "Polygon", "coordinates": [[[24.0, 60.0], [25.5, 60.0], [25.5, 60.6], [24.0, 60.6], [24.0, 60.0]]]}
    bid = br[0][0]
    assert api("admin").put(f"/api/v1/branches/{bid}/service-area", json={"geometry": drawn}).status_code == 200
    assert rows(connection, "SELECT service_area_kind FROM branch WHERE id = :i", i=bid)[0]["service_area_kind"] == "drawn"


@pytest.mark.parametrize("feature, field", [
    ({"type": "Feature", "properties": {}}, "features[1].geometry"),
    ({"type": "Feature", "geometry": None, "properties": {}}, "features[1].geometry"),
    ({"type": "Feature", "geometry": "POLYGON", "properties": {}}, "features[1].geometry"),
    ("not a feature", "features.1"),             # rejected by the body model
    ({"geometry": mapping(FAR_NORTH)}, "features[1]"),
    ({"type": "Feature", "geometry": mapping(FAR_NORTH), "properties": [1]}, "features[1].properties"),
    ({"type": "Feature", "geometry": mapping(FAR_NORTH), "properties": {"name": 7}}, "features[1].properties.name"),
    ({"type": "Feature", "geometry": {"type": "Point", "coordinates": [25, 65]}}, "features[1].geometry"),
])
def test_accept_rejects_malformed_features_with_a_field_error(api, connection, feature, field):
    before = rows(connection, "SELECT id, version FROM territory ORDER BY id")
    good = {"type": "Feature", "geometry": mapping(box(24.0, 60.0, 25.0, 61.0)), "properties": {"name": "A"}}
    r = api("admin").post("/api/v1/territories/suggest/accept",
                          json={"type": "FeatureCollection", "features": [good, feature]})
    assert r.status_code == 422, r.get_data(as_text=True)
    err = r.get_json()["error"]
    assert err["fields"][0]["field"] == field
    assert rows(connection, "SELECT id, version FROM territory ORDER BY id") == before   # nothing written


def test_geojson_operations_document_their_content_type(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path, method in [("/api/v1/service-areas", "get"), ("/api/v1/territories/{territory_id}", "get"),
                         ("/api/v1/territories/{territory_id}", "patch"),
                         ("/api/v1/territories/{territory_id}/users", "put"),
                         ("/api/v1/territories/suggest/accept", "post"), ("/api/v1/territories", "post")]:
        ok = paths[path][method]["responses"]
        content = (ok.get("200") or ok.get("201"))["content"]
        assert list(content) == ["application/geo+json"], (path, method)


# -- suggested alignment: balance and contiguity of the partition ----------------------

def _component_groups(neighbours, units) -> list[list[int]]:
    """Connected pieces of the subgraph induced by `units` (scipy's connected_components:
    an implementation independent of suggest's own graph walks)."""
    units = sorted(units)
    idx = {u: i for i, u in enumerate(units)}
    edges = [(idx[a], idx[b]) for a in units for b in neighbours[a] if b in idx]
    rows_i, cols_i = (list(x) for x in zip(*edges)) if edges else ([], [])
    graph = coo_matrix((np.ones(len(rows_i)), (rows_i, cols_i)), shape=(len(units), len(units)))
    n, lab = connected_components(graph, directed=False)
    groups: list[list[int]] = [[] for _ in range(n)]
    for u, c in zip(units, lab):
        groups[c].append(u)
    return groups


def _pieces(label, neighbours, t, within=None) -> int:
    """Connected pieces of territory t's units (optionally only units in `within`)."""
    units = {u for u in range(len(label)) if label[u] == t and (within is None or u in within)}
    return len(_component_groups(neighbours, units))


def _cv(label, load, k):
    totals = np.bincount(label, weights=load, minlength=k)
    return float(np.std(totals) / np.mean(totals))


def _hex_lattice(cols, rows_, size=1.0):
    """Offset-column hexagon lattice like spatial/hexgrid: centres and 6-neighbour adjacency."""
    xy, index = [], {}
    for i in range(cols):
        for j in range(rows_):
            index[(i, j)] = len(xy)
            xy.append((1.5 * size * i, np.sqrt(3) * size * (j + (0.5 if i % 2 else 0))))
    xy = np.array(xy)
    from scipy.spatial import cKDTree
    pairs = cKDTree(xy).query_pairs(np.sqrt(3) * size * 1.01)
    nb = [[] for _ in xy]
    for a, b in sorted(pairs):
        nb[a].append(b)
        nb[b].append(a)
    return xy, [sorted(n) for n in nb]


@pytest.mark.parametrize("k", [2, 3, 4, 6])
def test_partition_of_uniform_strip_is_exactly_balanced(k):
    from geo_crm.territories import suggest
    n = 24
    xy = np.column_stack([np.arange(n, dtype=float), np.zeros(n)])
    nb = [[v for v in (u - 1, u + 1) if 0 <= v < n] for u in range(n)]
    load = np.ones(n)
    label = suggest.partition(xy, load, nb, k)
    assert sorted(set(label.tolist())) == list(range(k))
    assert _cv(label, load, k) == pytest.approx(0.0, abs=1e-9)
    assert all(_pieces(label, nb, t) == 1 for t in range(k))       # K consecutive runs of n/K cells


def test_partition_of_hex_lattice_balanced_contiguous_and_deterministic():
    from geo_crm.territories import suggest
    xy, nb = _hex_lattice(12, 10)
    load = np.ones(len(xy))
    load[:15] = 3.0                                                     # a denser corner
    k = 4
    label = suggest.partition(xy, load, nb, k)
    assert _cv(label, load, k) < 0.02
    assert all(_pieces(label, nb, t) == 1 for t in range(k))
    assert suggest.cv_floor(load, k) == 0.0
    assert np.array_equal(label, suggest.partition(xy, load, nb, k))


def test_refine_never_worsens_and_never_splits():
    from geo_crm.territories import suggest
    xy, nb = _hex_lattice(10, 8)
    load = np.arange(len(xy), dtype=float) % 7
    k = 3
    label0 = (xy[:, 0] > xy[:, 0].max() * 0.7).astype(int) + (xy[:, 0] > xy[:, 0].max() * 0.85)   # 3 vertical bands
    assert all(_pieces(label0, nb, t) == 1 for t in range(k))
    label = suggest.refine(label0.copy(), load, nb, k)
    assert _cv(label, load, k) < _cv(label0, load, k) * 0.5
    assert all(_pieces(label, nb, t) == 1 for t in range(k))


def test_cv_floor_from_granularity():
    from geo_crm.territories import suggest
    load = np.array([60.0, 10, 10, 10, 10])              # total 100, K=2: best is 60 | 40
    assert suggest.cv_floor(load, 2) == pytest.approx(np.std([60, 40]) / 50)
    assert suggest.cv_floor(np.ones(10), 5) == 0.0


@pytest.mark.parametrize("metric", ["customers", "revenue", "workload"])
def test_suggestion_on_sample_is_contiguous_and_better_balanced(db_session, metric):
    from geo_crm.security.scope import Scope
    from geo_crm.territories import suggest
    rows_, xy, load, nb = suggest.cells(db_session, Scope.system(), metric, 20_000.0, AS_OF)
    # the largest connected piece of the cell graph (islands may be joined to the nearest seed)
    main = max((set(c) for c in _components(nb)), key=len)
    for k in (3, 5):
        before = _cv(suggest.grow(xy, load, nb, k), load, k)          # region growing alone, unrefined
        label = suggest.partition(xy, load, nb, k)
        assert label.shape == (len(rows_),) and set(label.tolist()) == set(range(k))   # every cell once, no empty one
        after = _cv(label, load, k)
        assert after <= before + 1e-9
        assert after >= suggest.cv_floor(load, k) - 1e-9
        for t in range(k):
            assert _pieces(label, nb, t, within=main) <= 1


def _components(nb):
    return _component_groups(nb, range(len(nb)))


def test_suggest_api_reports_floor_and_balances_the_sample(api):
    r = api("admin").get(f"/api/v1/territories/suggest?k=3&metric=customers&hex_size_m=10000&as_of={AS_OF}")
    assert r.status_code == 200, r.get_json()
    p = r.get_json()["properties"]
    assert 0 <= p["cv_floor"] <= p["imbalance"]["cv"]
    assert p["imbalance"]["cv"] < 0.10


def test_partition_shares_a_dense_cluster_among_several_territories():
    """A capital-like cluster holding most of the load must be split among several
    territories: K=8 reaches the granularity floor (0 here) within a small margin."""
    from geo_crm.territories import suggest
    xy, nb = _hex_lattice(20, 16)
    load = np.zeros(len(xy))
    load[::3] = 1.0                                                     # sparse countryside, empty cells between
    centre = xy[len(xy) // 3]
    dense = np.hypot(*(xy - centre).T) < 3.2
    load[dense] = 20.0                                                  # the cluster: ~85 % of the load
    k = 8
    label = suggest.partition(xy, load, nb, k)
    assert sorted(set(label.tolist())) == list(range(k))
    assert all(_pieces(label, nb, t) == 1 for t in range(k))
    assert suggest.cv_floor(load, k) == 0.0
    assert _cv(label, load, k) < 0.03
    assert len(set(label[dense].tolist())) >= 6                         # most territories reach into the cluster


def test_bisect_halves_are_contiguous_and_proportional():
    from geo_crm.territories import suggest
    xy, nb = _hex_lattice(14, 12)
    load = 1.0 + (np.arange(len(xy)) % 5)
    for k in (2, 3, 7):
        label = suggest.bisect(xy, load, nb, k)
        assert sorted(set(label.tolist())) == list(range(k))
        assert all(_pieces(label, nb, t) == 1 for t in range(k))
        assert _cv(label, load, k) < 0.1


def test_repair_joins_stray_pieces_to_a_neighbour():
    from geo_crm.territories import suggest
    n = 10
    nb = [[v for v in (u - 1, u + 1) if 0 <= v < n] for u in range(n)]
    label = np.array([0, 0, 0, 1, 1, 0, 1, 1, 1, 1])                   # unit 5 is a stray piece of 0
    load = np.ones(n)
    fixed = suggest.repair(label, load, nb, 2)
    assert fixed.tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]
    assert all(_pieces(fixed, nb, t) == 1 for t in range(2))


@pytest.mark.parametrize("metric", ["customers", "revenue", "workload"])
def test_suggestion_for_eight_territories_reaches_the_floor_on_sample(db_session, metric):
    """K=8 at 10 km cells: several territories share the dense capital region. Before the
    bisection start the sample gave CV 0.43–0.58 against floors of 0.006–0.12."""
    from geo_crm.security.scope import Scope
    from geo_crm.territories import suggest
    rows_, xy, load, nb = suggest.cells(db_session, Scope.system(), metric, 10_000.0, AS_OF)
    main = max((set(c) for c in _components(nb)), key=len)
    k = 8
    label = suggest.partition(xy, load, nb, k)
    assert label.shape == (len(rows_),) and set(label.tolist()) == set(range(k))   # every cell once, none empty
    floor = suggest.cv_floor(load, k)
    cv = _cv(label, load, k)
    assert floor - 1e-9 <= cv <= floor + 0.05
    assert cv < 0.2
    for t in range(k):
        assert _pieces(label, nb, t, within=main) == 1


def test_domain_refuses_territory_and_service_area_writes_without_the_verb(db_session):
    """The verbs are checked in the domain too, not only by the API decorator."""
    from geo_crm.errors import Forbidden
    from geo_crm.security.scope import Scope
    from geo_crm.territories import service, service_areas, suggest as suggest_mod
    sales = Scope(role="sales", user_id=None)
    area = {"type": "Polygon", "coordinates": [[[24.0, 60.0], [24.1, 60.0], [24.1, 60.1], [24.0, 60.0]]]}
    calls = [lambda: service.create(db_session, sales, name="nope", geometry=area),
             lambda: service.remove(db_session, sales, 1),
             lambda: service.merge(db_session, sales, [1, 2]),
             lambda: suggest_mod.accept(db_session, sales, {"type": "FeatureCollection", "features": []}),
             lambda: service_areas.recompute_voronoi(db_session, sales)]
    for call in calls:
        with pytest.raises(Forbidden):
            call()
