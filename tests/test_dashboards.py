"""Every role's dashboard shows real work items from its own Scope."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from geo_crm import dashboards
from geo_crm.models import ChurnAlert, Opportunity, Order, User
from geo_crm.security.scope import Scope
from tests.conftest import AS_OF, DEMO_USERS


def scope_of(db_session, username):
    return Scope.for_user(db_session.scalar(select(User).where(User.username == username)))


@pytest.mark.parametrize("username", DEMO_USERS)
def test_dashboard_page_renders_for_every_role(web_login, username):
    client = web_login(username)
    r = client.get("/dashboard")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'class="tile"' in html


def test_account_manager_sees_own_opportunities_and_churn(db_session):
    scope = scope_of(db_session, "account")
    sections = {s["title"]: s for s in dashboards.work_items(db_session, scope, today=AS_OF)}
    opps = sections["My open opportunities"]["rows"]
    expected = db_session.scalar(select(func.count()).select_from(Opportunity).where(
        Opportunity.assignee_id == scope.user_id, Opportunity.status == "open"))
    assert len(opps) == min(expected, dashboards.LIMIT) and expected > 0
    assert all(db_session.get(Opportunity, o["id"]).assignee_id == scope.user_id for o in opps)
    churn = sections["Churn warnings to decide"]["rows"]
    for row in churn:
        alert = db_session.get(ChurnAlert, row["id"])
        assert alert.status in ("warning", "under_recovery")
        from geo_crm.models import Customer
        assert db_session.get(Customer, alert.customer_id).owner_id == scope.user_id


def test_logistics_sees_tomorrows_deliveries_for_its_branch(db_session):
    scope = scope_of(db_session, "logistics")
    sections = dashboards.work_items(db_session, scope, today=AS_OF)
    rows = sections[0]["rows"]
    tomorrow = [r for r in rows if r["tomorrow"]]
    assert len(tomorrow) == 1
    truth = db_session.scalar(select(func.count()).select_from(Order).where(
        scope.order_filter(), Order.status == "confirmed", Order.delivery_date == tomorrow[0]["date"]))
    assert tomorrow[0]["orders"] == truth > 0


def test_headline_figures_respect_scope(db_session):
    everything = dashboards.headline(db_session, scope_of(db_session, "executive"))
    regional = dashboards.headline(db_session, scope_of(db_session, "regional"))
    assert 0 < regional["customers"] < everything["customers"]
    assert regional["revenue_12m_eur"] < everything["revenue_12m_eur"]
    customer = dashboards.headline(db_session, scope_of(db_session, "customer"))
    assert customer["customers"] == 1 and "revenue_12m_eur" not in customer
