"""Reports: a covering index of the customer attributes the reports group and filter by.

The reports aggregate over up to every customer joined to the per-customer revenue
views. Reading six short attributes from the wide `customer` heap (geometry, notes,
addresses: ~800 bytes a row) dominated them at 1M customers; this index lets the
planner answer those joins with an index-only scan in customer-id order (which also
merge-joins with the views' unique customer_id indexes without sorting). Membership
stays live: the index is maintained with the table, so reports never use stale
region/owner/branch/status values.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_customer_report_attrs ON customer (id) INCLUDE "
               "(region_id, service_branch_id, owner_id, level, status, credit_rating, industry)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_customer_report_attrs")
