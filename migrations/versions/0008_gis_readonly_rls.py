"""Read-only GIS access with row-level security.

A group role `crm_gis_reader` (NOLOGIN) is the parent of every read-only login made
by `geo-crm db readonly-role create NAME`. The table `gis_role` maps each login to a
CRM user; RLS policies on customer, contact and customer_territory let members of
`crm_gis_reader` see exactly the customers that user's Scope would (same rules as
geo_crm/security/scope.py, on the stored membership tables). Roles that are not
members of `crm_gis_reader` are unaffected (the app's owner role bypasses RLS anyway).
The mapping is looked up by `session_user`, which a connected client cannot change
(unlike a custom setting), and the table is not readable by the GIS roles.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UPGRADE = r"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'crm_gis_reader') THEN
    CREATE ROLE crm_gis_reader NOLOGIN;
  END IF;
END $$;

CREATE TABLE gis_role (
  rolname name PRIMARY KEY,
  user_id integer NOT NULL REFERENCES app_user(id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- may the GIS reader logged in as session_user see customer `cid`? (Scope rules)
CREATE FUNCTION crm_gis_sees_customer(cid integer) RETURNS boolean
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT CASE u.role
    WHEN 'admin' THEN true
    WHEN 'executive' THEN true
    WHEN 'sales_manager' THEN EXISTS (SELECT 1 FROM customer_territory ct JOIN user_territory ut
                                      ON ut.territory_id = ct.territory_id
                                      WHERE ct.customer_id = cid AND ut.user_id = u.id)
    WHEN 'regional_manager' THEN EXISTS (SELECT 1 FROM customer_territory ct JOIN user_territory ut
                                         ON ut.territory_id = ct.territory_id
                                         WHERE ct.customer_id = cid AND ut.user_id = u.id)
    WHEN 'account_manager' THEN EXISTS (SELECT 1 FROM customer c WHERE c.id = cid AND c.owner_id = u.id)
    WHEN 'service_agent' THEN EXISTS (SELECT 1 FROM service_record s WHERE s.customer_id = cid
                                      AND s.assignee_id = u.id)
    WHEN 'logistics' THEN u.branch_id IS NOT NULL AND EXISTS (SELECT 1 FROM customer c WHERE c.id = cid
                                                               AND c.service_branch_id = u.branch_id)
    WHEN 'customer' THEN cid = u.customer_id
    ELSE false END
  FROM gis_role g JOIN app_user u ON u.id = g.user_id AND u.is_active
  WHERE g.rolname = session_user
$$;
REVOKE ALL ON FUNCTION crm_gis_sees_customer(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_gis_sees_customer(integer) TO crm_gis_reader;

ALTER TABLE customer ENABLE ROW LEVEL SECURITY;
ALTER TABLE contact ENABLE ROW LEVEL SECURITY;
ALTER TABLE customer_territory ENABLE ROW LEVEL SECURITY;
CREATE POLICY crm_all ON customer USING (NOT pg_has_role(session_user, 'crm_gis_reader', 'MEMBER'));
CREATE POLICY crm_gis ON customer FOR SELECT TO crm_gis_reader USING (coalesce(crm_gis_sees_customer(id), false));
CREATE POLICY crm_all ON contact USING (NOT pg_has_role(session_user, 'crm_gis_reader', 'MEMBER'));
CREATE POLICY crm_gis ON contact FOR SELECT TO crm_gis_reader
  USING (coalesce(crm_gis_sees_customer(customer_id), false));
CREATE POLICY crm_all ON customer_territory USING (NOT pg_has_role(session_user, 'crm_gis_reader', 'MEMBER'));
CREATE POLICY crm_gis ON customer_territory FOR SELECT TO crm_gis_reader
  USING (coalesce(crm_gis_sees_customer(customer_id), false));
"""

DOWNGRADE = r"""
DROP POLICY IF EXISTS crm_gis ON customer_territory;
DROP POLICY IF EXISTS crm_all ON customer_territory;
DROP POLICY IF EXISTS crm_gis ON contact;
DROP POLICY IF EXISTS crm_all ON contact;
DROP POLICY IF EXISTS crm_gis ON customer;
DROP POLICY IF EXISTS crm_all ON customer;
ALTER TABLE customer_territory DISABLE ROW LEVEL SECURITY;
ALTER TABLE contact DISABLE ROW LEVEL SECURITY;
ALTER TABLE customer DISABLE ROW LEVEL SECURITY;
DROP FUNCTION IF EXISTS crm_gis_sees_customer(integer);
DROP TABLE IF EXISTS gis_role;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
