"""Customers API: CRUD per role, validation, optimistic locking, paging, spatial
filters checked against independent computations (pyproj Geod, Shapely), CSV."""
from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from pyproj import Geod
from shapely import wkb
from shapely.geometry import box, shape
from sqlalchemy import text


pytestmark = pytest.mark.usefixtures("no_login_rate_limit")

URL = "/api/v1/customers"
GEOD = Geod(ellps="WGS84")
HOSTILE = "<img src=x onerror=alert(1)>"


def _code() -> str:
    return "T-" + uuid.uuid4().hex[:10]


def _new(api, user="admin", **fields):
    body = {"code": _code(), "name": "Test Oy", "lon": 24.94, "lat": 60.17, **fields}
    return api(user).post(URL, json=body)


def _all_points(connection):
    rows = connection.execute(text("SELECT id, ST_AsBinary(geom) FROM customer WHERE geom IS NOT NULL")).all()
    return {r[0]: wkb.loads(bytes(r[1])) for r in rows}


def _collect(api_client, url, **params):
    ids, cursor, pages = [], None, 0
    while True:
        q = dict(params, **({"cursor": cursor} if cursor else {}))
        r = api_client.get(url, query_string=q)
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        ids += [f["id"] for f in body["features"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            return ids, body, pages


# -- CRUD per role ---------------------------------------------------------------------
@pytest.mark.parametrize("user,status", [("admin", 201), ("sales", 201), ("account", 201), ("executive", 403),
                                         ("regional", 403), ("service", 403), ("logistics", 403),
                                         ("customer", 403)])
def test_create_per_role(api, user, status):
    r = _new(api, user)
    assert r.status_code == status, r.get_json()
    if status == 201:
        body = r.get_json()
        assert body["type"] == "Feature" and body["geometry"]["coordinates"] == [24.94, 60.17]
        assert body["properties"]["geocode_quality"] == "manual"
        assert r.headers["ETag"] == '"1"'
        assert r.headers["Location"].endswith(f"/customers/{body['id']}")


def test_account_manager_owns_what_they_create(api, connection):
    r = _new(api, "account")
    cid = r.get_json()["id"]
    owner = connection.execute(text("SELECT owner_id FROM customer WHERE id=:i"), {"i": cid}).scalar()
    uid = connection.execute(text("SELECT id FROM app_user WHERE username='account'")).scalar()
    assert owner == uid
    assert api("account").get(f"{URL}/{cid}").status_code == 200


def test_update_and_delete_per_role(api, connection):
    cid = _new(api, "admin", name="Roles Oy").get_json()["id"]
    # executive sees it but may not change it
    assert api("executive").patch(f"{URL}/{cid}", json={"name": "X"}).status_code == 403
    # regional only sees customers in their territories: Helsinki is in theirs or not; either way no update
    assert api("regional").patch(f"{URL}/{cid}", json={"name": "X"}).status_code in (403, 404)
    r = api("admin").patch(f"{URL}/{cid}", json={"name": "Renamed Oy"})
    assert r.status_code == 200 and r.get_json()["properties"]["name"] == "Renamed Oy"
    assert r.headers["ETag"] == '"2"'
    assert api("sales").delete(f"{URL}/{cid}").status_code in (403, 404)
    assert api("admin").delete(f"{URL}/{cid}").status_code == 204
    assert api("admin").get(f"{URL}/{cid}").status_code == 404


def test_reassign_owner_needs_permission(api, connection):
    cid = _new(api, "admin").get_json()["id"]
    acc = connection.execute(text("SELECT id FROM app_user WHERE username='account'")).scalar()
    r = api("admin").put(f"{URL}/{cid}/owner", json={"owner_id": acc})
    assert r.status_code == 200 and r.get_json()["properties"]["owner_id"] == acc
    # the account manager now sees it, but may not give it away
    assert api("account").put(f"{URL}/{cid}/owner", json={"owner_id": None}).status_code == 403
    assert api("account").patch(f"{URL}/{cid}", json={"owner_id": None}).status_code == 403
    bad = api("admin").put(f"{URL}/{cid}/owner", json={"owner_id": 999999})
    assert bad.status_code == 422 and bad.get_json()["error"]["fields"][0]["field"] == "owner_id"


def test_customer_login_may_only_correct_own_location(api, connection):
    own = connection.execute(text("SELECT customer_id FROM app_user WHERE username='customer'")).scalar()
    c = api("customer")
    r = c.get(f"{URL}/{own}")
    assert r.status_code == 200
    props = r.get_json()["properties"]
    assert "notes" not in props and "credit_rating" not in props and "owner_id" not in props
    assert c.patch(f"{URL}/{own}", json={"name": "Mine"}).status_code == 403
    r = c.patch(f"{URL}/{own}", json={"geometry": {"type": "Point", "coordinates": [25.0, 60.2]},
                                      "geocode_quality": "exact"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["geometry"]["coordinates"] == [25.0, 60.2]
    row = connection.execute(text("SELECT ST_X(geom), ST_Y(geom), geocode_quality FROM customer WHERE id=:i"),
                             {"i": own}).one()
    assert tuple(row) == (25.0, 60.2, "manual")
    other = connection.execute(text("SELECT min(id) FROM customer WHERE id <> :i"), {"i": own}).scalar()
    assert c.patch(f"{URL}/{other}", json={"lon": 25, "lat": 60}).status_code == 404


def test_field_restriction_service_and_logistics(api):
    for user, hidden, shown in [("service", {"notes", "owner_id", "delivery_notes", "credit_rating"}, {"level"}),
                                ("logistics", {"notes", "owner_id", "level", "status"}, {"delivery_notes"})]:
        body = api(user).get(URL, query_string={"limit": 5}).get_json()
        assert body["features"], user
        for f in body["features"]:
            assert not hidden & set(f["properties"]), (user, hidden & set(f["properties"]))
            assert shown <= set(f["properties"])
    # filtering on a hidden field would reveal it
    r = api("logistics").get(URL, query_string={"level": "key"})
    assert r.status_code == 422 and r.get_json()["error"]["fields"][0]["field"] == "level"


# -- validation ------------------------------------------------------------------------
CREATE_CASES = [
    ({"lat": 95, "lon": 24}, "lat"),
    ({"lon": 181, "lat": 60}, "lon"),
    ({"level": "platinum"}, "level"),
    ({"colour": "red"}, "colour"),
    ({"name": "   "}, "name"),
    ({"email": "not-an-email"}, "email"),
    ({"geometry": {"type": "Point", "coordinates": [24]}}, "geometry.coordinates"),
    ({"geometry": {"type": "LineString", "coordinates": [[24, 60], [25, 61]]}}, "geometry.type"),
    ({"geometry": {"type": "Point", "coordinates": [24, 100]}}, "geometry.coordinates"),
    ({"delivery_start": "16:00", "delivery_end": "08:00"}, "body"),
    ({"country": "Finland"}, "country"),
    ({"website": "javascript:alert(1)"}, "website"),
]


def test_create_validation(api):
    """One login, many bad bodies: each answers 422 naming the offending field."""
    a = api("admin")
    for patch, field in CREATE_CASES:
        body = {"code": _code(), "name": "Valid Oy", **patch}
        r = a.post(URL, json=body)
        assert r.status_code == 422, (patch, r.get_json())
        err = r.get_json()["error"]
        assert err["code"] == "validation"
        fields = [f["field"] for f in err["fields"]]
        assert field in fields, (patch, fields)


def test_duplicate_code_and_bad_json(api):
    code = _code()
    assert _new(api, code=code).status_code == 201
    r = _new(api, code=code)
    assert r.status_code == 422 and r.get_json()["error"]["fields"][0]["field"] == "code"
    r = api("admin").post(URL, data="{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


LIST_CASES = [
    ({"within": json.dumps({"type": "Polygon", "coordinates": [[[24, 60], [25, 61], [25, 60], [24, 61], [24, 60]]]})},
     "within"),
    ({"within": "{nope"}, "within"),
    ({"bbox": "1,2,3"}, "bbox"),
    ({"near": "24,95", "radius_m": 1000}, "near"),
    ({"level": "gold"}, "level.0"),
    ({"limit": 0}, "limit"),
    ({"limit": 1001}, "limit"),
    ({"sort": "distance"}, "sort"),
    ({"near": "24,60"}, "radius_m"),
    ({"radius_m": 500}, "radius_m"),
    ({"cursor": "!!!"}, "cursor"),
    ({"frobnicate": 1}, "frobnicate"),
]


def test_list_validation(api):
    a = api("admin")
    for params, field in LIST_CASES:
        r = a.get(URL, query_string=params)
        assert r.status_code == 422, (params, r.get_json())
        assert field in [f["field"] for f in r.get_json()["error"]["fields"]], (params, r.get_json())


def test_search_rejects_self_intersecting_polygon(api):
    bow = {"type": "Polygon", "coordinates": [[[24, 60], [25, 61], [25, 60], [24, 61], [24, 60]]]}
    r = api("admin").post(f"{URL}/search", json={"within": bow})
    assert r.status_code == 422
    f = r.get_json()["error"]["fields"][0]
    assert f["field"] == "within" and "Self-intersection" in f["problem"]


# -- optimistic locking ----------------------------------------------------------------
def test_if_match_prevents_lost_update(api):
    cid = _new(api).get_json()["id"]
    a = api("admin")
    etag = a.get(f"{URL}/{cid}").headers["ETag"]
    assert a.patch(f"{URL}/{cid}", json={"phone": "111"}, headers={"If-Match": etag}).status_code == 200
    # a second editor still holding the old ETag
    r = a.patch(f"{URL}/{cid}", json={"phone": "222"}, headers={"If-Match": etag})
    assert r.status_code == 412 and r.get_json()["error"]["code"] == "conflict"
    assert a.get(f"{URL}/{cid}").get_json()["properties"]["phone"] == "111"
    # version in the body works without If-Match (409 when stale)
    r = a.patch(f"{URL}/{cid}", json={"phone": "333", "version": 1})
    assert r.status_code == 409
    r = a.patch(f"{URL}/{cid}", json={"phone": "333", "version": 2})
    assert r.status_code == 200 and r.headers["ETag"] == '"3"'
    # PATCH without any version still works
    assert a.patch(f"{URL}/{cid}", json={"phone": "444"}).status_code == 200
    assert a.delete(f"{URL}/{cid}", headers={"If-Match": '"1"'}).status_code == 412
    assert a.get(f"{URL}/{cid}", headers={"If-None-Match": '"4"'}).status_code == 304


def test_put_replaces_and_clears_location(api, connection):
    cid = _new(api, notes="old notes", level="key").get_json()["id"]
    r = api("admin").put(f"{URL}/{cid}", json={"code": _code(), "name": "Replaced"}, headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.get_json()
    p = r.get_json()["properties"]
    assert p["notes"] == "" and p["level"] == "ordinary" and p["geocode_quality"] == "none"
    assert r.get_json()["geometry"] is None
    assert connection.execute(text("SELECT region_id FROM customer WHERE id=:i"), {"i": cid}).scalar() is None


def test_location_sets_membership_and_quality(api, connection):
    cid = _new(api, lon=24.94, lat=60.17, geocode_quality="address").get_json()["id"]
    row = connection.execute(text("SELECT geocode_quality, region_id IS NOT NULL FROM customer WHERE id=:i"),
                             {"i": cid}).one()
    assert row[0] == "address" and row[1] is True
    r = api("admin").patch(f"{URL}/{cid}", json={"geometry": None})
    assert r.status_code == 200 and r.get_json()["properties"]["geocode_quality"] == "none"


# -- paging ----------------------------------------------------------------------------
def test_cursor_paging_is_complete_and_consistent(api, connection):
    a = api("admin")
    total = connection.execute(text("SELECT count(*) FROM customer WHERE status='active'")).scalar()
    ids, last, pages = _collect(a, URL, status="active", limit=97, sort="code")
    assert len(ids) == len(set(ids)) == total and pages == -(-total // 97)
    assert last["numberMatched"] == total
    codes = dict(connection.execute(text("SELECT id, code FROM customer")).all())
    assert [codes[i] for i in ids] == sorted(codes[i] for i in ids) or True  # DB collation; check by DB:
    db_order = connection.execute(text("SELECT id FROM customer WHERE status='active' ORDER BY code, id")).scalars().all()
    assert ids == db_order
    # offset paging gives the same sequence
    r = a.get(URL, query_string={"status": "active", "limit": 97, "offset": 97, "sort": "code"}).get_json()
    assert [f["id"] for f in r["features"]] == db_order[97:194]
    # descending level sort, keyset across ties
    ids_desc, _, _ = _collect(a, URL, limit=250, sort="level", order="desc")
    rank = {"key": 0, "major": 1, "ordinary": 2, "small": 3}
    levels = dict(connection.execute(text("SELECT id, level FROM customer")).all())
    keys = [(rank[levels[i]], i) for i in ids_desc]
    assert keys == sorted(keys, reverse=True) and len(ids_desc) == len(levels)


def test_cursor_bound_to_its_query(api):
    a = api("admin")
    cur = a.get(URL, query_string={"limit": 5, "level": "key"}).get_json()["next_cursor"]
    r = a.get(URL, query_string={"limit": 5, "level": "small", "cursor": cur})
    assert r.status_code == 422 and r.get_json()["error"]["fields"][0]["field"] == "cursor"


# -- spatial filters against independent computations ------------------------------------
def test_near_sorted_by_geodesic_distance(api, connection):
    lon, lat, radius = 24.94, 60.17, 50_000
    pts = _all_points(connection)
    expected = {}
    for cid, p in pts.items():
        _, _, d = GEOD.inv(lon, lat, p.x, p.y)
        expected[cid] = d
    inside = {cid for cid, d in expected.items() if d <= radius}
    assert len(inside) > 5
    r = api("admin").get(URL, query_string={"near": f"{lon},{lat}", "radius_m": radius, "limit": 1000}).get_json()
    got = [(f["id"], f["properties"]["distance_m"]) for f in r["features"]]
    # boundary tolerance: only points within 1 m of the circle may differ
    assert {i for i, _ in got} ^ inside <= {cid for cid, d in expected.items() if abs(d - radius) < 1}
    for cid, d in got:
        assert d == pytest.approx(expected[cid], abs=0.5), cid
    ds = [d for _, d in got]
    assert ds == sorted(ds) and r["numberMatched"] == len(got) == r["numberReturned"]
    # keyset paging over the distance gives the same sequence, page by page
    paged, _, pages = _collect(api("admin"), URL, near=f"{lon},{lat}", radius_m=radius, limit=7)
    assert paged == [i for i, _ in got] and pages == -(-len(got) // 7)


def test_bbox_and_within_match_shapely(api, connection):
    pts = _all_points(connection)
    b = (24.5, 60.0, 25.5, 60.6)
    truth = {cid for cid, p in pts.items() if box(*b).intersects(p)}
    ids, last, _ = _collect(api("admin"), URL, bbox=",".join(map(str, b)), limit=200)
    assert set(ids) == truth and last["numberMatched"] == len(truth) and truth
    poly = {"type": "Polygon", "coordinates": [[[22.0, 60.0], [26.0, 60.0], [27.5, 62.5], [23.0, 63.0],
                                                [24.0, 61.5], [22.0, 60.0]]]}
    truth = {cid for cid, p in pts.items() if shape(poly).intersects(p)}
    r = api("admin").post(f"{URL}/search", json={"within": poly, "limit": 1000}).get_json()
    assert {f["id"] for f in r["features"]} == truth and r["numberMatched"] == len(truth) and truth
    # the same polygon as a query-string parameter
    ids, _, _ = _collect(api("admin"), URL, within=json.dumps(poly), limit=1000)
    assert set(ids) == truth


def test_bbox_across_antimeridian(api):
    a = api("admin")
    mk = lambda lon: _new(api, lon=lon, lat=-17.0).get_json()["id"]  # noqa: E731
    east, west, mid = mk(179.5), mk(-179.5), mk(0.0)
    ids, _, _ = _collect(a, URL, bbox="179,-18,-179,-16", limit=100)
    assert {east, west} <= set(ids) and mid not in ids


# -- CSV and hostile data ---------------------------------------------------------------
def test_csv_export_neutralises_formulas(api, connection):
    nasty = ["=HYPERLINK(\"http://x\")", "+1+2", "-3", "@SUM(A1)", "\tTab", "\rCR"]
    tag = "CSV" + uuid.uuid4().hex[:8]
    ids = [_new(api, code=f"{tag}-{i}", name="placeholder").get_json()["id"] for i in range(len(nasty))]
    for cid, n in zip(ids, nasty):  # SQL: the API strips leading whitespace, an import might not
        connection.execute(text("UPDATE customer SET name=:n WHERE id=:i"), {"n": n, "i": cid})
    r = api("admin").get(URL, query_string={"format": "csv", "q": tag})
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"), newline="")))
    by_id = {int(x["id"]): x for x in rows}
    assert set(by_id) == set(ids)
    for cid, n in zip(ids, nasty):
        assert by_id[cid]["name"] == "'" + n
        assert by_id[cid]["code"] == by_id[cid]["code"].lstrip("'")  # harmless cells untouched
    assert api("service").get(URL, query_string={"format": "csv"}).status_code == 403


def test_hostile_name_round_trips_as_data(api):
    r = _new(api, name=HOSTILE)
    cid = r.get_json()["id"]
    got = api("admin").get(f"{URL}/{cid}")
    assert got.get_json()["properties"]["name"] == HOSTILE
    assert got.mimetype == "application/geo+json"
    sug = api("admin").get(f"{URL}/suggest", query_string={"q": "<img"}).get_json()["suggestions"]
    assert any(s["id"] == cid and s["name"] == HOSTILE for s in sug)


# -- contacts ---------------------------------------------------------------------------
def test_contacts_crud(api):
    cid = _new(api).get_json()["id"]
    a = api("admin")
    r = a.post(f"{URL}/{cid}/contacts", json={"name": "Anna", "email": "anna@example.com", "is_primary": True})
    assert r.status_code == 201, r.get_json()
    k1 = r.get_json()["id"]
    k2 = a.post(f"{URL}/{cid}/contacts", json={"name": "Bert", "is_primary": True}).get_json()["id"]
    listed = a.get(f"{URL}/{cid}/contacts").get_json()["contacts"]
    assert [(k["id"], k["is_primary"]) for k in listed] == [(k2, True), (k1, False)]
    assert a.post(f"{URL}/{cid}/contacts", json={"name": "X", "email": "bad"}).status_code == 422
    r = a.patch(f"/api/v1/contacts/{k1}", json={"title": "CEO"}, headers={"If-Match": '"1"'})
    assert r.status_code == 412  # k1 was bumped when k2 became primary
    assert a.patch(f"/api/v1/contacts/{k1}", json={"title": "CEO"}).get_json()["title"] == "CEO"
    assert api("executive").post(f"{URL}/{cid}/contacts", json={"name": "Y"}).status_code == 403
    assert a.delete(f"/api/v1/contacts/{k1}").status_code == 204
    assert a.get(f"/api/v1/contacts/{k1}").status_code == 404


def test_contacts_of_invisible_customer_are_404(api, connection):
    own = connection.execute(text("SELECT customer_id FROM app_user WHERE username='customer'")).scalar()
    other = connection.execute(text("SELECT c.customer_id, c.id FROM contact c WHERE c.customer_id <> :i LIMIT 1"),
                               {"i": own}).one()
    cu = api("customer")
    assert cu.get(f"{URL}/{other[0]}/contacts").status_code == 404
    assert cu.get(f"/api/v1/contacts/{other[1]}").status_code == 404
    assert cu.post(f"{URL}/{other[0]}/contacts", json={"name": "Z"}).status_code == 404


def test_openapi_documents_customer_operations(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    paths = doc["paths"]
    for path, method in [("/api/v1/customers", "get"), ("/api/v1/customers", "post"),
                         ("/api/v1/customers/search", "post"), ("/api/v1/customers/suggest", "get"),
                         ("/api/v1/customers/{customer_id}", "patch"), ("/api/v1/customers/{customer_id}", "put"),
                         ("/api/v1/customers/{customer_id}", "delete"),
                         ("/api/v1/customers/{customer_id}/contacts", "post"), ("/api/v1/contacts/{contact_id}", "patch")]:
        assert method in paths[path], (path, method)
    listing = paths["/api/v1/customers"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert {"q", "level", "bbox", "near", "radius_m", "within", "sort", "limit", "cursor", "format"} <= names
    assert "application/geo+json" in listing["responses"]["200"]["content"]
    assert "CustomerCreate" in doc["components"]["schemas"]
    assert "lat" in doc["components"]["schemas"]["CustomerCreate"]["properties"]
