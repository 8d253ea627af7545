"""Reports over any period: per-customer prefix sums by month, and a covering index of
revenue orders by date.

* `mv_customer_month_cum(customer_id, first_month, as_of, revenue, margin, orders,
  last_day)`: one row per customer with a confirmed/delivered order up to the refresh
  date (as_of). Each array has one element per calendar month from the customer's first
  order month to the as_of month (dense: months without orders repeat the previous
  value), holding the running totals up to the end of that month:
    revenue / margin: bigint[] EUR cents (exact: total_amount, total_amount - total_cost),
    orders: integer[] order count, last_day: integer[] date of the last order so far
    (days since 2000-01-01).
  `first_month` is the month number year * 12 + month - 1. Revenue over whole months
  M1..M2 is then revenue[M2 - first_month + 1] - revenue[M1 - first_month] (a month
  before the first order counts 0): two array lookups per customer, whatever the length
  of the period, instead of summing ~3.5M monthly rows. Row size grows with the
  customer's history (about 20 bytes per month).
* `ix_sales_order_revenue_date`: confirmed/delivered orders by date with the columns the
  reports sum, so the partial months at the edges of a period (and periods computed live)
  are index-only scans instead of reading the wide order heap.
* `crm_array_cat_agg(anycompatiblearray)`: concatenating aggregate used by the view.

Created WITH NO DATA; `geo-crm reports refresh` fills it after the 0007 views.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-25
"""
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE INDEX IF NOT EXISTS ix_sales_order_revenue_date ON sales_order (order_date)
    INCLUDE (customer_id, total_amount, total_cost) WHERE status IN ('confirmed', 'delivered');

CREATE OR REPLACE AGGREGATE crm_array_cat_agg(anycompatiblearray) (sfunc = array_cat, stype = anycompatiblearray);

CREATE MATERIALIZED VIEW IF NOT EXISTS mv_customer_month_cum AS
WITH m AS (
    SELECT o.customer_id,
           extract(year FROM o.order_date)::integer * 12 + extract(month FROM o.order_date)::integer - 1 AS mi,
           sum(o.total_amount) AS revenue,
           sum(o.total_amount - o.total_cost) AS margin,
           count(*)::integer AS orders,
           max(o.order_date) - DATE '2000-01-01' AS last_day
    FROM sales_order o
    WHERE o.status IN ('confirmed', 'delivered') AND o.order_date <= current_date
    GROUP BY 1, 2
), c AS (
    SELECT customer_id, mi, last_day,
           ((sum(revenue) OVER w) * 100)::bigint AS revenue,
           ((sum(margin) OVER w) * 100)::bigint AS margin,
           (sum(orders) OVER w)::integer AS orders,
           coalesce(lead(mi) OVER w, extract(year FROM current_date)::integer * 12
                                     + extract(month FROM current_date)::integer) - mi AS span
    FROM m
    WINDOW w AS (PARTITION BY customer_id ORDER BY mi)
)
SELECT customer_id, min(mi) AS first_month, current_date AS as_of,
       crm_array_cat_agg(array_fill(revenue, ARRAY[span]) ORDER BY mi) AS revenue,
       crm_array_cat_agg(array_fill(margin, ARRAY[span]) ORDER BY mi) AS margin,
       crm_array_cat_agg(array_fill(orders, ARRAY[span]) ORDER BY mi) AS orders,
       crm_array_cat_agg(array_fill(last_day, ARRAY[span]) ORDER BY mi) AS last_day
FROM c
GROUP BY customer_id
WITH NO DATA;
CREATE UNIQUE INDEX IF NOT EXISTS ux_mv_customer_month_cum ON mv_customer_month_cum (customer_id);
"""

DOWNGRADE = """
DROP MATERIALIZED VIEW IF EXISTS mv_customer_month_cum;
DROP AGGREGATE IF EXISTS crm_array_cat_agg(anycompatiblearray);
DROP INDEX IF EXISTS ix_sales_order_revenue_date;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
