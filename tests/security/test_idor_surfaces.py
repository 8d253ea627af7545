"""The IDOR sweep's second half: surfaces that answer many records at once must not
reveal a record the caller may not see — collection filters naming a hidden id,
vector tiles, OGC API items, exports, report figures and other branches' route plans.
Each test also shows the same request reveals the record to a role that may see it,
so it cannot pass vacuously."""
from __future__ import annotations

import csv
import io
import math
from datetime import date

import mapbox_vector_tile
import pytest
from sqlalchemy import func, not_, select

from geo_crm.api.openapi import build_document
from geo_crm.models import Branch, Customer, DeliveryPlan, Territory, User
from geo_crm.security.scope import Scope

DOC = build_document()
RESTRICTED = ["sales", "regional", "account", "service", "logistics", "customer"]


def scope_of(db_session, username):
    return Scope.for_user(db_session.scalar(select(User).where(User.username == username)))


def hidden_customer(db_session, scope, with_geom=False):
    """A customer the scope may not see, with a name no other customer has (sample names
    can repeat, and the tests look for the name in what the caller gets)."""
    unique_names = select(Customer.name).group_by(Customer.name).having(func.count() == 1)
    q = select(Customer).where(not_(scope.customer_filter()), Customer.name.in_(unique_names))
    if with_geom:
        q = q.where(Customer.geom.is_not(None))
    return db_session.scalars(q.order_by(Customer.id).limit(1)).one()


def visible_ids(db_session, scope):
    return set(db_session.scalars(select(Customer.id).where(scope.customer_filter())))


def _lists(obj):
    """Every list of records in a JSON answer (features, items, rows...)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("features", "items", "rows", "results", "data", "customers", "alerts", "records") \
                    and isinstance(v, list):
                yield k, v
            else:
                yield from _lists(v)


def _mentions_customer(obj, cid) -> bool:
    if isinstance(obj, dict):
        if obj.get("customer_id") == cid or obj.get("properties", {}).get("customer_id") == cid:
            return True
        return any(_mentions_customer(v, cid) for v in obj.values())
    if isinstance(obj, list):
        return any(_mentions_customer(v, cid) for v in obj)
    return False


def collection_ops_with(param):
    for path, ops in DOC["paths"].items():
        if "{" in path:
            continue
        for method, op in ops.items():
            if method == "get" and any(p["name"] == param and p["in"] == "query" for p in op["parameters"]):
                yield path


def test_the_filter_sweep_has_endpoints():
    assert len(list(collection_ops_with("customer_id"))) >= 3
    assert "/api/v1/customers" in set(collection_ops_with("owner_id"))


@pytest.mark.parametrize("username", RESTRICTED)
def test_collection_filters_naming_a_hidden_customer_reveal_nothing(api, db_session, username):
    scope = scope_of(db_session, username)
    c = hidden_customer(db_session, scope)
    client = api(username)
    for path in collection_ops_with("customer_id"):
        r = client.get(f"{path}?customer_id={c.id}")
        assert r.status_code in (200, 403, 404, 422), (path, r.status_code)
        body = r.get_data(as_text=True)
        assert c.name not in body and c.code not in body, (username, path)
        if r.status_code == 200 and r.is_json:
            data = r.get_json()
            assert not _mentions_customer(data, c.id), (username, path)
            for key, items in _lists(data):
                assert items == [], (username, path, key)


def test_owner_filter_cannot_widen_an_account_managers_view(api, db_session):
    scope = scope_of(db_session, "account")
    other_owner = db_session.scalar(select(Customer.owner_id).where(not_(scope.customer_filter()),
                                                                    Customer.owner_id.is_not(None)).limit(1))
    r = api("account").get(f"/api/v1/customers?owner_id={other_owner}")
    assert r.status_code == 200 and r.get_json()["features"] == []
    # the admin sees that owner's customers through the same filter
    assert api("admin").get(f"/api/v1/customers?owner_id={other_owner}").get_json()["features"]


def _tile_of(lon, lat, z):
    n = 1 << z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def _tile_ids(resp):
    if resp.status_code == 204:
        return set()
    assert resp.status_code == 200, resp.status_code
    layers = mapbox_vector_tile.decode(resp.data)
    feats = [f for layer in layers.values() for f in layer["features"]]
    return {f.get("id") for f in feats} | {f["properties"].get("id") for f in feats}


@pytest.mark.parametrize("username", ["regional", "account", "logistics", "service"])
def test_tiles_hide_invisible_customers(api, db_session, username):
    scope = scope_of(db_session, username)
    c = hidden_customer(db_session, scope, with_geom=True)
    lon, lat = db_session.execute(select(func.ST_X(Customer.geom), func.ST_Y(Customer.geom))
                                  .where(Customer.id == c.id)).one()
    z = 16
    x, y = _tile_of(lon, lat, z)
    url = f"/api/v1/tiles/customers/{z}/{x}/{y}.mvt"
    assert c.id in _tile_ids(api("admin").get(url))
    r = api(username).get(url)
    assert c.id not in _tile_ids(r)
    assert c.name.encode() not in r.data


@pytest.mark.parametrize("username", ["regional", "account", "service", "logistics", "customer"])
def test_ogc_items_hide_invisible_customers(api, db_session, username):
    scope = scope_of(db_session, username)
    c = hidden_customer(db_session, scope)
    client = api(username)
    r = client.get(f"/ogc/collections/customers/items/{c.id}")
    assert r.status_code == 404 and c.name.encode() not in r.data
    assert api("admin").get(f"/ogc/collections/customers/items/{c.id}").status_code == 200
    r = client.get("/ogc/collections/customers/items?limit=1000")
    assert r.status_code == 200
    body = r.get_json()
    assert {f["id"] for f in body["features"]} <= visible_ids(db_session, scope)
    assert body["numberMatched"] == len(visible_ids(db_session, scope))


def test_ogc_territories_hide_other_regions_territories(api, db_session):
    scope = scope_of(db_session, "regional")
    t = db_session.scalar(select(Territory).where(not_(scope.territory_filter())).limit(1))
    assert t is not None
    r = api("regional").get(f"/ogc/collections/territories/items/{t.id}")
    assert r.status_code == 404 and t.name.encode() not in r.data


@pytest.mark.parametrize("username", ["sales", "regional", "account", "logistics"])
def test_exports_contain_exactly_the_visible_customers(api, db_session, username):
    scope = scope_of(db_session, username)
    visible = visible_ids(db_session, scope)
    c = hidden_customer(db_session, scope)
    r = api(username).get("/api/v1/export/customers?format=csv")
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert {int(row["id"]) for row in rows} == visible
    r = api(username).get("/api/v1/export/customers?format=kml")
    assert r.status_code == 200 and c.name.encode() not in r.data and c.code.encode() not in r.data


@pytest.mark.parametrize("username", ["sales", "regional", "account"])
def test_report_figures_count_only_visible_customers(api, db_session, username):
    scope = scope_of(db_session, username)
    r = api(username).get("/api/v1/reports/composition")
    assert r.status_code == 200
    status = r.get_json()["charts"]["status"]
    assert sum(status["values"]) == len(visible_ids(db_session, scope))
    total_all = sum(api("admin").get("/api/v1/reports/composition").get_json()["charts"]["status"]["values"])
    assert total_all == db_session.scalar(select(func.count(Customer.id)))
    assert sum(status["values"]) < total_all


def test_route_plans_of_another_branch_are_invisible(api, client, db_session, web_login):
    logistics = db_session.scalar(select(User).where(User.username == "logistics"))
    other = db_session.scalar(select(Branch.id).where(Branch.id != logistics.branch_id).order_by(Branch.id))
    plan = DeliveryPlan(name="SECRET-OTHER-BRANCH", plan_date=date(2026, 11, 3), cost_mode="haversine",
                        status="planned", params={"branch_ids": [other]})
    db_session.add(plan)
    db_session.flush()
    a = api("logistics")
    listed = a.get("/api/v1/routes")
    assert listed.status_code == 200 and b"SECRET-OTHER-BRANCH" not in listed.data
    for url in (f"/api/v1/routes/{plan.id}", f"/api/v1/routes/{plan.id}/export?format=gpx"):
        r = a.get(url)
        assert r.status_code == 404 and b"SECRET-OTHER-BRANCH" not in r.data, url
    assert api("admin").get(f"/api/v1/routes/{plan.id}").status_code == 200
    web_login("logistics")
    r = client.get(f"/routes/{plan.id}")
    assert r.status_code == 404 and b"SECRET-OTHER-BRANCH" not in r.data
    assert b"SECRET-OTHER-BRANCH" not in client.get("/routes").data
