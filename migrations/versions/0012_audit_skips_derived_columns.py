"""Audit rows leave out derived columns: `geom_3067` is computed from `geom` (0011), so
a moved customer's audit entry shows the location change once, not twice.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25
"""
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

AUDIT = r"""
CREATE OR REPLACE FUNCTION crm_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  o jsonb; n jsonb; k text; uid integer; eid text;
BEGIN
  IF crm_bulk() THEN RETURN NULL; END IF;
  IF TG_OP <> 'INSERT' THEN o := to_jsonb(OLD) - 'password_hash' - 'geom_3067'; END IF;
  IF TG_OP <> 'DELETE' THEN n := to_jsonb(NEW) - 'password_hash' - 'geom_3067'; END IF;
  IF TG_OP = 'UPDATE' THEN
    FOR k IN SELECT jsonb_object_keys(n) LOOP
      IF o -> k = n -> k THEN o := o - k; n := n - k; END IF;
    END LOOP;
    o := o - 'updated_at' - 'version'; n := n - 'updated_at' - 'version';
    IF n = '{}'::jsonb THEN RETURN NULL; END IF;
  END IF;
  uid := nullif(current_setting('geo_crm.user_id', true), '')::integer;
  eid := coalesce(coalesce(to_jsonb(NEW), to_jsonb(OLD)) ->> 'id',
                  coalesce(to_jsonb(NEW), to_jsonb(OLD)) ->> 'key',
                  (coalesce(to_jsonb(NEW), to_jsonb(OLD)) - 'assigned_at')::text);
  INSERT INTO audit_log (user_id, username, action, entity, entity_id, old, new, remote_addr)
  VALUES (uid, coalesce(current_setting('geo_crm.username', true), ''), lower(TG_OP), TG_TABLE_NAME, eid,
          o, n, nullif(current_setting('geo_crm.remote_addr', true), ''));
  RETURN NULL;
END $$;
"""

PREVIOUS = r"""
CREATE OR REPLACE FUNCTION crm_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  o jsonb; n jsonb; k text; uid integer; eid text;
BEGIN
  IF crm_bulk() THEN RETURN NULL; END IF;
  IF TG_OP <> 'INSERT' THEN o := to_jsonb(OLD) - 'password_hash'; END IF;
  IF TG_OP <> 'DELETE' THEN n := to_jsonb(NEW) - 'password_hash'; END IF;
  IF TG_OP = 'UPDATE' THEN
    FOR k IN SELECT jsonb_object_keys(n) LOOP
      IF o -> k = n -> k THEN o := o - k; n := n - k; END IF;
    END LOOP;
    o := o - 'updated_at' - 'version'; n := n - 'updated_at' - 'version';
    IF n = '{}'::jsonb THEN RETURN NULL; END IF;
  END IF;
  uid := nullif(current_setting('geo_crm.user_id', true), '')::integer;
  eid := coalesce(coalesce(to_jsonb(NEW), to_jsonb(OLD)) ->> 'id',
                  coalesce(to_jsonb(NEW), to_jsonb(OLD)) ->> 'key',
                  (coalesce(to_jsonb(NEW), to_jsonb(OLD)) - 'assigned_at')::text);
  INSERT INTO audit_log (user_id, username, action, entity, entity_id, old, new, remote_addr)
  VALUES (uid, coalesce(current_setting('geo_crm.username', true), ''), lower(TG_OP), TG_TABLE_NAME, eid,
          o, n, nullif(current_setting('geo_crm.remote_addr', true), ''));
  RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(AUDIT)


def downgrade() -> None:
    op.execute(PREVIOUS)
