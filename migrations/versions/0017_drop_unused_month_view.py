"""Drop what nothing reads:

* `mv_customer_month`: since 0016 every report over a period reads the per-customer
  running totals (`mv_customer_month_cum`) instead, so the monthly view was refreshed
  nightly (about 80 s at 1M customers) for no reader.
* `ix_sales_order_customer_id`: `ix_sales_order_customer_date (customer_id, order_date)`
  serves every lookup by customer (and the cascade from customer), so the single-column
  index only cost writes and bulk loads.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-25
"""
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP MATERIALIZED VIEW IF EXISTS mv_customer_month")
    op.execute("DELETE FROM report_refresh WHERE view_name = 'mv_customer_month'")
    op.execute("DROP INDEX IF EXISTS ix_sales_order_customer_id")


def downgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS ix_sales_order_customer_id ON sales_order (customer_id)")
    # as created by 0007 (empty until the next `geo-crm reports refresh`)
    op.execute("""
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
""")
