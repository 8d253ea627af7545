"""Stored area membership, derived areas, audit triggers, seed roles.

Area membership (customer.region_id, customer.service_branch_id, customer_territory)
is kept by triggers on row-level writes and by the set-based function
`crm_refresh_membership()` for bulk loads (which set `geo_crm.bulk = on` locally to
skip the per-row triggers). Regions are stored subdivided in `region_part` so
point-in-polygon joins stay fast on large, detailed polygons.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ROLES = {
    "admin": "Everything: users, roles, dictionaries, territories, settings",
    "executive": "Sees everything, read-only; reports",
    "sales_manager": "Customers in their territories; creates and assigns opportunities",
    "regional_manager": "Only records located inside their assigned territories",
    "account_manager": "Customers they own and opportunities assigned to them",
    "service_agent": "Service records assigned to them and basic customer fields",
    "logistics": "Customers in their branch's service area; plans and exports routes",
    "customer": "Their own record, orders and service records",
}

AUDITED = ("customer", "contact", "branch", "vehicle", "partner", "territory", "user_territory",
           "product", "sales_order", "opportunity", "development_plan_step", "service_record",
           "churn_alert", "app_user", "dictionary", "region", "delivery_plan", "app_setting")

UPGRADE_SQL = r"""
CREATE TABLE region_part (
    region_id integer NOT NULL REFERENCES region(id) ON DELETE CASCADE,
    level integer NOT NULL,
    geom geometry(Polygon, 4326) NOT NULL
);
CREATE INDEX idx_region_part_geom ON region_part USING gist (geom);
CREATE INDEX ix_region_part_region_id ON region_part (region_id);

-- areas in km² measured on the spheroid
CREATE FUNCTION crm_set_area_km2() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.area_km2 := ST_Area(NEW.geom::geography) / 1e6;
  RETURN NEW;
END $$;
CREATE TRIGGER region_area BEFORE INSERT OR UPDATE OF geom ON region
  FOR EACH ROW EXECUTE FUNCTION crm_set_area_km2();
CREATE TRIGGER territory_area BEFORE INSERT OR UPDATE OF geom ON territory
  FOR EACH ROW EXECUTE FUNCTION crm_set_area_km2();

CREATE FUNCTION crm_bulk() RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT coalesce(current_setting('geo_crm.bulk', true), '') = 'on'
$$;

-- the most specific region containing a point (boundary points count as inside;
-- ties go to the lowest id so the answer is deterministic)
CREATE FUNCTION crm_region_for(p geometry) RETURNS integer LANGUAGE sql STABLE AS $$
  SELECT rp.region_id FROM region_part rp
   WHERE p IS NOT NULL AND ST_Intersects(rp.geom, p)
   ORDER BY rp.level DESC, rp.region_id LIMIT 1
$$;

-- the branch whose service area contains a point; overlaps go to the nearest branch
CREATE FUNCTION crm_service_branch_for(p geometry) RETURNS integer LANGUAGE sql STABLE AS $$
  SELECT b.id FROM branch b
   WHERE p IS NOT NULL AND b.service_area IS NOT NULL AND ST_Intersects(b.service_area, p)
   ORDER BY b.geom <-> p, b.id LIMIT 1
$$;

CREATE FUNCTION crm_region_parts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    DELETE FROM region_part WHERE region_id = OLD.id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO region_part (region_id, level, geom)
    SELECT NEW.id, NEW.level, ST_Subdivide(NEW.geom, 128);
  END IF;
  IF NOT crm_bulk() THEN
    IF TG_OP = 'DELETE' THEN
      UPDATE customer SET region_id = crm_region_for(geom) WHERE region_id = OLD.id;
    ELSE
      UPDATE customer c SET region_id = crm_region_for(c.geom)
       WHERE c.region_id IS NOT DISTINCT FROM NEW.id OR ST_Intersects(c.geom, NEW.geom)
          OR (TG_OP = 'UPDATE' AND ST_Intersects(c.geom, OLD.geom));
    END IF;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER region_parts AFTER INSERT OR UPDATE OF geom, level OR DELETE ON region
  FOR EACH ROW EXECUTE FUNCTION crm_region_parts();

-- a customer's own write: region and service branch before, territories after
CREATE FUNCTION crm_customer_areas() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF crm_bulk() THEN RETURN NEW; END IF;
  NEW.region_id := crm_region_for(NEW.geom);
  NEW.service_branch_id := crm_service_branch_for(NEW.geom);
  RETURN NEW;
END $$;
CREATE TRIGGER customer_areas BEFORE INSERT OR UPDATE OF geom ON customer
  FOR EACH ROW EXECUTE FUNCTION crm_customer_areas();

CREATE FUNCTION crm_customer_territories() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF crm_bulk() THEN RETURN NULL; END IF;
  DELETE FROM customer_territory WHERE customer_id = NEW.id;
  IF NEW.geom IS NOT NULL THEN
    INSERT INTO customer_territory (customer_id, territory_id)
    SELECT NEW.id, t.id FROM territory t WHERE ST_Intersects(t.geom, NEW.geom);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER customer_territories AFTER INSERT OR UPDATE OF geom ON customer
  FOR EACH ROW EXECUTE FUNCTION crm_customer_territories();

-- set-based recomputation of one territory's members
CREATE FUNCTION crm_refresh_territory(tid integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE n integer;
BEGIN
  DELETE FROM customer_territory WHERE territory_id = tid;
  INSERT INTO customer_territory (customer_id, territory_id)
  SELECT DISTINCT c.id, tid
    FROM (SELECT ST_Subdivide(geom, 128) AS geom FROM territory WHERE id = tid) part
    JOIN customer c ON ST_Intersects(part.geom, c.geom);
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

CREATE FUNCTION crm_territory_members() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT crm_bulk() THEN PERFORM crm_refresh_territory(NEW.id); END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER territory_members AFTER INSERT OR UPDATE OF geom ON territory
  FOR EACH ROW EXECUTE FUNCTION crm_territory_members();

-- set-based recomputation of the customers a branch's service area touches
CREATE FUNCTION crm_branch_service_area() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF crm_bulk() THEN RETURN NULL; END IF;
  IF TG_OP = 'DELETE' THEN
    UPDATE customer SET service_branch_id = crm_service_branch_for(geom) WHERE service_branch_id = OLD.id;
    RETURN NULL;
  END IF;
  UPDATE customer c SET service_branch_id = crm_service_branch_for(c.geom)
   WHERE c.service_branch_id = NEW.id
      OR (NEW.service_area IS NOT NULL AND ST_Intersects(NEW.service_area, c.geom));
  RETURN NULL;
END $$;
CREATE TRIGGER branch_service_area AFTER INSERT OR UPDATE OF service_area, geom OR DELETE ON branch
  FOR EACH ROW EXECUTE FUNCTION crm_branch_service_area();

-- everything, set-based: used after bulk loads and by `geo-crm db refresh-areas`
CREATE FUNCTION crm_refresh_membership() RETURNS void LANGUAGE plpgsql AS $$
DECLARE t record;
BEGIN
  UPDATE customer c SET region_id = sub.region_id
    FROM (SELECT DISTINCT ON (c2.id) c2.id, rp.region_id
            FROM customer c2 JOIN region_part rp ON ST_Intersects(rp.geom, c2.geom)
           ORDER BY c2.id, rp.level DESC, rp.region_id) sub
   WHERE c.id = sub.id AND c.region_id IS DISTINCT FROM sub.region_id;
  UPDATE customer c SET region_id = NULL
   WHERE c.region_id IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM region_part rp WHERE rp.region_id = c.region_id AND ST_Intersects(rp.geom, c.geom));
  UPDATE customer c SET service_branch_id = sub.branch_id
    FROM (SELECT DISTINCT ON (c2.id) c2.id, b.id AS branch_id
            FROM customer c2
            JOIN (SELECT id, geom, ST_Subdivide(service_area, 128) AS part FROM branch
                   WHERE service_area IS NOT NULL) b ON ST_Intersects(b.part, c2.geom)
           ORDER BY c2.id, c2.geom <-> b.geom, b.id) sub
   WHERE c.id = sub.id AND c.service_branch_id IS DISTINCT FROM sub.branch_id;
  FOR t IN SELECT id FROM territory LOOP
    PERFORM crm_refresh_territory(t.id);
  END LOOP;
END $$;

-- audit: who (geo_crm.user_id / geo_crm.username set per transaction), when, old and new
CREATE FUNCTION crm_audit() RETURNS trigger LANGUAGE plpgsql AS $$
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

DOWNGRADE_SQL = r"""
DROP TRIGGER IF EXISTS branch_service_area ON branch;
DROP TRIGGER IF EXISTS territory_members ON territory;
DROP TRIGGER IF EXISTS customer_territories ON customer;
DROP TRIGGER IF EXISTS customer_areas ON customer;
DROP TRIGGER IF EXISTS region_parts ON region;
DROP TRIGGER IF EXISTS territory_area ON territory;
DROP TRIGGER IF EXISTS region_area ON region;
DROP FUNCTION IF EXISTS crm_refresh_membership();
DROP FUNCTION IF EXISTS crm_branch_service_area();
DROP FUNCTION IF EXISTS crm_territory_members();
DROP FUNCTION IF EXISTS crm_refresh_territory(integer);
DROP FUNCTION IF EXISTS crm_customer_territories();
DROP FUNCTION IF EXISTS crm_customer_areas();
DROP FUNCTION IF EXISTS crm_region_parts();
DROP FUNCTION IF EXISTS crm_service_branch_for(geometry);
DROP FUNCTION IF EXISTS crm_region_for(geometry);
DROP FUNCTION IF EXISTS crm_set_area_km2();
DROP TABLE IF EXISTS region_part;
"""


def upgrade() -> None:
    op.execute(UPGRADE_SQL)
    for t in AUDITED:
        op.execute(f"CREATE TRIGGER {t}_audit AFTER INSERT OR UPDATE OR DELETE ON {t} "
                   f"FOR EACH ROW EXECUTE FUNCTION crm_audit()")
    for name, desc in ROLES.items():
        op.execute(sa.text("INSERT INTO role (name, description) VALUES (:n, :d) "
                           "ON CONFLICT (name) DO NOTHING").bindparams(n=name, d=desc))


def downgrade() -> None:
    for t in AUDITED:
        op.execute(f"DROP TRIGGER IF EXISTS {t}_audit ON {t}")
    op.execute("DROP FUNCTION IF EXISTS crm_audit()")
    op.execute(DOWNGRADE_SQL)
    op.execute("DROP FUNCTION IF EXISTS crm_bulk()")
    op.execute("DELETE FROM role")
