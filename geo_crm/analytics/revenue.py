"""Revenue per customer: from the materialised views when they cover the request,
live from `sales_order` otherwise; and the refresh of those views.

Revenue is `sales_order.total_amount` (EUR, the sum of its lines' amounts), margin
is `total_amount - total_cost`, over confirmed and delivered orders. The live SQL
below is the same definition as the views in migrations/versions/0007.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import Date, Float, Integer, cast, column, func, literal, select, table, type_coerce
from sqlalchemy.orm import Session

from geo_crm import matviews
from geo_crm.analytics.common import REVENUE_STATUSES, WINDOW_DAYS, ReportParams
from geo_crm.models import Order

VIEWS = ("mv_customer_revenue_12m", "mv_customer_month_cum")  # refresh order

mv_12m = table("mv_customer_revenue_12m", column("customer_id", Integer), column("as_of", Date),
               column("revenue"), column("margin"), column("orders", Integer), column("trend_slope", Float),
               column("last_order_date", Date), column("first_order_date", Date))


# -- freshness --------------------------------------------------------------------------
def freshness(session: Session) -> dict:
    """{view: {"populated", "refreshed_at", "as_of", "duration_ms"}} for the report views."""
    return matviews.status(session, VIEWS)


def views_as_of(session: Session) -> date | None:
    """The as-of date of the report views when every one is populated and all were
    refreshed as of the same date (else None: reports compute live)."""
    f = freshness(session)
    if len(f) < len(VIEWS) or not all(v["populated"] for v in f.values()):
        return None
    if len({v["as_of"] for v in f.values()}) != 1:   # refreshed together (one transaction)
        return None
    return f["mv_customer_revenue_12m"]["as_of"]


def refresh_views(session: Session, *, concurrently: bool = True, log=lambda m: None) -> dict[str, float]:
    """Refresh the report views and record when (see geo_crm.matviews.refresh)."""
    return matviews.refresh(session, VIEWS, concurrently=concurrently, log=log)


# -- source choice ------------------------------------------------------------------------
def choose_source(session: Session, p: ReportParams, *, need: str) -> str:
    """'live', 'mv_12m' or 'mv_cum' for `need` in {"period", "12m"}.

    "12m" (trailing 365 days per customer, with trend and last order): the 12-month view
    when the period ends on its as-of date, else live. "period": the 12-month view for
    the default window ending on its as-of date; otherwise 'mv_cum', whole months from
    the prefix-sum view plus live edge days (geo_crm/analytics/periods.py)."""
    if p.source == "live":
        return "live"
    as_of = views_as_of(session)
    if as_of is None:
        if p.source == "materialized":
            raise ValueError("the report views have not been refreshed yet (geo-crm reports refresh)")
        return "live"
    if need == "12m":
        return "mv_12m" if p.date_to == as_of else "live"
    if p.is_default_window and p.date_to == as_of:
        return "mv_12m"
    return "mv_cum"


# -- per-customer revenue -------------------------------------------------------------------
def period_revenue(session: Session, p: ReportParams):
    """(customer_id, revenue, margin, orders) for orders dated date_from..date_to, from the
    12-month view ('mv_12m') or live; and the source. Other periods over the views go
    through geo_crm/analytics/periods.py ('mv_cum')."""
    src = choose_source(session, p, need="period")
    if src == "mv_12m":
        q = select(mv_12m.c.customer_id, mv_12m.c.revenue.label("revenue"), mv_12m.c.margin.label("margin"),
                   mv_12m.c.orders.label("orders")).where(mv_12m.c.orders > 0)
    else:
        q = (select(Order.customer_id, func.sum(Order.total_amount).label("revenue"),
                    func.sum(Order.total_amount - Order.total_cost).label("margin"),
                    func.count().label("orders"))
             .where(Order.status.in_(REVENUE_STATUSES), Order.order_date >= p.date_from,
                    Order.order_date <= p.date_to)
             .group_by(Order.customer_id))
    return q, src


def customer_12m(session: Session, p: ReportParams):
    """(customer_id, revenue, margin, orders, trend_slope, last_order_date) over the 12-month
    window ending at p.as_of, for every customer with an order up to as_of; and the source."""
    src = choose_source(session, p, need="12m")
    if src == "mv_12m":
        c = mv_12m.c
        return select(c.customer_id, c.revenue, c.margin, c.orders, c.trend_slope, c.last_order_date), src
    as_of = cast(literal(p.as_of), Date)
    days = type_coerce(as_of - Order.order_date, Integer)
    win = Order.order_date > p.as_of - timedelta(days=WINDOW_DAYS)
    bucket = func.floor(days * 12 / literal(365.0))
    q = (select(Order.customer_id,
                func.coalesce(func.sum(Order.total_amount).filter(win), 0).label("revenue"),
                func.coalesce(func.sum(Order.total_amount - Order.total_cost).filter(win), 0).label("margin"),
                func.count().filter(win).label("orders"),
                cast(func.coalesce(func.sum((literal(5.5) - bucket) * Order.total_amount).filter(win), 0)
                     / literal(143.0), Float).label("trend_slope"),
                func.max(Order.order_date).label("last_order_date"))
         .where(Order.status.in_(REVENUE_STATUSES), Order.order_date <= p.as_of)
         .group_by(Order.customer_id))
    return q, "live"


def describe_source(session: Session, src: str, *, live_days: int | None = None) -> dict:
    """What the page says about freshness. 'mv_cum': whole months from the prefix-sum
    view (as of its refresh) and `live_days` days at the period's edges computed live."""
    now = datetime.now().astimezone().isoformat(timespec="seconds")
    if src == "live":
        return {"kind": "live", "computed_at": now}
    view = {"mv_12m": "mv_customer_revenue_12m", "mv_cum": "mv_customer_month_cum"}.get(src, "mv_customer_month")
    f = freshness(session).get(view, {})
    ts = f.get("refreshed_at")
    out = {"kind": "materialized", "view": view, "refreshed_at": ts.isoformat(timespec="seconds") if ts else None,
           "as_of": f["as_of"].isoformat() if f.get("as_of") else None}
    if live_days:
        out.update(kind="mixed", live_days=live_days, computed_at=now)
    return out
