"""Faster set-based area membership: `crm_compute_membership(points)` and a diffing
`crm_refresh_membership()`.

`crm_compute_membership(points regclass)` computes, for every row `(id, geom)` of any
point table (EPSG:4326), the region, service branch and territories containing it, with
the same rules as the per-row triggers of 0002:

* region: the most specific level containing the point, ties to the lowest id;
* service branch: the branch whose service area contains the point, overlaps (shared
  borders included) to the nearest branch, then the lowest id;
* territories: every territory containing the point.

"Containing" is `ST_Intersects`: boundary points count as inside. The results go to two
temporary tables dropped at commit: `crm_membership(id, region_id, service_branch_id)`
(points in no region and no service area have no row) and
`crm_membership_territory(customer_id, territory_id)`.

Speed at 1M points: the areas are cut into small parts (regions use `region_part`,
service areas and territories are subdivided to at most 128 vertices) and the join runs
*area part outer, points inner* through the points' GiST index. Each part is then
tested against a run of points one after the other, so PostGIS reuses its cached
point-in-polygon index of that part, instead of probing the area index once per point
and re-reading a different polygon on every call (0002's plan). The two choices that
need ordering (region level, nearest branch) are one sort each.

`crm_refresh_membership()` (bulk loads, `geo-crm db refresh-areas`) now writes only what
changed: customers whose region or branch differ and customer_territory rows to add or
remove, so a refresh of an up-to-date million customers writes nothing. It also clears
the service branch of a customer outside every service area (0002 left it as it was).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25
"""
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE OR REPLACE FUNCTION crm_compute_membership(points regclass) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  DROP TABLE IF EXISTS pg_temp.crm_area, pg_temp.crm_area_part, pg_temp.crm_area_hit, pg_temp.crm_membership,
                       pg_temp.crm_membership_territory;
  -- layer 1 regions (rank = level), 2 branch service areas (anchor = the branch), 3 territories
  CREATE TEMP TABLE crm_area ON COMMIT DROP AS
    SELECT 1::smallint AS layer, r.id AS area_id, r.level AS rank, NULL::geometry AS anchor, r.geom
      FROM region r WHERE r.geom IS NOT NULL
    UNION ALL
    SELECT 2::smallint, b.id, 0, b.geom, b.service_area FROM branch b WHERE b.service_area IS NOT NULL
    UNION ALL
    SELECT 3::smallint, t.id, 0, NULL, t.geom FROM territory t WHERE t.geom IS NOT NULL;
  ALTER TABLE crm_area ADD PRIMARY KEY (layer, area_id);
  -- candidate boxes: the bounding boxes of each area cut into parts of at most 64 vertices,
  -- widened by 1e-9 degrees so that rounding where a cut meets the outline loses no point
  CREATE TEMP TABLE crm_area_part ON COMMIT DROP AS
    SELECT layer, area_id, ST_Expand(ST_Envelope(ST_Subdivide(geom, 64)), 1e-9) AS box FROM crm_area
     ORDER BY layer, area_id;
  ANALYZE crm_area;
  ANALYZE crm_area_part;
  -- parts outer, points inner through the points' GiST index; the exact test is against the
  -- whole area, which stays the same across a run of points (PostGIS caches its index)
  EXECUTE format($q$
    CREATE TEMP TABLE crm_area_hit ON COMMIT DROP AS
    SELECT p.id, a.layer, a.area_id, a.rank, CASE WHEN a.layer = 2 THEN p.geom <-> a.anchor END AS dist
      FROM crm_area_part x JOIN crm_area a USING (layer, area_id)
      JOIN %s p ON p.geom && x.box AND ST_Intersects(a.geom, p.geom)$q$, points);
  CREATE TEMP TABLE crm_membership ON COMMIT DROP AS
    SELECT coalesce(r.id, b.id) AS id, r.region_id, b.service_branch_id
      FROM (SELECT DISTINCT ON (id) id, area_id AS region_id FROM crm_area_hit WHERE layer = 1
             ORDER BY id, rank DESC, area_id) r
      FULL JOIN (SELECT DISTINCT ON (id) id, area_id AS service_branch_id FROM crm_area_hit WHERE layer = 2
                  ORDER BY id, dist, area_id) b ON b.id = r.id;
  GET DIAGNOSTICS n = ROW_COUNT;
  CREATE TEMP TABLE crm_membership_territory ON COMMIT DROP AS
    SELECT DISTINCT id AS customer_id, area_id AS territory_id FROM crm_area_hit WHERE layer = 3;
  CREATE UNIQUE INDEX ON crm_membership (id);
  ANALYZE crm_membership;
  ANALYZE crm_membership_territory;
  RETURN n;
END $$;

-- the per-row rules, exact too: the whole outline decides (0002 tested the subdivided
-- parts, whose cut points are rounded, so a point on an outline could fall between them)
CREATE OR REPLACE FUNCTION crm_region_for(p geometry) RETURNS integer LANGUAGE sql STABLE AS $$
  SELECT r.id FROM region r
   WHERE p IS NOT NULL AND ST_Intersects(r.geom, p)
   ORDER BY r.level DESC, r.id LIMIT 1
$$;

CREATE OR REPLACE FUNCTION crm_refresh_territory(tid integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE n integer;
BEGIN
  DELETE FROM customer_territory WHERE territory_id = tid;
  INSERT INTO customer_territory (customer_id, territory_id)
  SELECT DISTINCT c.id, tid
    FROM (SELECT ST_Expand(ST_Envelope(ST_Subdivide(geom, 64)), 1e-9) AS box, geom FROM territory WHERE id = tid) part
    JOIN customer c ON c.geom && part.box AND ST_Intersects(part.geom, c.geom);
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

CREATE OR REPLACE FUNCTION crm_refresh_membership() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM crm_compute_membership('customer');
  UPDATE customer c SET region_id = m.region_id, service_branch_id = m.service_branch_id
    FROM crm_membership m
   WHERE m.id = c.id AND (c.region_id IS DISTINCT FROM m.region_id
                          OR c.service_branch_id IS DISTINCT FROM m.service_branch_id);
  UPDATE customer c SET region_id = NULL, service_branch_id = NULL
   WHERE (c.region_id IS NOT NULL OR c.service_branch_id IS NOT NULL)
     AND NOT EXISTS (SELECT 1 FROM crm_membership m WHERE m.id = c.id);
  DELETE FROM customer_territory ct
   WHERE NOT EXISTS (SELECT 1 FROM crm_membership_territory m
                      WHERE m.customer_id = ct.customer_id AND m.territory_id = ct.territory_id);
  INSERT INTO customer_territory (customer_id, territory_id)
  SELECT m.customer_id, m.territory_id FROM crm_membership_territory m
   WHERE NOT EXISTS (SELECT 1 FROM customer_territory ct
                      WHERE ct.customer_id = m.customer_id AND ct.territory_id = m.territory_id);
END $$;
"""

# the functions as migration 0002 created them
PREVIOUS = r"""
CREATE OR REPLACE FUNCTION crm_region_for(p geometry) RETURNS integer LANGUAGE sql STABLE AS $$
  SELECT rp.region_id FROM region_part rp
   WHERE p IS NOT NULL AND ST_Intersects(rp.geom, p)
   ORDER BY rp.level DESC, rp.region_id LIMIT 1
$$;

CREATE OR REPLACE FUNCTION crm_refresh_territory(tid integer) RETURNS integer LANGUAGE plpgsql AS $$
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

CREATE OR REPLACE FUNCTION crm_refresh_membership() RETURNS void LANGUAGE plpgsql AS $$
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
DROP FUNCTION IF EXISTS crm_compute_membership(regclass);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(PREVIOUS)
