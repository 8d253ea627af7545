"""Regression tests for input the schemathesis sweep found answering 500 or off-schema:
NUL characters, out-of-range integers, times with a UTC offset, 204 bodies with a
Content-Type."""
from __future__ import annotations

from tests.conftest import csrf_token_from


def test_nul_in_query_is_a_422_naming_the_field(api):
    r = api("admin").get("/api/v1/audit-log?username=a%00b")
    assert r.status_code == 422
    assert r.get_json()["error"]["fields"] == [{"field": "username", "problem": "must not contain NUL characters"}]


def test_nul_in_json_body_is_a_422_naming_the_path(api):
    r = api("admin").post("/api/v1/partners", json={"code": "P-NUL", "name": "x\u0000y"})
    assert r.status_code == 422
    assert r.get_json()["error"]["fields"][0]["field"] == "body.name"


def test_nul_in_a_form_is_a_400(client, web_login):
    web_login("admin")
    page = client.get("/customers").get_data(as_text=True)
    r = client.get("/customers?q=a%00b")
    assert r.status_code == 400 and "<html" in r.get_data(as_text=True).lower()
    r = client.post("/logout", data={"csrf_token": csrf_token_from(page), "x": "a\x00b"})
    assert r.status_code == 400


def test_huge_offset_is_a_validation_error(api):
    for url in ("/api/v1/orders", "/api/v1/products", "/api/v1/partners"):
        r = api("admin").get(url + "?offset=2820324523143752253679075328")
        assert r.status_code == 422, (url, r.status_code)
        assert r.get_json()["error"]["fields"][0]["field"] == "offset"


def test_delivery_window_with_utc_offset_is_refused(api):
    a = api("admin")
    cid = a.get("/api/v1/customers?limit=1").get_json()["features"][0]["id"]
    r = a.patch(f"/api/v1/customers/{cid}", json={"delivery_start": "22:55:01+21:08"})
    assert r.status_code == 422
    assert r.get_json()["error"]["fields"][0]["field"].endswith("delivery_start")
    ok = a.patch(f"/api/v1/customers/{cid}", json={"delivery_start": "07:30", "delivery_end": "16:00"})
    assert ok.status_code == 200


def test_data_errors_answer_422_not_500(app, api):
    """Defence in depth: a value PostgreSQL refuses (SQLSTATE class 22) is a client error."""
    from sqlalchemy import text

    from geo_crm.http import db

    @app.get("/__probe_data_error")
    def probe():
        db().execute(text("SELECT 'x'::int"))
        return "unreachable"
    r = app.test_client().get("/__probe_data_error", headers={"Accept": "application/json"})
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "invalid_value"


def test_no_content_has_no_content_type(api):
    a = api("admin")
    r = a.post("/api/v1/products", json={"sku": "SEC-204-X", "name": "x", "unit": "pcs", "unit_price": 1,
                                         "unit_cost": 0.5})
    assert r.status_code == 201, r.get_json()
    r = a.delete(f"/api/v1/products/{r.get_json()['id']}")
    assert r.status_code == 204 and "Content-Type" not in r.headers and r.data == b""


def test_generic_statuses_are_documented(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            if op.get("security"):
                assert {"401", "404"} <= codes, (method, path)
            if method in ("patch", "put", "delete") and op.get("security"):
                assert {"403", "409", "412"} <= codes, (method, path)
            if method == "delete":
                assert "content" not in op["responses"]["204"], path


def test_deleting_a_branch_with_delivery_routes_is_refused(api, db_session):
    from datetime import date

    from geo_crm.models import Branch, DeliveryPlan, DeliveryRoute
    b = db_session.query(Branch).order_by(Branch.id).first()
    plan = DeliveryPlan(name="p", plan_date=date(2026, 11, 2), cost_mode="haversine", params={"branch_ids": [b.id]})
    db_session.add(plan)
    db_session.flush()
    db_session.add(DeliveryRoute(plan_id=plan.id, route_no=1, branch_id=b.id))
    db_session.flush()
    r = api("admin").delete(f"/api/v1/branches/{b.id}")
    assert r.status_code == 422, r.get_data(as_text=True)
    assert "delivery routes" in r.get_json()["error"]["message"]


def test_integrity_errors_answer_409_not_500(app):
    from sqlalchemy import text

    from geo_crm.http import db

    @app.get("/__probe_integrity")
    def probe():
        db().execute(text("INSERT INTO app_user (username, role, password_hash) "
                          "SELECT username, role, password_hash FROM app_user LIMIT 1"))
        return "unreachable"
    r = app.test_client().get("/__probe_integrity", headers={"Accept": "application/json"})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "conflict"
