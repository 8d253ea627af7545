"""Spatial aggregation at scale: a stored EPSG:3067 point per customer, index-only
paths for area counts, and a small index for draft orders.

- `customer.geom_3067`: `ST_Transform(geom, 3067)` (ETRS-TM35FIN metres), a STORED
  generated column, so every writer (ORM, bulk COPY loader, importer) fills it with no
  code of its own. Hex-grid density and planar distance work read it instead of
  projecting a million points per request.
- `ix_customer_area_cover (id) INCLUDE (region_id, geom_3067)`: density by region and
  by hex read region, id and projected point from the index alone (index-only scan)
  when the caller sees everything and no column filter applies.
- `ix_sales_order_draft_date`: density revenue counts non-cancelled orders; the report
  view `mv_customer_revenue_12m` covers confirmed and delivered ones, so drafts are
  added live from this (tiny, partial) index.

Adding a stored generated column rewrites `customer` (about a minute per million rows).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        ALTER TABLE customer ADD COLUMN geom_3067 geometry(Point, 3067)
            GENERATED ALWAYS AS (ST_Transform(geom, 3067)) STORED;
        CREATE INDEX ix_customer_area_cover ON customer (id) INCLUDE (region_id, geom_3067);
        CREATE INDEX ix_sales_order_draft_date ON sales_order (order_date) INCLUDE (customer_id, total_amount)
            WHERE status = 'draft';
    """)


def downgrade() -> None:
    op.execute("""
        DROP INDEX IF EXISTS ix_sales_order_draft_date;
        DROP INDEX IF EXISTS ix_customer_area_cover;
        ALTER TABLE customer DROP COLUMN IF EXISTS geom_3067;
    """)
