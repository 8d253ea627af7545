"""The one refresh routine behind `geo-crm reports refresh`, the report views and the
density snapshot (run inside the test's rolled-back transaction)."""
from __future__ import annotations


from sqlalchemy import text

from geo_crm import matviews
from geo_crm.analytics import revenue
from geo_crm.spatial import aggregates


def test_refresh_fills_every_scheduled_view_and_records_it(db_session):
    views = (*revenue.VIEWS, *aggregates.VIEWS)
    logged: list[str] = []
    took = matviews.refresh(db_session, views, concurrently=True, log=logged.append)
    assert list(took) == list(views) and all(t >= 0 for t in took.values())
    # never-populated views get a plain refresh (CONCURRENTLY would fail on them)
    assert all(m.startswith("refreshed ") and "concurrently" not in m for m in logged), logged
    st = matviews.status(db_session, views)
    today = db_session.execute(text("SELECT current_date")).scalar()
    assert set(st) == set(views)
    assert all(v["populated"] and v["as_of"] == today and v["refreshed_at"] is not None for v in st.values())
    # a second refresh runs CONCURRENTLY (readers are not blocked) and still records it
    logged.clear()
    matviews.refresh(db_session, views[:1], concurrently=True, log=logged.append)
    assert logged == [f"refreshed concurrently {views[0]} in {logged[0].rsplit(' in ', 1)[1]}"]
    assert revenue.views_as_of(db_session) == today
    assert aggregates.snapshot(db_session).as_of == today


def test_refreshed_report_view_equals_the_orders(db_session):
    matviews.refresh(db_session, revenue.VIEWS, concurrently=False)
    mismatches = db_session.execute(text("""
        SELECT count(*) FROM mv_customer_revenue_12m v
        FULL JOIN (SELECT customer_id, sum(total_amount) AS revenue FROM sales_order
                   WHERE status IN ('confirmed', 'delivered') AND order_date > current_date - 365
                     AND order_date <= current_date
                   GROUP BY customer_id) o USING (customer_id)
        WHERE coalesce(v.revenue, 0) <> coalesce(o.revenue, 0)""")).scalar()
    assert mismatches == 0


def test_the_monthly_view_is_gone_and_nothing_waits_for_it(db_session):
    assert "mv_customer_month" not in revenue.VIEWS
    assert db_session.execute(text("SELECT to_regclass('mv_customer_month')")).scalar() is None
