"""Spatial aggregates at scale: a revenue snapshot for density maps, and a live grid of
customer counts for low-zoom vector tiles.

Revenue snapshot (materialised views, created WITH NO DATA; `geo-crm spatial refresh`,
i.e. `geo_crm.spatial.aggregates.refresh`, fills them in one transaction):

* `mv_density_customer(customer_id, as_of, region_id, level, status, industry, owner_id,
  x, y, revenue)`: per located customer with revenue in the density window — the sum
  of non-cancelled orders dated in (as_of - 365 days, as_of], as_of = refresh date —
  with the attributes density filters and scopes use, and the EPSG:3067 point (metres).
* `mv_density_region_revenue` / `mv_density_territory_revenue`: the same revenue
  summed per (region | territory, level, status, industry, owner_id): a few thousand
  rows, so revenue per area is a small GROUP BY instead of joining a million customers
  to their orders. Territory rows use `customer_territory` at refresh time.

Customer tile grid (a table kept exact by statement-level triggers on `customer`):

* `customer_tile_cell(cx, cy, customers, sum_mx, sum_my)`: located customers per cell
  of the zoom-10 tile aggregation grid (EPSG:3857, cell = tile width / 64 ≈ 611 m at the
  equator; see geo_crm/spatial/tiles.py), with the sums of their Web Mercator x and y
  (metres, numeric so that adding and removing a customer cancels exactly). The cells of
  every lower zoom are unions of these (the grids nest by powers of two), so a low-zoom
  tile of everything groups a few thousand rows instead of scanning its customers.
  Insert, delete, update (of the location) and truncate of `customer` maintain it in the
  same transaction, bulk COPY included (transition tables: one pass per statement).

Revision ID: 0014
Revises: 0012
Create Date: 2026-11-25
"""
from alembic import op

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None

# Web Mercator (spherical, as EPSG:3857) by formula, identical to geo_crm/spatial/tiles.py
MX = "(ST_X({g}) * (2 * 20037508.342789244 / 360.0))"
MY = "(ln(tan(radians(45.0 + ST_Y({g}) / 2.0))) * 6378137.0)"
CELL10 = "(2 * 20037508.342789244 / 1024 / 64)"


def _cells(rows: str, sign: str) -> str:
    mx, my = MX.format(g="geom"), MY.format(g="geom")
    return (f"SELECT floor(mx / {CELL10})::integer AS cx, floor(my / {CELL10})::integer AS cy, {sign}1 AS n, "
            f"{sign}(mx::numeric) AS smx, {sign}(my::numeric) AS smy "
            f"FROM (SELECT {mx} AS mx, {my} AS my FROM {rows} WHERE geom IS NOT NULL) p")


APPLY = """
    INSERT INTO customer_tile_cell AS t (cx, cy, customers, sum_mx, sum_my)
    SELECT cx, cy, sum(n), sum(smx), sum(smy) FROM ({deltas}) d
     GROUP BY cx, cy HAVING sum(n) <> 0 OR sum(smx) <> 0 OR sum(smy) <> 0
     ORDER BY cx, cy
    ON CONFLICT (cx, cy) DO UPDATE SET customers = t.customers + excluded.customers,
        sum_mx = t.sum_mx + excluded.sum_mx, sum_my = t.sum_my + excluded.sum_my;
    DELETE FROM customer_tile_cell WHERE customers = 0;"""

UPGRADE = f"""
CREATE MATERIALIZED VIEW mv_density_customer AS
SELECT c.id AS customer_id, current_date AS as_of, c.region_id, c.level, c.status, c.industry, c.owner_id,
       ST_X(c.geom_3067) AS x, ST_Y(c.geom_3067) AS y, r.revenue
  FROM customer c
  JOIN (SELECT customer_id, sum(total_amount) AS revenue FROM sales_order
         WHERE status <> 'cancelled' AND order_date > current_date - 365 AND order_date <= current_date
         GROUP BY customer_id) r ON r.customer_id = c.id
 WHERE c.geom IS NOT NULL
WITH NO DATA;
CREATE UNIQUE INDEX ux_mv_density_customer ON mv_density_customer (customer_id);

CREATE MATERIALIZED VIEW mv_density_region_revenue AS
SELECT as_of, region_id, level, status, industry, owner_id, sum(revenue) AS revenue, count(*)::integer AS customers
  FROM mv_density_customer WHERE region_id IS NOT NULL
 GROUP BY as_of, region_id, level, status, industry, owner_id
WITH NO DATA;
CREATE UNIQUE INDEX ux_mv_density_region_revenue
    ON mv_density_region_revenue (region_id, level, status, industry, owner_id) NULLS NOT DISTINCT;

CREATE MATERIALIZED VIEW mv_density_territory_revenue AS
SELECT d.as_of, ct.territory_id, d.level, d.status, d.industry, d.owner_id, sum(d.revenue) AS revenue,
       count(*)::integer AS customers
  FROM mv_density_customer d JOIN customer_territory ct ON ct.customer_id = d.customer_id
 GROUP BY d.as_of, ct.territory_id, d.level, d.status, d.industry, d.owner_id
WITH NO DATA;
CREATE UNIQUE INDEX ux_mv_density_territory_revenue
    ON mv_density_territory_revenue (territory_id, level, status, industry, owner_id) NULLS NOT DISTINCT;

CREATE TABLE customer_tile_cell (
    cx integer NOT NULL,
    cy integer NOT NULL,
    customers integer NOT NULL,              -- no CHECK: INSERT ... ON CONFLICT checks the proposed delta row
    sum_mx numeric NOT NULL,
    sum_my numeric NOT NULL,
    PRIMARY KEY (cx, cy)
);
-- cells emptied by a statement are deleted at its end: this tiny index finds them
CREATE INDEX ix_customer_tile_cell_empty ON customer_tile_cell (cx, cy) WHERE customers = 0;

CREATE FUNCTION crm_tile_cells_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{APPLY.format(deltas=_cells("new_rows", ""))}
    RETURN NULL;
END $$;

CREATE FUNCTION crm_tile_cells_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{APPLY.format(deltas=_cells("old_rows", "-"))}
    RETURN NULL;
END $$;

CREATE FUNCTION crm_tile_cells_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- only rows whose location changed (or whose id did) move between cells
    IF NOT EXISTS (SELECT 1 FROM old_rows o FULL JOIN new_rows n ON n.id = o.id
                    WHERE n.id IS NULL OR o.id IS NULL OR n.geom IS DISTINCT FROM o.geom) THEN
        RETURN NULL;
    END IF;
{APPLY.format(deltas=_cells("(SELECT n.* FROM new_rows n LEFT JOIN old_rows o ON o.id = n.id "
                            "WHERE o.id IS NULL OR n.geom IS DISTINCT FROM o.geom) nr", "")
                     + " UNION ALL " +
                     _cells("(SELECT o.* FROM old_rows o LEFT JOIN new_rows n ON n.id = o.id "
                            "WHERE n.id IS NULL OR n.geom IS DISTINCT FROM o.geom) orr", "-"))}
    RETURN NULL;
END $$;

CREATE FUNCTION crm_tile_cells_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM customer_tile_cell;
    RETURN NULL;
END $$;

CREATE TRIGGER customer_tile_cells_ins AFTER INSERT ON customer REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_tile_cells_insert();
CREATE TRIGGER customer_tile_cells_del AFTER DELETE ON customer REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_tile_cells_delete();
CREATE TRIGGER customer_tile_cells_upd AFTER UPDATE ON customer
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_tile_cells_update();
CREATE TRIGGER customer_tile_cells_trunc AFTER TRUNCATE ON customer
    FOR EACH STATEMENT EXECUTE FUNCTION crm_tile_cells_truncate();

INSERT INTO customer_tile_cell (cx, cy, customers, sum_mx, sum_my)
SELECT cx, cy, sum(n), sum(smx), sum(smy) FROM ({_cells("customer", "")}) d GROUP BY cx, cy;
"""

DOWNGRADE = """
DROP TRIGGER IF EXISTS customer_tile_cells_ins ON customer;
DROP TRIGGER IF EXISTS customer_tile_cells_del ON customer;
DROP TRIGGER IF EXISTS customer_tile_cells_upd ON customer;
DROP TRIGGER IF EXISTS customer_tile_cells_trunc ON customer;
DROP FUNCTION IF EXISTS crm_tile_cells_insert();
DROP FUNCTION IF EXISTS crm_tile_cells_delete();
DROP FUNCTION IF EXISTS crm_tile_cells_update();
DROP FUNCTION IF EXISTS crm_tile_cells_truncate();
DROP TABLE IF EXISTS customer_tile_cell;
DROP MATERIALIZED VIEW IF EXISTS mv_density_territory_revenue;
DROP MATERIALIZED VIEW IF EXISTS mv_density_region_revenue;
DROP MATERIALIZED VIEW IF EXISTS mv_density_customer;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
