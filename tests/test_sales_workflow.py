"""Opportunity workflow through the API: create → assign → plan → stages → won/lost."""
from __future__ import annotations

from sqlalchemy import select, text

from geo_crm.models import Customer, Opportunity, OpportunityStageChange, User

PROSPECT_LON, PROSPECT_LAT = 24.9384, 60.1699   # Helsinki centre, inside the sales manager's territory 1?


def _uid(session, username):
    return session.scalar(select(User.id).where(User.username == username))


def _new(api, **kw):
    body = {"source": "referral", "summary": "Forklift fleet renewal", "prospect_name": "Testi Logistiikka Oy",
            "prospect_lon": PROSPECT_LON, "prospect_lat": PROSPECT_LAT, "amount": 12500, **kw}
    r = api("sales").post("/api/v1/opportunities", json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_prospect_won_becomes_active_customer_owned_by_assignee_at_prospect_point(api, db_session):
    account = _uid(db_session, "account")
    opp = _new(api)
    assert opp["stage"] == "lead" and opp["status"] == "open" and opp["assignee_id"] is None
    r = api("sales").post(f"/api/v1/opportunities/{opp['id']}/assign", json={"assignee_id": account})
    assert r.status_code == 200 and r.get_json()["assigned_at"]
    # the account manager now sees it, plans and records results
    am = api("account")
    r = am.post(f"/api/v1/opportunities/{opp['id']}/plan-steps", json={"planned_on": "2026-11-10", "action": "Site visit"})
    assert r.status_code == 201, r.get_json()
    step = r.get_json()
    r = am.patch(f"/api/v1/opportunities/{opp['id']}/plan-steps/{step['id']}", json={"result": "Demo agreed"},
                 headers={"If-Match": f'"{step["version"]}"'})
    assert r.status_code == 200 and r.get_json()["result"] == "Demo agreed" and r.get_json()["done_at"]
    for st in ("qualified", "proposal", "negotiation"):
        r = am.post(f"/api/v1/opportunities/{opp['id']}/stage", json={"stage": st})
        assert r.status_code == 200, r.get_json()
    r = am.post(f"/api/v1/opportunities/{opp['id']}/win")
    assert r.status_code == 200, r.get_json()
    won = r.get_json()
    assert won["status"] == "won" and won["stage"] == "won" and won["probability"] == 100 and won["closed_at"]
    assert [(h["from_stage"], h["to_stage"]) for h in won["stage_history"]] == [
        (None, "lead"), ("lead", "qualified"), ("qualified", "proposal"), ("proposal", "negotiation"),
        ("negotiation", "won")]
    cust = db_session.get(Customer, won["customer_id"])
    assert cust.status == "active" and cust.owner_id == account and cust.name == "Testi Logistiikka Oy"
    assert cust.code.startswith("C") and cust.geocode_quality == "manual"
    lon, lat = db_session.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM customer WHERE id = :i"),
                                  {"i": cust.id}).one()
    assert abs(lon - PROSPECT_LON) < 1e-9 and abs(lat - PROSPECT_LAT) < 1e-9
    assert cust.region_id is not None          # stored membership computed by the triggers
    # the new customer is visible to its owner
    assert api("account").get(f"/api/v1/opportunities/{opp['id']}").status_code == 200


def test_won_activates_existing_dormant_customer(api, db_session):
    account = _uid(db_session, "account")
    cid = db_session.scalar(select(Customer.id).where(Customer.status == "dormant").order_by(Customer.id).limit(1))
    opp = _new(api, prospect_name=None, prospect_lon=None, prospect_lat=None, customer_id=cid, assignee_id=account) \
        if _visible_to_sales(api, cid) else None
    if opp is None:  # pick via admin when the sales manager cannot see that customer
        r = api("admin").post("/api/v1/opportunities", json={"source": "existing", "summary": "Win back",
                                                                "customer_id": cid, "assignee_id": account})
        assert r.status_code == 201, r.get_json()
        opp = r.get_json()
    r = api("admin").post(f"/api/v1/opportunities/{opp['id']}/win")
    assert r.status_code == 200
    db_session.expire_all()
    assert db_session.get(Customer, cid).status == "active"
    n = db_session.scalar(select(text("count(*)")).select_from(Customer).where(Customer.name == "Win back"))
    assert n == 0


def _visible_to_sales(api, cid):
    return api("sales").get(f"/api/v1/customers/{cid}").status_code == 200


def test_lost_needs_reason_and_closed_is_read_only(api, db_session):
    opp = _new(api, assignee_id=_uid(db_session, "account"))
    am = api("account")
    r = am.post(f"/api/v1/opportunities/{opp['id']}/lose", json={"reason": "  "})
    assert r.status_code == 422
    r = am.post(f"/api/v1/opportunities/{opp['id']}/lose", json={"reason": "Chose a competitor"})
    assert r.status_code == 200
    lost = r.get_json()
    assert lost["status"] == "lost" and lost["lost_reason"] == "Chose a competitor" and lost["probability"] == 0
    assert lost["customer_id"] is None                     # no customer created
    oid = opp["id"]
    for method, url, body in [("post", f"/api/v1/opportunities/{oid}/stage", {"stage": "proposal"}),
                              ("post", f"/api/v1/opportunities/{oid}/win", None),
                              ("post", f"/api/v1/opportunities/{oid}/lose", {"reason": "again"}),
                              ("patch", f"/api/v1/opportunities/{oid}", {"amount": 1}),
                              ("post", f"/api/v1/opportunities/{oid}/plan-steps",
                               {"planned_on": "2026-12-01", "action": "Call"})]:
        r = getattr(am, method)(url, json=body) if body is not None else getattr(am, method)(url)
        assert r.status_code == 409, (url, r.get_json())
        assert "read-only" in r.get_json()["error"]["message"]
    r = api("sales").post(f"/api/v1/opportunities/{oid}/assign", json={"assignee_id": _uid(db_session, "account2")})
    assert r.status_code == 409


def test_stage_rules_and_optimistic_locking(api, db_session):
    opp = _new(api)
    s = api("sales")
    assert s.post(f"/api/v1/opportunities/{opp['id']}/stage", json={"stage": "lead"}).status_code == 409
    assert s.post(f"/api/v1/opportunities/{opp['id']}/stage", json={"stage": "won"}).status_code == 409
    assert s.post(f"/api/v1/opportunities/{opp['id']}/stage", json={"stage": "bogus"}).status_code == 422
    r = s.post(f"/api/v1/opportunities/{opp['id']}/stage", json={"stage": "proposal"},
               headers={"If-Match": f'"{opp["version"]}"'})
    assert r.status_code == 200
    r = s.patch(f"/api/v1/opportunities/{opp['id']}", json={"amount": 99}, headers={"If-Match": f'"{opp["version"]}"'})
    assert r.status_code == 412
    # win needs an assignee first
    assert s.post(f"/api/v1/opportunities/{opp['id']}/win").status_code == 409
    n = db_session.scalar(select(text("count(*)")).select_from(OpportunityStageChange)
                          .where(OpportunityStageChange.opportunity_id == opp["id"]))
    assert n == 2


def test_validation_of_create_and_assign(api, db_session):
    s = api("sales")
    base = {"source": "referral", "summary": "x", "prospect_name": "P"}
    assert s.post("/api/v1/opportunities", json={**base, "source": "nope"}).status_code == 422
    assert s.post("/api/v1/opportunities", json={**base, "probability": 101}).status_code == 422
    assert s.post("/api/v1/opportunities", json={**base, "prospect_lon": 24.9}).status_code == 422
    assert s.post("/api/v1/opportunities", json={"source": "referral", "summary": "x"}).status_code == 422
    r = s.post("/api/v1/opportunities", json={**base, "assignee_id": _uid(db_session, "service")})
    assert r.status_code == 422 and r.get_json()["error"]["fields"][0]["field"] == "assignee_id"
    # a customer the sales manager cannot see is "no such customer", not a leak
    hidden = db_session.execute(text(
        "SELECT c.id FROM customer c WHERE NOT EXISTS (SELECT 1 FROM customer_territory ct JOIN user_territory ut "
        "ON ut.territory_id = ct.territory_id JOIN app_user u ON u.id = ut.user_id AND u.username = 'sales' "
        "WHERE ct.customer_id = c.id) ORDER BY c.id LIMIT 1")).scalar()
    r = s.post("/api/v1/opportunities", json={"source": "referral", "summary": "x", "customer_id": hidden})
    assert r.status_code == 422 and "no such customer" in r.get_json()["error"]["message"]


def test_permissions_per_role(api, db_session):
    opp = _new(api, assignee_id=_uid(db_session, "account"))
    oid = opp["id"]
    # account managers may not create or assign; service agents and customers may not even read
    assert api("account").post("/api/v1/opportunities", json={"source": "web", "summary": "x",
                                                             "prospect_name": "P"}).status_code == 403
    assert api("account").post(f"/api/v1/opportunities/{oid}/assign",
                               json={"assignee_id": _uid(db_session, "account")}).status_code == 403
    assert api("service").get("/api/v1/opportunities").status_code == 403
    assert api("customer").get(f"/api/v1/opportunities/{oid}").status_code == 403
    assert api("executive").post(f"/api/v1/opportunities/{oid}/win").status_code == 403
    assert api("executive").get(f"/api/v1/opportunities/{oid}").status_code == 200
    assert api("sales").delete(f"/api/v1/opportunities/{oid}").status_code == 403
    assert api("admin").delete(f"/api/v1/opportunities/{oid}").status_code == 204
    assert api("admin").get(f"/api/v1/opportunities/{oid}").status_code == 404


def test_visibility_account_manager_sees_only_assigned(api, db_session):
    account, account2 = _uid(db_session, "account"), _uid(db_session, "account2")
    mine = _new(api, assignee_id=account)
    theirs = _new(api, assignee_id=account2)
    am = api("account")
    assert am.get(f"/api/v1/opportunities/{theirs['id']}").status_code == 404
    assert am.post(f"/api/v1/opportunities/{theirs['id']}/stage", json={"stage": "qualified"}).status_code == 404
    assert am.get(f"/api/v1/opportunities/{theirs['id']}/plan-steps").status_code == 404
    body = am.get("/api/v1/opportunities?limit=500").get_json()
    ids = {o["id"] for o in body["items"]}
    assert mine["id"] in ids and theirs["id"] not in ids
    expected = db_session.scalar(select(text("count(*)")).select_from(Opportunity).where(Opportunity.assignee_id == account))
    assert body["total"] == expected == sum(p["count"] for p in body["pipeline"])
    # a regional manager outside the prospect's territory does not see it (unless inside)
    r = api("regional").get(f"/api/v1/opportunities/{mine['id']}")
    inside = db_session.execute(text(
        "SELECT EXISTS (SELECT 1 FROM territory t JOIN user_territory ut ON ut.territory_id = t.id "
        "JOIN app_user u ON u.id = ut.user_id AND u.username = 'regional' "
        "WHERE ST_Intersects(t.geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326)))"),
        {"x": PROSPECT_LON, "y": PROSPECT_LAT}).scalar()
    assert r.status_code == (200 if inside else 404)


def test_list_filters_and_paging(api):
    s = api("sales")
    r = s.get("/api/v1/opportunities?status=open&limit=5")
    body = r.get_json()
    assert r.status_code == 200 and len(body["items"]) <= 5
    assert all(o["status"] == "open" for o in body["items"])
    if body["next_cursor"]:
        nxt = s.get(f"/api/v1/opportunities?status=open&limit=5&cursor={body['next_cursor']}").get_json()
        assert max(o["id"] for o in nxt["items"]) < min(o["id"] for o in body["items"])
    assert s.get("/api/v1/opportunities?stage=nope").status_code == 422
    assert s.get("/api/v1/opportunities?cursor=!!").status_code == 422


def test_web_pages_and_forms(client, web_login, api, db_session):
    from tests.conftest import csrf_token_from
    opp = _new(api, assignee_id=_uid(db_session, "account"))
    web_login("account")
    assert client.get("/opportunities").status_code == 200
    html = client.get(f"/opportunities/{opp['id']}").get_data(as_text=True)
    assert 'id="step-form"' in html and 'id="assign-form"' not in html
    token = csrf_token_from(html)
    r = client.post(f"/opportunities/{opp['id']}/steps", data={"csrf_token": token, "step-planned_on": "2026-11-20",
                                                               "step-action": "Call the buyer"})
    assert r.status_code == 303
    r = client.post(f"/opportunities/{opp['id']}/lose", data={"csrf_token": token, "lose-version": "999",
                                                              "lose-reason": "x"})
    assert r.status_code == 303
    html = client.get(f"/opportunities/{opp['id']}").get_data(as_text=True)
    assert "Call the buyer" in html and "changed this opportunity meanwhile" in html
    assert client.get("/opportunities/new").status_code == 403
