"""Service request workflow: file → assign → start → resolve → rate (reopen below 3, archive at 3+)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from geo_crm.models import Customer, ServiceRating, ServiceRecord, User

CUSTOMER_ID = 1   # the demo customer login belongs to customer 1


def _uid(session, username):
    return session.scalar(select(User.id).where(User.username == username))


def _owner_login(session):
    """The username of customer 1's account manager ('account', see the fixture)."""
    return session.scalar(select(User.username).join(Customer, Customer.owner_id == User.id)
                          .where(Customer.id == CUSTOMER_ID))


@pytest.fixture(autouse=True)
def _account_owns_customer_1(db_session):
    """Customer 1 (the demo customer login) is owned by the demo account manager."""
    db_session.execute(update(Customer).where(Customer.id == CUSTOMER_ID)
                       .values(owner_id=_uid(db_session, "account")))
    db_session.flush()


def _resolved(api, session, text="The coffee machine leaks"):
    r = api("customer").post("/api/v1/service-records", json={"type": "repair", "request_text": text})
    assert r.status_code == 201, r.get_json()
    rec = r.get_json()
    assert rec["status"] == "new" and rec["customer_id"] == CUSTOMER_ID
    agent = _uid(session, "service")
    r = api(_owner_login(session)).post(f"/api/v1/service-records/{rec['id']}/assign", json={"assignee_id": agent})
    assert r.status_code == 200, r.get_json()
    rec = r.get_json()
    assert rec["status"] == "assigned" and rec["assignee_id"] == agent and rec["assigned_at"]
    svc = api("service")
    assert svc.post(f"/api/v1/service-records/{rec['id']}/start", json={"notes": "on my way"}).status_code == 200
    r = svc.post(f"/api/v1/service-records/{rec['id']}/resolve", json={"result": "Seal replaced"})
    assert r.status_code == 200
    rec = r.get_json()
    assert rec["status"] == "resolved" and rec["handled_at"] and "on my way" in rec["handling_notes"]
    return rec


def _expected_satisfaction(session):
    return session.scalar(select(func.round(func.avg(ServiceRecord.satisfaction), 2))
                          .where(ServiceRecord.customer_id == CUSTOMER_ID, ServiceRecord.satisfaction.is_not(None)))


def test_owner_is_an_account_manager(db_session):
    assert _owner_login(db_session) == "account"


def test_full_flow_rating_2_reopens_then_3_archives(api, db_session):
    rec = _resolved(api, db_session)
    cust = api("customer")
    r = cust.post(f"/api/v1/service-records/{rec['id']}/rate", json={"rating": 2, "comment": "still leaks"})
    assert r.status_code == 200
    rec = r.get_json()
    assert rec["status"] == "in_progress" and rec["reopen_count"] == 1 and rec["satisfaction"] == 2
    assert rec["assignee_id"] == _uid(db_session, "service") and rec["archived_at"] is None
    # rating again before it is resolved again is an invalid transition
    r = cust.post(f"/api/v1/service-records/{rec['id']}/rate", json={"rating": 5})
    assert r.status_code == 409 and "resolved" in r.get_json()["error"]["message"]
    assert api("service").post(f"/api/v1/service-records/{rec['id']}/resolve",
                               json={"result": "Pump replaced"}).status_code == 200
    r = cust.post(f"/api/v1/service-records/{rec['id']}/rate", json={"rating": 3})
    rec = r.get_json()
    assert rec["status"] == "archived" and rec["archived_at"] and rec["satisfaction"] == 3 and rec["reopen_count"] == 1
    assert [x["rating"] for x in rec["ratings"]] == [2, 3]
    n = db_session.scalar(select(func.count()).select_from(ServiceRating).where(ServiceRating.service_record_id == rec["id"]))
    assert n == 2
    db_session.expire_all()
    assert db_session.get(Customer, CUSTOMER_ID).satisfaction == _expected_satisfaction(db_session)
    # archived is final
    assert cust.post(f"/api/v1/service-records/{rec['id']}/rate", json={"rating": 4}).status_code == 409
    assert api("service").post(f"/api/v1/service-records/{rec['id']}/start").status_code in (404, 409)


def test_satisfaction_is_mean_of_latest_ratings(api, db_session):
    a = _resolved(api, db_session, "first")
    b = _resolved(api, db_session, "second")
    before = db_session.execute(select(func.sum(ServiceRecord.satisfaction), func.count())
                                .where(ServiceRecord.customer_id == CUSTOMER_ID,
                                       ServiceRecord.satisfaction.is_not(None))).one()
    cust = api("customer")
    assert cust.post(f"/api/v1/service-records/{a['id']}/rate", json={"rating": 5}).status_code == 200
    assert cust.post(f"/api/v1/service-records/{b['id']}/rate", json={"rating": 1}).status_code == 200
    total, n = (before[0] or 0) + 6, before[1] + 2
    db_session.expire_all()
    got = db_session.get(Customer, CUSTOMER_ID).satisfaction
    assert got == Decimal(total / n).quantize(Decimal("0.01"))
    # b was reopened; its latest rating (1) counts until it is rated again
    api("service").post(f"/api/v1/service-records/{b['id']}/resolve", json={"result": "done properly"})
    cust.post(f"/api/v1/service-records/{b['id']}/rate", json={"rating": 4})
    db_session.expire_all()
    assert db_session.get(Customer, CUSTOMER_ID).satisfaction == Decimal((total + 3) / n).quantize(Decimal("0.01"))


def test_customer_rates_only_own_records_and_values_are_checked(api, db_session):
    rec = _resolved(api, db_session)
    other = db_session.scalar(select(ServiceRecord.id).where(ServiceRecord.customer_id != CUSTOMER_ID,
                                                            ServiceRecord.status == "resolved").limit(1))
    cust = api("customer")
    assert cust.post(f"/api/v1/service-records/{other}/rate", json={"rating": 4}).status_code == 404
    assert cust.get(f"/api/v1/service-records/{other}").status_code == 404
    assert cust.post(f"/api/v1/service-records/{rec['id']}/rate", json={"rating": 0}).status_code == 422
    assert cust.post(f"/api/v1/service-records/{rec['id']}/rate", json={"rating": 6}).status_code == 422
    # a customer cannot file for someone else, or assign/handle
    r = cust.post("/api/v1/service-records", json={"type": "repair", "request_text": "x", "customer_id": 2})
    assert r.status_code == 422
    assert cust.post(f"/api/v1/service-records/{rec['id']}/assign", json={"assignee_id": 1}).status_code == 403
    assert cust.post(f"/api/v1/service-records/{rec['id']}/resolve", json={"result": "x"}).status_code == 403
    # the service agent may not rate
    assert api("service").post(f"/api/v1/service-records/{rec['id']}/rate", json={"rating": 5}).status_code == 403
    # the admin may rate on the customer's behalf
    assert api("admin").post(f"/api/v1/service-records/{rec['id']}/rate", json={"rating": 4}).get_json()["status"] == "archived"


def test_invalid_transitions_are_409(api, db_session):
    r = api("customer").post("/api/v1/service-records", json={"type": "billing", "request_text": "Invoice twice"})
    rid = r.get_json()["id"]
    adm = api("admin")
    r = adm.post(f"/api/v1/service-records/{rid}/start")
    assert r.status_code == 409 and "new" in r.get_json()["error"]["message"]
    assert adm.post(f"/api/v1/service-records/{rid}/resolve", json={"result": "x"}).status_code == 409
    assert adm.post(f"/api/v1/service-records/{rid}/rate", json={"rating": 4}).status_code == 409
    assert adm.post(f"/api/v1/service-records/{rid}/assign", json={"assignee_id": _uid(db_session, "account")}).status_code == 422
    r = adm.post(f"/api/v1/service-records/{rid}/assign", json={"assignee_id": _uid(db_session, "service")})
    v = r.get_json()["version"]
    assert adm.post(f"/api/v1/service-records/{rid}/resolve", json={"result": "x"}).status_code == 409
    # stale If-Match → 412
    assert adm.post(f"/api/v1/service-records/{rid}/start", json={}, headers={"If-Match": f'"{v - 1}"'}).status_code == 412
    assert adm.post(f"/api/v1/service-records/{rid}/start", json={}, headers={"If-Match": f'"{v}"'}).status_code == 200
    assert adm.post(f"/api/v1/service-records", json={"type": "nope", "request_text": "x",
                                                      "customer_id": 1}).status_code == 422


def test_service_agent_sees_only_assigned_records(api, client, db_session):
    from tests.conftest import ApiClient
    rec = _resolved(api, db_session)
    # the extra sample agents share the account manager's demo password
    tok = client.post("/api/v1/auth/token", json={"username": "service2", "password": "account-demo"}).get_json()
    svc, svc2 = api("service"), ApiClient(client, tok["token"])
    body = svc.get("/api/v1/service-records?limit=500").get_json()
    me = _uid(db_session, "service")
    assert all(x["assignee_id"] == me for x in body["items"])
    assert body["total"] == db_session.scalar(select(func.count()).select_from(ServiceRecord)
                                              .where(ServiceRecord.assignee_id == me))
    assert svc2.get(f"/api/v1/service-records/{rec['id']}").status_code == 404
    assert svc2.post(f"/api/v1/service-records/{rec['id']}/resolve", json={"result": "x"}).status_code == 404
    # another account manager (not the owner) cannot see or assign the customer's request
    db_session.execute(update(Customer).where(Customer.id == CUSTOMER_ID)
                       .values(owner_id=_uid(db_session, "account2")))
    db_session.flush()
    assert api("account").post(f"/api/v1/service-records/{rec['id']}/assign", json={"assignee_id": me}).status_code == 404


def test_web_customer_rates_with_stars(client, web_login, api, db_session):
    from tests.conftest import csrf_token_from
    rec = _resolved(api, db_session)
    web_login("customer")
    page = client.get(f"/service/{rec['id']}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="rate-form"' in html and 'id="assign-form"' not in html
    token = csrf_token_from(html)
    r = client.post(f"/service/{rec['id']}/rate", data={"csrf_token": token, "rate-version": str(rec["version"]),
                                                       "rate-rating": "2"})
    assert r.status_code == 303
    html = client.get(f"/service/{rec['id']}").get_data(as_text=True)
    assert 'data-status="in_progress"' in html and "reopened" in html
    assert client.get("/service").status_code == 200
    assert client.get("/service/new").status_code == 200
