"""Users administration, dictionaries, audit log (API and pages), and the records pages."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text

from tests.conftest import csrf_token_from
from geo_crm.models import User

NON_ADMIN = ["executive", "sales", "regional", "account", "service", "logistics", "customer"]


@pytest.fixture(autouse=True)
def _fresh_login_limiter(monkeypatch):
    import geo_crm.api.auth as api_auth
    from geo_crm.security.auth import LoginRateLimiter
    monkeypatch.setattr(api_auth, "_limiter", LoginRateLimiter())


@pytest.mark.parametrize("user", NON_ADMIN)
def test_non_admin_cannot_administer(api, user):
    a = api(user)
    assert a.get("/api/v1/users").status_code == 403
    assert a.get("/api/v1/users/1").status_code == 403
    assert a.post("/api/v1/users", json={"username": "x1", "role": "executive", "password": "long-password-1"}).status_code == 403
    assert a.patch("/api/v1/users/1", json={"role": "admin"}).status_code == 403
    assert a.get("/api/v1/audit-log").status_code == 403
    assert a.post("/api/v1/dictionaries", json={"kind": "industry", "code": "x", "label": "X"}).status_code == 403


def test_user_lifecycle(api, client, connection):
    a = api("admin")
    r = a.post("/api/v1/users", json={"username": "newbie", "role": "regional_manager", "password": "short"})
    assert r.status_code == 422 and r.get_json()["error"]["fields"][0]["field"] == "password"
    r = a.post("/api/v1/users", json={"username": "newbie", "role": "logistics", "password": "long-enough-pw"})
    assert r.status_code == 422 and r.get_json()["error"]["fields"][0]["field"] == "branch_id"
    r = a.post("/api/v1/users", json={"username": "newbie", "role": "regional_manager", "password": "long-enough-pw",
                                      "territory_ids": [1, 2], "full_name": "New Bie"})
    assert r.status_code == 201, r.get_json()
    u = r.get_json()
    assert u["territory_ids"] == [1, 2] and "password_hash" not in u and "password" not in u
    assert a.post("/api/v1/users", json={"username": "newbie", "role": "executive",
                                         "password": "long-enough-pw"}).status_code == 422
    tok = client.post("/api/v1/auth/token", json={"username": "newbie", "password": "long-enough-pw"}).get_json()["token"]
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tok}"}).get_json()
    assert me["territory_ids"] == [1, 2]
    # stale If-Match
    assert a.patch(f"/api/v1/users/{u['id']}", json={"territory_ids": [3]},
                   headers={"If-Match": f'"{u["version"] + 5}"'}).status_code == 412
    # territory change keeps the session; password reset ends it
    r = a.patch(f"/api/v1/users/{u['id']}", json={"territory_ids": [3]})
    assert r.status_code == 200 and r.get_json()["territory_ids"] == [3]
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tok}"}).status_code == 200
    r = a.post(f"/api/v1/users/{u['id']}/password", json={"password": "another-long-pw"})
    assert r.status_code == 200 and r.get_json()["auth_epoch"] == u["auth_epoch"] + 1
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tok}"}).status_code == 401
    assert a.post(f"/api/v1/users/{u['id']}/password", json={"password": "newbie"}).status_code == 422
    # deactivate: login refused
    assert a.delete(f"/api/v1/users/{u['id']}").get_json()["is_active"] is False
    assert client.post("/api/v1/auth/token", json={"username": "newbie", "password": "another-long-pw"}).status_code == 401
    # every list item is hash-free; audit rows never hold the hash
    assert all("password_hash" not in x for x in a.get("/api/v1/users?limit=500").get_json()["items"])
    leaked = connection.execute(text("SELECT count(*) FROM audit_log WHERE entity='app_user' AND "
                                     "(old ? 'password_hash' OR new ? 'password_hash')")).scalar()
    assert leaked == 0


def test_admin_cannot_demote_or_deactivate_self(api, connection):
    uid = connection.execute(select(User.id).where(User.username == "admin")).scalar()
    assert api("admin").patch(f"/api/v1/users/{uid}", json={"role": "executive"}).status_code == 422
    assert api("admin").delete(f"/api/v1/users/{uid}").status_code == 422


def test_customer_login_needs_customer(api):
    r = api("admin").post("/api/v1/users", json={"username": "cust2", "role": "customer", "password": "long-enough-pw"})
    assert r.status_code == 422 and r.get_json()["error"]["fields"][0]["field"] == "customer_id"
    r = api("admin").post("/api/v1/users", json={"username": "cust2", "role": "customer", "customer_id": 2,
                                                 "password": "long-enough-pw"})
    assert r.status_code == 201


def test_dictionaries(api):
    a = api("admin")
    r = a.post("/api/v1/dictionaries", json={"kind": "industry", "code": "space", "label": "Space"})
    assert r.status_code == 201, r.get_json()
    did = r.get_json()["id"]
    assert a.post("/api/v1/dictionaries", json={"kind": "industry", "code": "space", "label": "Dup"}).status_code == 422
    assert a.post("/api/v1/dictionaries", json={"kind": "industry", "code": "Bad Code", "label": "x"}).status_code == 422
    assert a.patch(f"/api/v1/dictionaries/{did}", json={"code": "other"}).status_code == 422
    assert a.patch(f"/api/v1/dictionaries/{did}", json={"label": "Outer space"}).get_json()["label"] == "Outer space"
    assert a.delete(f"/api/v1/dictionaries/{did}").get_json()["active"] is False
    staff = api("service").get("/api/v1/dictionaries?kind=industry").get_json()["items"]
    assert any(d["code"] == "space" and not d["active"] for d in staff)
    assert all(d["kind"] == "industry" for d in staff)


def test_audit_log_filters(api, connection):
    a = api("admin")
    r = a.patch("/api/v1/products/1", json={"name": "Renamed product"})
    assert r.status_code == 200
    log = a.get("/api/v1/audit-log?entity=product&entity_id=1&username=admin").get_json()
    assert log["total"] >= 1
    top = log["items"][0]
    assert top["action"] == "update" and top["new"] == {"name": "Renamed product"} and "name" in top["old"]
    assert top["user_id"] == connection.execute(select(User.id).where(User.username == "admin")).scalar()
    none = a.get("/api/v1/audit-log?entity=product&date_from=2000-01-01&date_to=2000-01-02").get_json()
    assert none["total"] == 0
    assert a.get("/api/v1/audit-log?date_from=2026-02-01&date_to=2026-01-01").status_code == 422
    assert a.get("/api/v1/audit-log?limit=1").get_json()["limit"] == 1


def test_roles_endpoint(api):
    roles = {x["role"]: x["permissions"] for x in api("admin").get("/api/v1/roles").get_json()["items"]}
    assert "user.admin" in roles["admin"] and "user.admin" not in roles["executive"]


# -- pages ----------------------------------------------------------------------------------
def test_admin_pages_for_admin_only(client, web_login):
    web_login("sales")
    for url in ["/admin", "/admin/roles", "/admin/dictionaries", "/admin/audit", "/admin/users/1"]:
        assert client.get(url).status_code == 403, url
    client.post("/logout", data={"csrf_token": csrf_token_from(client.get("/orders").get_data(as_text=True))})
    web_login("admin")
    for url in ["/admin", "/admin/roles", "/admin/dictionaries?kind=industry", "/admin/audit?entity=product",
                "/admin/users/1", "/admin/users/new"]:
        assert client.get(url).status_code == 200, url


def test_admin_page_creates_user_with_csrf_and_shows_errors(client, web_login):
    web_login("admin")
    page = client.get("/admin/users/new").get_data(as_text=True)
    tok = csrf_token_from(page)
    bad = client.post("/admin/users/new", data={"username": "webuser", "role": "executive", "password": "short",
                                                "is_active": "y", "branch_id": "", "csrf_token": tok})
    assert bad.status_code == 422 and "at least 10 characters" in bad.get_data(as_text=True)
    ok = client.post("/admin/users/new", data={"username": "webuser", "role": "executive", "is_active": "y",
                                               "password": "long-enough-pw", "branch_id": "", "csrf_token": tok})
    assert ok.status_code == 302
    assert "webuser" in client.get("/admin").get_data(as_text=True)
    nocsrf = client.post("/admin/users/new", data={"username": "x2", "role": "executive", "password": "long-enough-pw"})
    assert nocsrf.status_code == 400


def test_records_pages(client, web_login, connection):
    web_login("account")
    assert client.get("/orders?status=delivered&q=a").status_code == 200
    oid = connection.execute(text("SELECT o.id FROM sales_order o JOIN customer c ON c.id=o.customer_id "
                                  "JOIN app_user u ON u.id=c.owner_id WHERE u.username='account' LIMIT 1")).scalar()
    assert client.get(f"/orders/{oid}").status_code == 200
    hidden = connection.execute(text("SELECT o.id FROM sales_order o JOIN customer c ON c.id=o.customer_id "
                                     "JOIN app_user u ON u.id=c.owner_id WHERE u.username<>'account' LIMIT 1")).scalar()
    assert client.get(f"/orders/{hidden}").status_code == 404
    for url in ["/products", "/branches", "/branches/1", "/partners", "/partners/1", "/orders/new"]:
        r = client.get(url)
        assert r.status_code == 200, url
    html = client.get("/branches/1").get_data(as_text=True)
    assert "leaflet" in html.lower()
    # the web order form: creates an order for a visible customer
    cid = connection.execute(text("SELECT c.id FROM customer c JOIN app_user u ON u.id=c.owner_id "
                                  "WHERE u.username='account' LIMIT 1")).scalar()
    tok = csrf_token_from(client.get("/orders/new").get_data(as_text=True))
    r = client.post("/orders/new", data={"customer_id": cid, "status": "draft", "product_id": 1, "quantity": 2,
                                         "csrf_token": tok})
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    bad = client.post("/orders/new", data={"customer_id": hidden and 99999999, "status": "draft", "product_id": 1,
                                           "quantity": 2, "csrf_token": tok})
    assert bad.status_code == 422 and "no such customer" in bad.get_data(as_text=True)
