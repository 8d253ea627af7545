"""Per-customer revenue over any period, exact, in time that does not grow with the
length of the period: whole calendar months from the prefix sums of
`mv_customer_month_cum` (migration 0016), the partial months at the edges (and any days
after the views' as-of date) live from `sales_order` through the covering index
`ix_sales_order_revenue_date`.

A period date_from..date_to (inclusive) splits into
* whole months M1..M2 covered by the view: months lying inside the period and ending on
  or before the view's as-of date A; the month of A counts as whole when the period
  reaches A (the view holds its days 1..A);
* edge day ranges: the days of the period outside those months.
Without a populated view (or with `source="live"`) the whole period is one edge range.

Money is integer EUR cents (int64), so sums are exact; dates are days since 2000-01-01.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from sqlalchemy import BigInteger, Date, Integer, cast, column, func, literal, select, table, type_coerce, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from geo_crm.analytics.arrays import PG_EPOCH, fetch_columns, from_date, sum_at
from geo_crm.analytics.common import REVENUE_STATUSES
from geo_crm.models import Order

mv_cum = table("mv_customer_month_cum", column("customer_id", Integer), column("first_month", Integer),
               column("as_of", Date), column("revenue", ARRAY(BigInteger)), column("margin", ARRAY(BigInteger)),
               column("orders", ARRAY(Integer)), column("last_day", ARRAY(Integer)))


def month_no(d: date) -> int:
    """Month number year * 12 + month - 1 (the view's `first_month` scale)."""
    return d.year * 12 + d.month - 1


def month_start(m: int) -> date:
    return date(m // 12, m % 12 + 1, 1)


def month_end(m: int) -> date:
    return month_start(m + 1) - timedelta(days=1)


@dataclass(frozen=True)
class Split:
    """Whole months m1..m2 (month numbers) read from the view, or None; and the inclusive
    day ranges read live."""
    months: tuple[int, int] | None
    edges: tuple[tuple[date, date], ...]

    @property
    def live_days(self) -> int:
        return sum((b - a).days + 1 for a, b in self.edges)


def split_period(date_from: date, date_to: date, as_of: date | None) -> Split:
    """Split date_from..date_to into whole months of the view (as of `as_of`) and live
    edge ranges (see module doc). `as_of` None: everything is live."""
    if as_of is None or date_from > as_of:
        return Split(None, ((date_from, date_to),))
    cover = min(date_to, as_of)
    m1 = month_no(date_from) if date_from.day == 1 else month_no(date_from) + 1
    if cover == as_of:
        m2, covered_to = month_no(as_of), as_of
    else:
        m2 = month_no(cover) if cover == month_end(month_no(cover)) else month_no(cover) - 1
        covered_to = month_end(m2)
    if m1 > m2:
        return Split(None, ((date_from, date_to),))
    edges = []
    if date_from < month_start(m1):
        edges.append((date_from, month_start(m1) - timedelta(days=1)))
    if date_to > covered_to:
        edges.append((covered_to + timedelta(days=1), date_to))
    return Split((m1, m2), tuple(edges))


def _at(arr, idx, before=0):
    """arr[idx] for a 1-based index into the view's array; `before` when idx < 1 (a month
    before the customer's first order: PostgreSQL yields NULL out of bounds). Callers
    never ask past the view's as-of month, the arrays' last element (`views_as_of`
    only answers when every report view was refreshed on the same date)."""
    return func.coalesce(arr[idx], literal(before))


def whole_month_columns(months: tuple[int, int]) -> dict:
    """SQL expressions over `mv_cum` for revenue/margin (cents) and orders in months m1..m2."""
    m1, m2 = months
    c = mv_cum.c
    hi = literal(m2) - c.first_month + 1
    lo = literal(m1) - c.first_month
    return {name: cast(_at(getattr(c, name), hi) - _at(getattr(c, name), lo), BigInteger)
            for name in ("revenue", "margin", "orders")}


def last_order_column(month: int):
    """SQL expression over `mv_cum`: the last order day (days since 2000-01-01) up to the
    end of `month` (-1 when the customer had none by then)."""
    return _at(mv_cum.c.last_day, literal(month) - mv_cum.c.first_month + 1, -1)


def edge_orders(session: Session, edges, customer_in=None, *, margin: bool = True) -> dict[str, np.ndarray]:
    """Revenue orders dated in the edge ranges: {"id", "rev", "margin", "day"} per order
    (cents; day since 2000-01-01). `customer_in(column)`: optional predicate on the
    customer id (the population, applied once to all ranges). One statement: a UNION ALL
    of index-only range scans of `ix_sales_order_revenue_date`. `margin=False`: margin
    not fetched (zeros), a quarter less to transfer."""
    if not edges:
        return {"id": np.zeros(0, np.int32), "rev": np.zeros(0, np.int64), "margin": np.zeros(0, np.int64),
                "day": np.zeros(0, np.int32)}
    mar = [cast((Order.total_amount - Order.total_cost) * 100, BigInteger).label("margin")] if margin else []
    parts = [select(Order.customer_id.label("customer_id"), cast(Order.total_amount * 100, BigInteger).label("rev"),
                    *mar, type_coerce(Order.order_date - literal(PG_EPOCH, Date), Integer).label("day"))
             .where(Order.status.in_(REVENUE_STATUSES), Order.order_date >= a, Order.order_date <= b)
             for a, b in edges]
    u = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("edge")
    stmt = select(u.c.customer_id, u.c.rev, *([u.c.margin] if margin else []), u.c.day)
    if customer_in is not None:
        stmt = stmt.where(customer_in(u.c.customer_id))
    out = fetch_columns(session, stmt, [("id", "int4"), ("rev", "int8")] + ([("margin", "int8")] if margin else [])
                        + [("day", "int4")])
    if not margin:
        out["margin"] = np.zeros(len(out["id"]), np.int64)
    return out


def per_customer(ids: np.ndarray, rows: dict[str, np.ndarray], pos: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Edge orders summed per customer of the sorted unique `ids`: rev, margin (cents),
    orders, last (latest day, -1 when none). Orders of other customers are ignored.
    `pos`: the rows' positions in `ids` when already known (every row's id in `ids`)."""
    n = len(ids)
    out = {"rev": np.zeros(n, np.int64), "margin": np.zeros(n, np.int64), "orders": np.zeros(n, np.int64),
           "last": np.full(n, -1, np.int64)}
    if n == 0 or len(rows["id"]) == 0:
        return out
    if pos is None:
        pos = np.minimum(np.searchsorted(ids, rows["id"]), n - 1)
        ok = ids[pos] == rows["id"]
        pos, rows = pos[ok], {k: v[ok] for k, v in rows.items()}
    out["rev"] = sum_at(n, pos, rows["rev"])
    out["margin"] = sum_at(n, pos, rows["margin"])
    out["orders"] = np.bincount(pos, minlength=n).astype(np.int64)
    np.maximum.at(out["last"], pos, rows["day"].astype(np.int64))
    return out


def days(d: date) -> int:
    return from_date(d)
