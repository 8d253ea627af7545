"""Churn scan on a controlled clock: customers and orders built in the test transaction."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select, text, update

from geo_crm.churn import service as churn
from geo_crm.models import ChurnAlert, Customer, User


@pytest.fixture()
def world(db_session):
    """Freeze the sample out of the way (every existing customer dormant) and build four
    active customers with known order histories. Returns their ids."""
    db_session.execute(update(Customer).values(status="dormant"))
    db_session.execute(text("DELETE FROM churn_alert"))
    account = db_session.scalar(select(User.id).where(User.username == "account"))
    ids = {}
    for key, created in [("stale", "2025-01-01"), ("fresh", "2025-01-01"), ("never_old", "2025-01-01"),
                         ("never_new", "2026-10-01"), ("cancelled_only_recent", "2025-01-01")]:
        ids[key] = db_session.execute(text(
            "INSERT INTO customer (code, name, status, owner_id, created_at) VALUES (:c, :n, 'active', :o, :t) "
            "RETURNING id"), {"c": f"TCH-{key}", "n": f"Churn {key}", "o": account, "t": created}).scalar()
    orders = [("stale", "2026-03-15", "delivered"), ("fresh", "2026-03-15", "delivered"),
              ("fresh", "2026-08-20", "delivered"), ("cancelled_only_recent", "2026-02-01", "delivered"),
              ("cancelled_only_recent", "2026-09-01", "cancelled")]
    for k, (key, d, st) in enumerate(orders):
        db_session.execute(text(
            "INSERT INTO sales_order (number, customer_id, order_date, status, total_amount) "
            "VALUES (:n, :c, :d, :s, 100)"), {"n": f"TCH{k:05d}", "c": ids[key], "d": d, "s": st})
    db_session.flush()
    return ids


def _open(session):
    return dict(session.execute(select(ChurnAlert.customer_id, ChurnAlert.status)
                                .where(ChurnAlert.status.in_(churn.OPEN))).all())


def test_scan_counts_on_a_controlled_clock(db_session, world):
    # as of 2026-09-10 with 6 months: cutoff 2026-03-10; stale ordered 03-15 → not yet
    r = churn.scan(db_session, as_of=date(2026, 9, 10), months=6)
    assert (r.new, r.already_open, r.cleared) == (2, 0, 0)
    assert set(_open(db_session)) == {world["never_old"], world["cancelled_only_recent"]}
    # exactly at the boundary: cutoff 2026-03-15 = the last order day → not "more than" 6 months
    r = churn.scan(db_session, as_of=date(2026, 9, 15), months=6)
    assert (r.new, r.already_open, r.cleared) == (0, 2, 0)
    # one day later the stale customer is at risk
    r = churn.scan(db_session, as_of=date(2026, 9, 16), months=6)
    assert (r.new, r.already_open, r.cleared) == (1, 2, 0)
    stale = db_session.scalar(select(ChurnAlert).where(ChurnAlert.customer_id == world["stale"]))
    assert stale.last_order_at == date(2026, 3, 15) and stale.status == "warning"
    # re-running is idempotent
    r = churn.scan(db_session, as_of=date(2026, 9, 16), months=6)
    assert (r.new, r.already_open, r.cleared) == (0, 3, 0)
    assert db_session.scalar(select(text("count(*)")).select_from(ChurnAlert)) == 3
    # a shorter threshold catches the fresh customer too; the recently created one never
    r = churn.scan(db_session, as_of=date(2026, 9, 25), months=1)   # cutoff 08-25: fresh (08-20) too
    assert (r.new, r.already_open, r.cleared) == (1, 3, 0)
    assert world["never_new"] not in _open(db_session)


def test_new_order_clears_via_scan_and_clear_on_order(db_session, world):
    churn.scan(db_session, as_of=date(2026, 9, 16), months=6)
    assert len(_open(db_session)) == 3
    # an order arriving by import: the next scan clears the warning
    db_session.execute(text("INSERT INTO sales_order (number, customer_id, order_date, status) "
                            "VALUES ('TCHNEW1', :c, '2026-09-20', 'confirmed')"), {"c": world["stale"]})
    r = churn.scan(db_session, as_of=date(2026, 9, 21), months=6)
    assert (r.new, r.already_open, r.cleared) == (0, 2, 1)
    a = db_session.scalar(select(ChurnAlert).where(ChurnAlert.customer_id == world["stale"]))
    db_session.refresh(a)
    assert a.status == "recovered" and a.closed_at is not None
    # a cancelled order does not clear
    db_session.execute(text("INSERT INTO sales_order (number, customer_id, order_date, status) "
                            "VALUES ('TCHNEW2', :c, '2026-09-20', 'cancelled')"), {"c": world["never_old"]})
    assert churn.scan(db_session, as_of=date(2026, 9, 21), months=6).cleared == 0
    # the hook used when an order is written
    assert churn.clear_on_order(db_session, world["never_old"]) == 1
    assert churn.clear_on_order(db_session, world["never_old"]) == 0
    assert set(_open(db_session)) == {world["cancelled_only_recent"]}
    # a year later (cutoff 2026-12-01) everyone is at risk again: stale and never_old get fresh
    # warnings after their recovered ones, fresh and never_new their first; one is still open
    r = churn.scan(db_session, as_of=date(2027, 6, 1), months=6)
    assert (r.new, r.already_open, r.cleared) == (4, 1, 0)


def test_recover_and_confirm_loss(api, db_session, world):
    churn.scan(db_session, as_of=date(2026, 9, 16), months=6)
    db_session.flush()
    ids = {c: i for c, i in db_session.execute(select(ChurnAlert.customer_id, ChurnAlert.id))}
    am = api("account")
    a1, a2 = ids[world["stale"]], ids[world["never_old"]]
    body = am.get("/api/v1/churn-alerts?open=true&as_of=2026-09-16").get_json()
    row = next(x for x in body["items"] if x["id"] == a1)
    assert row["last_order"] == "2026-03-15" and row["months_since"] == 6 and row["revenue_12m"] == 100.0
    assert am.post(f"/api/v1/churn-alerts/{a1}/recover", json={"measures": " "}).status_code == 422
    r = am.post(f"/api/v1/churn-alerts/{a1}/recover", json={"measures": "Visit with a discount offer"})
    assert r.status_code == 200 and r.get_json()["status"] == "under_recovery"
    v = r.get_json()["version"]
    assert am.post(f"/api/v1/churn-alerts/{a1}/confirm-loss", json={"reason": "Moved abroad"},
                   headers={"If-Match": f'"{v - 1}"'}).status_code == 412
    r = am.post(f"/api/v1/churn-alerts/{a1}/confirm-loss", json={"reason": "Moved abroad"},
                headers={"If-Match": f'"{v}"'})
    assert r.status_code == 200 and r.get_json()["status"] == "confirmed_lost" and r.get_json()["closed_at"]
    db_session.expire_all()
    assert db_session.get(Customer, world["stale"]).status == "lost"
    assert am.post(f"/api/v1/churn-alerts/{a1}/recover", json={"measures": "x"}).status_code == 409
    # roles: executives read, cannot decide; service agents and customers cannot read
    assert api("executive").get(f"/api/v1/churn-alerts/{a2}").status_code == 200
    assert api("executive").post(f"/api/v1/churn-alerts/{a2}/recover", json={"measures": "x"}).status_code == 403
    assert api("service").get("/api/v1/churn-alerts").status_code == 403
    # another owner's alert is invisible to this account manager
    db_session.execute(update(Customer).where(Customer.id == world["never_old"])
                       .values(owner_id=db_session.scalar(select(User.id).where(User.username == "account2"))))
    db_session.flush()
    assert am.get(f"/api/v1/churn-alerts/{a2}").status_code == 404
    # the admin scan through the API
    assert api("account").post("/api/v1/churn/scan", json={}).status_code == 403
    r = api("admin").post("/api/v1/churn/scan", json={"as_of": "2026-09-16", "months": 6})
    assert r.status_code == 200 and r.get_json() == {"as_of": "2026-09-16", "months": 6, "new": 0,
                                                     "already_open": 2, "cleared": 0}


def test_web_churn_page(client, web_login, db_session, world):
    churn.scan(db_session, as_of=date(2026, 9, 16), months=6)
    db_session.flush()
    web_login("account")
    html = client.get("/churn").get_data(as_text=True)
    assert "Churn stale" in html and "Churn never_old" in html and "Churn fresh" not in html


def test_cli_scan_runs(database_url, monkeypatch):
    """The real command against the test database (committed, then undone)."""
    from click.testing import CliRunner

    from geo_crm.churn.cli import churn as group
    monkeypatch.setenv("DATABASE_URL", database_url)
    from sqlalchemy import create_engine
    eng = create_engine(database_url)
    with eng.begin() as c:
        before = c.execute(text("SELECT id FROM churn_alert")).scalars().all()
    try:
        res = CliRunner().invoke(group, ["scan", "--as-of", "2026-11-01", "--months", "6"])
        assert res.exit_code == 0, res.output
        assert "new=" in res.output and "already_open=" in res.output and "cleared=" in res.output
        res2 = CliRunner().invoke(group, ["scan", "--as-of", "2026-11-01", "--months", "6"])
        assert "new=0 " in res2.output
        assert CliRunner().invoke(group, ["scan", "--months", "0"]).exit_code != 0
    finally:
        with eng.begin() as c:
            c.execute(text("DELETE FROM churn_alert WHERE NOT (id = ANY(:ids))"), {"ids": before or [0]})
        eng.dispose()
