"""Records API: every resource × role, validation, optimistic locking, order totals,
order visibility, audit rows and customer re-assignment by branch service areas."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select, text

from geo_crm.models import AuditLog, Customer, Order, Product
from geo_crm.security.scope import Scope

STAFF = ["admin", "executive", "sales", "regional", "account", "service", "logistics"]
ALL = STAFF + ["customer"]
SQUARE = {"type": "Polygon", "coordinates": [[[24.0, 60.0], [24.5, 60.0], [24.5, 60.3], [24.0, 60.3], [24.0, 60.0]]]}
BOWTIE = {"type": "Polygon", "coordinates": [[[24.0, 60.0], [24.5, 60.3], [24.5, 60.0], [24.0, 60.3], [24.0, 60.0]]]}


@pytest.fixture(autouse=True)
def _fresh_login_limiter(monkeypatch):
    """The login rate limiter is process-wide; each test starts with a fresh one."""
    import geo_crm.api.auth as api_auth
    from geo_crm.security.auth import LoginRateLimiter
    monkeypatch.setattr(api_auth, "_limiter", LoginRateLimiter())


@pytest.fixture(autouse=True)
def _sequences_past_sample_ids(connection):
    """The sample loader inserts branches, vehicles and partners with explicit ids but
    does not advance their sequences (reported); setval is non-transactional and
    idempotent, so this only repairs the test database once."""
    for t in ("branch", "vehicle", "partner"):
        connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "
                                f"greatest((SELECT max(id) FROM {t}), "
                                f"(SELECT last_value FROM {t}_id_seq)))"))


def _fields(r):
    return [f["field"] for f in r.get_json()["error"].get("fields", [])]


def _user_scope(connection, username):
    from geo_crm.models import User
    from sqlalchemy.orm import Session
    s = Session(bind=connection)
    u = s.scalar(select(User).where(User.username == username))
    return Scope.for_user(u)


# -- reads per role ----------------------------------------------------------------------------
READS = {  # resource → roles allowed to list it (others: 403)
    "/api/v1/branches": set(ALL),
    "/api/v1/partners": set(STAFF),
    "/api/v1/products": set(ALL),
    "/api/v1/regions?limit=2": set(STAFF),
    "/api/v1/dictionaries": set(STAFF),
    "/api/v1/orders": set(ALL) - {"service"},
    "/api/v1/users": {"admin"},
    "/api/v1/audit-log": {"admin"},
}


@pytest.mark.parametrize("user", ALL)
def test_list_reads_per_role(api, user):
    a = api(user)
    for resource, allowed in READS.items():
        r = a.get(resource)
        assert r.status_code == (200 if user in allowed else 403), (resource, r.get_json())
        if r.status_code == 200:
            body = r.get_json()
            assert "total" in body
            if body.get("type") == "FeatureCollection":
                assert r.mimetype == "application/geo+json"
                assert body["numberReturned"] == len(body["features"])


def test_unauthenticated_is_401(client):
    assert client.get("/api/v1/branches").status_code == 401


def test_branch_geojson_and_service_area(api):
    r = api("admin").get("/api/v1/branches?limit=3&include_area=true")
    fc = r.get_json()
    assert fc["total"] >= 10 and len(fc["features"]) == 3
    f = fc["features"][0]
    assert f["geometry"]["type"] == "Point" and len(f["geometry"]["coordinates"]) == 2
    assert f["properties"]["service_area"]["type"] == "MultiPolygon"
    one = api("sales").get(f"/api/v1/branches/{f['id']}")
    assert one.headers["ETag"] == f'"{f["properties"]["version"]}"'
    assert isinstance(one.get_json()["properties"]["vehicles"], list)
    assert api("admin").get("/api/v1/branches/999999").status_code == 404


@pytest.mark.parametrize("user", ["executive", "sales", "regional", "account", "service", "logistics", "customer"])
def test_only_admin_writes_branches_products_partners(api, user):
    a = api(user)
    assert a.post("/api/v1/branches", json={"code": "X", "name": "X",
                                            "geometry": {"type": "Point", "coordinates": [24, 60]}}).status_code == 403
    assert a.patch("/api/v1/branches/1", json={"name": "Y"}).status_code == 403
    assert a.delete("/api/v1/vehicles/1").status_code == 403
    assert a.patch("/api/v1/products/1", json={"name": "Y"}).status_code == 403
    assert a.post("/api/v1/partners", json={"code": "P", "name": "P", "partner_type": "supplier",
                                            "geometry": {"type": "Point", "coordinates": [24, 60]}}).status_code == 403
    assert a.patch("/api/v1/regions/1", json={"population": 1}).status_code == 403


def test_customer_does_not_see_product_cost(api):
    items = api("customer").get("/api/v1/products").get_json()["items"]
    assert items and all("unit_cost" not in p for p in items) and all(p["active"] for p in items)
    assert "unit_cost" in api("account").get("/api/v1/products").get_json()["items"][0]


# -- branch writes, validation, locking, trigger re-assignment, audit --------------------------
def test_branch_crud_validation_and_locking(api, connection):
    a = api("admin")
    point = {"type": "Point", "coordinates": [24.9, 60.2]}
    r = a.post("/api/v1/branches", json={"code": "BR-TST", "name": "Test Depot", "geometry": point,
                                         "opening_hours": {"mon": ["08:00", "16:00"]}})
    assert r.status_code == 201, r.get_json()
    bid, etag = r.get_json()["id"], r.headers["ETag"]
    # bad inputs → 422 with the field name
    cases = [
        ({"service_area": BOWTIE}, "service_area"),
        ({"geometry": {"type": "Point", "coordinates": [200, 60]}}, "geometry"),
        ({"geometry": {"type": "Point", "coordinates": [24, 95]}}, "geometry"),
        ({"geometry": {"type": "Point", "coordinates": [2700000, 8400000],
                       "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}}}, "geometry.crs"),
        ({"geometry": "SRID=3857;POINT(2700000 8400000)"}, "geometry"),
        ({"geometry": {"type": "LineString", "coordinates": [[24, 60], [25, 61]]}}, "geometry"),
        ({"service_area": {"type": "Point", "coordinates": [24, 60]}}, "service_area"),
        ({"opening_hours": {"mon": ["17:00", "08:00"]}}, "opening_hours.mon"),
        ({"opening_hours": {"xyz": ["07:00", "08:00"]}}, "opening_hours.xyz"),
        ({"unknown": 1}, "unknown"),
    ]
    for body, field in cases:
        r = a.patch(f"/api/v1/branches/{bid}", json=body)
        assert r.status_code == 422, (body, r.get_json())
        assert field in _fields(r), (body, r.get_json())
    # accepted: EWKT with 4326 and GeoJSON with a CRS84 crs member
    ok = a.patch(f"/api/v1/branches/{bid}", json={"geometry": "SRID=4326;POINT(24.91 60.21)"})
    assert ok.status_code == 200, ok.get_json()
    etag2 = ok.headers["ETag"]
    assert etag2 != etag
    # stale If-Match → 412; fresh one → 200
    stale = a.patch(f"/api/v1/branches/{bid}", json={"name": "Stale"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    fresh = a.patch(f"/api/v1/branches/{bid}", json={"name": "Fresh"}, headers={"If-Match": etag2})
    assert fresh.status_code == 200 and fresh.get_json()["properties"]["name"] == "Fresh"
    # the audit trigger recorded who and old/new values
    row = connection.execute(text(
        "SELECT username, user_id, old, new FROM audit_log WHERE entity='branch' AND entity_id=:i AND action='update'"
        " ORDER BY id DESC LIMIT 1"), {"i": str(bid)}).one()
    assert row.username == "admin" and row.user_id is not None
    assert row.old == {"name": "Test Depot"} and row.new == {"name": "Fresh"}
    assert a.delete(f"/api/v1/branches/{bid}", headers={"If-Match": etag2}).status_code == 412
    assert a.delete(f"/api/v1/branches/{bid}").status_code == 204
    assert a.get(f"/api/v1/branches/{bid}").status_code == 404


def test_service_area_write_reassigns_customers(api, connection):
    """A new branch whose service area covers a customer takes it over (DB trigger)."""
    cid, lon, lat, before = connection.execute(text(
        "SELECT id, ST_X(geom), ST_Y(geom), service_branch_id FROM customer WHERE geom IS NOT NULL "
        "AND service_branch_id IS NOT NULL ORDER BY id LIMIT 1")).one()
    d = 0.002
    area = {"type": "Polygon", "coordinates": [[[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d],
                                                [lon - d, lat + d], [lon - d, lat - d]]]}
    r = api("admin").post("/api/v1/branches", json={"code": "BR-NEAR", "name": "Next door",
                                                    "geometry": {"type": "Point", "coordinates": [lon, lat]},
                                                    "service_area": area})
    assert r.status_code == 201, r.get_json()
    bid = r.get_json()["id"]
    assert r.get_json()["properties"]["service_area_kind"] == "drawn"
    now = connection.execute(text("SELECT service_branch_id FROM customer WHERE id=:c"), {"c": cid}).scalar()
    assert now == bid != before
    # removing the area hands the customer back
    r = api("admin").patch(f"/api/v1/branches/{bid}", json={"service_area": None})
    assert r.status_code == 200
    now = connection.execute(text("SELECT service_branch_id FROM customer WHERE id=:c"), {"c": cid}).scalar()
    assert now == before


def test_vehicles_nested_crud_and_validation(api):
    a = api("admin")
    r = a.post("/api/v1/branches/1/vehicles", json={"name": "Van T", "capacity": 100,
                                                    "shift_start": "06:00", "shift_end": "14:00"})
    assert r.status_code == 201, r.get_json()
    vid = r.get_json()["id"]
    assert any(v["id"] == vid for v in a.get("/api/v1/branches/1/vehicles").get_json()["items"])
    assert a.patch(f"/api/v1/vehicles/{vid}", json={"capacity": 0}).status_code == 422
    r = a.patch(f"/api/v1/vehicles/{vid}", json={"shift_end": "05:00"})
    assert r.status_code == 422 and "shift_end" in _fields(r)
    assert a.patch(f"/api/v1/vehicles/{vid}", json={"shift_start": "7am"}).status_code == 422
    assert a.post("/api/v1/branches/1/vehicles", json={"name": "Bad", "capacity": -5}).status_code == 422
    assert a.post("/api/v1/branches/999999/vehicles", json={"name": "X", "capacity": 5}).status_code == 404
    assert api("logistics").get(f"/api/v1/vehicles/{vid}").get_json()["capacity"] == 100
    assert a.delete(f"/api/v1/vehicles/{vid}").status_code == 204
    assert a.get(f"/api/v1/vehicles/{vid}").status_code == 404


def test_partner_crud_with_regions_and_coverage(api):
    a = api("admin")
    r = a.post("/api/v1/partners", json={"code": "P-T1", "name": "Test Partner", "partner_type": "reseller",
                                         "credit_level": "BBB", "geometry": {"type": "Point", "coordinates": [25, 61]},
                                         "coverage": SQUARE, "region_ids": [1, 2]})
    assert r.status_code == 201, r.get_json()
    p = r.get_json()
    assert p["properties"]["region_ids"] == [1, 2] and p["properties"]["coverage"]["type"] == "MultiPolygon"
    pid = p["id"]
    assert a.patch(f"/api/v1/partners/{pid}", json={"region_ids": [999999]}).status_code == 422
    assert a.patch(f"/api/v1/partners/{pid}", json={"partner_type": "pirate"}).status_code == 422
    assert a.patch(f"/api/v1/partners/{pid}", json={"coverage": BOWTIE}).status_code == 422
    r = a.patch(f"/api/v1/partners/{pid}", json={"region_ids": [3]}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.get_json()["properties"]["region_ids"] == [3]
    assert a.patch(f"/api/v1/partners/{pid}", json={"name": "again"}, headers={"If-Match": '"1"'}).status_code == 412
    listed = api("sales").get("/api/v1/partners?region_id=3&q=Test").get_json()
    assert [f["id"] for f in listed["features"]] == [pid]
    assert api("customer").get(f"/api/v1/partners/{pid}").status_code == 403


def test_products_crud(api):
    a = api("admin")
    r = a.post("/api/v1/products", json={"sku": "SKU-T1", "name": "Widget", "unit_price": 10, "unit_cost": 4,
                                         "load_units": 2})
    assert r.status_code == 201, r.get_json()
    pid = r.get_json()["id"]
    assert a.post("/api/v1/products", json={"sku": "SKU-T1", "name": "Dup", "unit_price": 1,
                                            "unit_cost": 1}).status_code == 422
    r = a.patch(f"/api/v1/products/{pid}", json={"unit_price": -1})
    assert r.status_code == 422 and "unit_price" in _fields(r)
    assert a.patch(f"/api/v1/products/{pid}", json={"active": False}).status_code == 200
    assert api("customer").get(f"/api/v1/products/{pid}").status_code == 404   # inactive: hidden from customers
    assert a.delete(f"/api/v1/products/{pid}").status_code == 204
    # a product on orders cannot be deleted
    assert a.delete("/api/v1/products/1").status_code == 422


# -- orders ---------------------------------------------------------------------------------
def _visible_customer(connection, username):
    scope = _user_scope(connection, username)
    return connection.execute(select(Customer.id).where(scope.customer_filter()).order_by(Customer.id).limit(1)).scalar()


def test_order_totals_are_computed_not_trusted(api, connection):
    cid = _visible_customer(connection, "account")
    prices = {r.id: r for r in connection.execute(select(Product.id, Product.unit_price, Product.unit_cost,
                                                         Product.load_units).where(Product.id.in_([1, 2])))}
    r = api("account").post("/api/v1/orders", json={"customer_id": cid, "lines": [
        {"product_id": 1, "quantity": 3}, {"product_id": 2, "quantity": 2}]})
    assert r.status_code == 201, r.get_json()
    p = r.get_json()["properties"]
    exp_amount = prices[1].unit_price * 3 + prices[2].unit_price * 2
    exp_cost = prices[1].unit_cost * 3 + prices[2].unit_cost * 2
    assert Decimal(str(p["total_amount"])) == exp_amount
    assert Decimal(str(p["total_cost"])) == exp_cost
    assert p["total_load"] == prices[1].load_units * 3 + prices[2].load_units * 2
    assert p["status"] == "draft" and p["number"].startswith("SO")
    # delivery point defaults to the customer's location
    lonlat = connection.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM customer WHERE id=:c"), {"c": cid}).one()
    assert r.get_json()["geometry"]["coordinates"] == pytest.approx(list(lonlat))
    # client-sent totals are refused, not silently used
    r2 = api("account").post("/api/v1/orders", json={"customer_id": cid, "total_amount": 1,
                                                     "lines": [{"product_id": 1, "quantity": 1}]})
    assert r2.status_code == 422 and "total_amount" in _fields(r2)


@pytest.mark.parametrize("qty", [0, -3])
def test_order_rejects_non_positive_quantities(api, connection, qty):
    cid = _visible_customer(connection, "account")
    r = api("account").post("/api/v1/orders", json={"customer_id": cid, "lines": [{"product_id": 1, "quantity": qty}]})
    assert r.status_code == 422 and "lines.0.quantity" in _fields(r)


def test_order_validation(api, connection):
    cid = _visible_customer(connection, "admin")
    a = api("admin")
    assert "lines" in _fields(a.post("/api/v1/orders", json={"customer_id": cid, "lines": []}))
    assert "lines.0.product_id" in _fields(a.post("/api/v1/orders", json={
        "customer_id": cid, "lines": [{"product_id": 999999, "quantity": 1}]}))
    assert "delivery_geometry" in _fields(a.post("/api/v1/orders", json={
        "customer_id": cid, "lines": [{"product_id": 1, "quantity": 1}],
        "delivery_geometry": {"type": "Point", "coordinates": [24, -91]}}))
    assert "status" in _fields(a.post("/api/v1/orders", json={
        "customer_id": cid, "status": "delivered", "lines": [{"product_id": 1, "quantity": 1}]}))


def test_order_for_invisible_customer_is_refused_without_leak(api, connection):
    scope = _user_scope(connection, "account")
    hidden = connection.execute(select(Customer.id).where(~scope.customer_filter()).limit(1)).scalar()
    r = api("account").post("/api/v1/orders", json={"customer_id": hidden, "lines": [{"product_id": 1, "quantity": 1}]})
    r_missing = api("account").post("/api/v1/orders", json={"customer_id": 99999999,
                                                            "lines": [{"product_id": 1, "quantity": 1}]})
    assert r.status_code == r_missing.status_code == 422
    assert r.get_json() == r_missing.get_json()


def test_order_status_transitions_and_locking(api, connection):
    cid = _visible_customer(connection, "sales")
    a = api("sales")
    o = a.post("/api/v1/orders", json={"customer_id": cid, "lines": [{"product_id": 1, "quantity": 1}]})
    assert o.status_code == 201, o.get_json()
    oid, v = o.get_json()["id"], o.get_json()["properties"]["version"]
    assert a.patch(f"/api/v1/orders/{oid}", json={"status": "delivered"}).status_code == 422
    r = a.patch(f"/api/v1/orders/{oid}", json={"status": "confirmed", "lines": [{"product_id": 2, "quantity": 4}]},
                headers={"If-Match": f'"{v}"'})
    assert r.status_code == 200 and r.get_json()["properties"]["status"] == "confirmed"
    assert a.patch(f"/api/v1/orders/{oid}", json={"notes": "x"}, headers={"If-Match": f'"{v}"'}).status_code == 412
    assert a.patch(f"/api/v1/orders/{oid}", json={"status": "delivered"}).status_code == 200
    r = a.patch(f"/api/v1/orders/{oid}", json={"lines": [{"product_id": 1, "quantity": 1}]})
    assert r.status_code == 422   # delivered orders are final
    assert a.patch(f"/api/v1/orders/{oid}", json={"status": "cancelled"}).status_code == 422
    assert a.delete(f"/api/v1/orders/{oid}").status_code == 422


def test_order_visibility_per_role(api, connection):
    """Every role's list equals exactly what scope.order_filter() admits; no other
    customer's order ever appears, and a hidden order answers 404."""
    for user in ["admin", "sales", "regional", "account", "logistics", "customer"]:
        scope = _user_scope(connection, user)
        expected = connection.execute(select(Order.id).where(scope.order_filter())
                                      .order_by(Order.order_date.desc(), Order.id.desc()).limit(500)).scalars().all()
        total = connection.execute(select(Order.id).where(scope.order_filter())).scalars().all()
        body = api(user).get("/api/v1/orders?limit=500").get_json()
        assert body["total"] == len(total)
        assert [f["id"] for f in body["features"]] == expected
        hidden = connection.execute(select(Order.id).where(~scope.order_filter()).limit(1)).scalar()
        if hidden is not None:
            assert api(user).get(f"/api/v1/orders/{hidden}").status_code == 404
            if scope.can("order.write"):
                assert api(user).patch(f"/api/v1/orders/{hidden}", json={"notes": "x"}).status_code == 404
    cust = api("customer").get("/api/v1/orders?limit=500").get_json()
    assert cust["features"] and {f["properties"]["customer_id"] for f in cust["features"]} == {1}
    assert all("total_cost" not in f["properties"] for f in cust["features"])
    logi = api("logistics").get("/api/v1/orders?limit=500").get_json()
    assert {f["properties"]["status"] for f in logi["features"]} <= {"confirmed", "delivered"}


def test_read_only_roles_get_403_on_visible_orders(api, connection):
    oid = connection.execute(select(Order.id).where(Order.customer_id == 1)).scalars().first()
    for user in ["customer", "executive"]:
        assert api(user).get(f"/api/v1/orders/{oid}").status_code == 200
        assert api(user).patch(f"/api/v1/orders/{oid}", json={"notes": "x"}).status_code == 403
        assert api(user).post("/api/v1/orders", json={"customer_id": 1,
                                                      "lines": [{"product_id": 1, "quantity": 1}]}).status_code == 403


def test_order_filters(api):
    a = api("admin")
    all_ = a.get("/api/v1/orders?limit=1").get_json()["total"]
    canc = a.get("/api/v1/orders?status=cancelled&limit=500").get_json()
    assert 0 < canc["total"] < all_ and {f["properties"]["status"] for f in canc["features"]} == {"cancelled"}
    ranged = a.get("/api/v1/orders?date_from=2026-10-01&date_to=2026-10-31&limit=500").get_json()
    assert all("2026-10-01" <= f["properties"]["order_date"] <= "2026-10-31" for f in ranged["features"])
    assert a.get("/api/v1/orders?date_from=2026-10-31&date_to=2026-10-01").status_code == 422
    assert a.get("/api/v1/orders?status=bogus").status_code == 422
    assert a.get("/api/v1/orders?limit=100000").status_code == 422


def test_new_order_clears_churn_warning_when_churn_feature_present(api, connection):
    svc = pytest.importorskip("geo_crm.churn.service")
    if not hasattr(svc, "clear_on_order"):
        pytest.skip("churn.service.clear_on_order not available")
    cid = _visible_customer(connection, "account")
    connection.execute(text("DELETE FROM churn_alert WHERE customer_id=:c"), {"c": cid})
    connection.execute(text("INSERT INTO churn_alert (customer_id, detected_at, status) VALUES (:c, now(), 'warning')"),
                       {"c": cid})
    r = api("account").post("/api/v1/orders", json={"customer_id": cid, "lines": [{"product_id": 1, "quantity": 1}]})
    assert r.status_code == 201
    open_ = connection.execute(text("SELECT count(*) FROM churn_alert WHERE customer_id=:c AND status "
                                    "IN ('warning','under_recovery')"), {"c": cid}).scalar()
    assert open_ == 0


# -- regions --------------------------------------------------------------------------------
def test_regions_geojson_and_simplification(api, connection):
    a = api("sales")
    full = a.get("/api/v1/regions?level=1&limit=500").get_json()
    simp = a.get("/api/v1/regions?level=1&limit=500&simplify_m=2000").get_json()
    assert full["total"] == simp["total"] > 0
    f = full["features"][0]
    assert {"population", "area_km2", "name", "code"} <= set(f["properties"])
    assert f["geometry"]["type"] in ("MultiPolygon", "Polygon")

    def nverts(fc):
        return sum(len(ring) for ft in fc["features"] for poly in
                   (ft["geometry"]["coordinates"] if ft["geometry"]["type"] == "MultiPolygon"
                    else [ft["geometry"]["coordinates"]]) for ring in poly)
    assert nverts(simp) < nverts(full)
    assert a.get("/api/v1/regions?simplify_m=-1").status_code == 422


def test_region_admin_update(api, connection):
    r = api("admin").patch("/api/v1/regions/1", json={"population": 12345, "name": "Renamed"})
    assert r.status_code == 200 and r.get_json()["properties"]["population"] == 12345
    assert api("admin").patch("/api/v1/regions/1", json={"area_km2": 1}).status_code == 422
    row = connection.execute(select(AuditLog.username, AuditLog.new).where(
        AuditLog.entity == "region", AuditLog.entity_id == "1").order_by(AuditLog.id.desc())).first()
    assert row.username == "admin" and row.new["population"] == 12345


def test_openapi_lists_records_operations(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    for path in ["/branches", "/branches/{branch_id}/vehicles", "/vehicles/{vehicle_id}", "/partners",
                 "/products", "/orders", "/orders/{order_id}", "/regions", "/users", "/dictionaries", "/audit-log"]:
        assert any(p.endswith(path) for p in doc["paths"]), path
