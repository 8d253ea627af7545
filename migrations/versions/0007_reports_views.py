"""Reports: materialised views of revenue per customer, and their refresh log.

* `mv_customer_month(customer_id, month, revenue, cost, orders)`: revenue (EUR) and
  cost per customer and calendar month, from confirmed/delivered orders dated up to
  the refresh date (draft and cancelled orders are not revenue).
* `mv_customer_revenue_12m(customer_id, as_of, revenue, margin, orders, trend_slope,
  last_order_date, first_order_date)`: the trailing 12-month window, defined as the
  365 days (as_of - 365, as_of], as_of = refresh date. trend_slope (EUR per month) is
  the least-squares slope of revenue over twelve 365/12-day buckets (zero-filled).
  last/first_order_date cover the whole history up to as_of.
* `report_refresh(view_name, refreshed_at, duration_ms, as_of)`: when each view was
  last refreshed (`geo-crm reports refresh`), shown on the report pages.

Both views are created WITH NO DATA: until the first refresh the reports compute
live from the base tables. The SQL here must stay equivalent to the live queries in
`geo_crm/analytics/revenue.py` (a test compares both).

Revision ID: 0007
Revises: 0002
Create Date: 2026-11-25
"""
from alembic import op

revision = "0007"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE report_refresh (
    view_name text PRIMARY KEY,
    refreshed_at timestamptz NOT NULL,
    duration_ms integer NOT NULL,
    as_of date NOT NULL
);

CREATE MATERIALIZED VIEW mv_customer_month AS
SELECT o.customer_id,
       date_trunc('month', o.order_date)::date AS month,
       sum(o.total_amount)::numeric(16, 2) AS revenue,
       sum(o.total_cost)::numeric(16, 2) AS cost,
       count(*)::integer AS orders
FROM sales_order o
WHERE o.status IN ('confirmed', 'delivered') AND o.order_date <= current_date
GROUP BY 1, 2
WITH NO DATA;
CREATE UNIQUE INDEX ux_mv_customer_month ON mv_customer_month (customer_id, month);
CREATE INDEX ix_mv_customer_month_month ON mv_customer_month (month);

CREATE MATERIALIZED VIEW mv_customer_revenue_12m AS
SELECT o.customer_id,
       current_date AS as_of,
       coalesce(sum(o.total_amount) FILTER (WHERE o.order_date > current_date - 365), 0)::numeric(16, 2)
           AS revenue,
       coalesce(sum(o.total_amount - o.total_cost) FILTER (WHERE o.order_date > current_date - 365), 0)::numeric(16, 2)
           AS margin,
       (count(*) FILTER (WHERE o.order_date > current_date - 365))::integer AS orders,
       (coalesce(sum((5.5 - floor((current_date - o.order_date) * 12 / 365.0)) * o.total_amount)
                 FILTER (WHERE o.order_date > current_date - 365), 0) / 143.0)::double precision AS trend_slope,
       max(o.order_date) AS last_order_date,
       min(o.order_date) AS first_order_date
FROM sales_order o
WHERE o.status IN ('confirmed', 'delivered') AND o.order_date <= current_date
GROUP BY o.customer_id
WITH NO DATA;
CREATE UNIQUE INDEX ux_mv_customer_revenue_12m ON mv_customer_revenue_12m (customer_id);
"""

DOWNGRADE = """
DROP MATERIALIZED VIEW IF EXISTS mv_customer_revenue_12m;
DROP MATERIALIZED VIEW IF EXISTS mv_customer_month;
DROP TABLE IF EXISTS report_refresh;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
