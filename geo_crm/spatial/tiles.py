"""Mapbox vector tiles of customers (`ST_AsMVT` / `ST_AsMVTGeom` on `ST_TileEnvelope`).

Layer `customers`, extent 4096, buffer 64, Web Mercator (EPSG:3857) tiles in the XYZ
scheme. Below `AGGREGATE_BELOW_Z` customers are aggregated on the server into grid cells
(EPSG:3857 grid aligned with the tiles, cell = tile width / `CELLS_PER_TILE`), one point per
non-empty cell at the mean position of its customers, with property `count`. From that
zoom up, one point per customer with `id`, `name`, `level`, `status`, `city`, `count`=1.

Every tile is computed from the caller's visible customers (`Scope`) and the CRM filters,
so a tile never shows what the caller may not see.

Aggregated tiles of everything (a caller who sees every customer, no filter) are grouped
from `customer_tile_cell` (migration 0014): customers and the sums of their Web Mercator
coordinates per cell of the zoom-10 grid, kept exact by triggers on `customer`. The grid
of zoom z < 11 is the zoom-10 grid coarsened by 2^(10 - z) in each direction, so the
counts and mean positions are those of the scan over the customers (a customer on a tile
edge is in the one tile whose half-open cell range holds it). Any other caller or filter
scans the customers.
"""
from __future__ import annotations

from sqlalchemy import func, literal_column, select, text
from sqlalchemy.orm import Session

from geo_crm.customers.filters import CustomerFilter, FilterError, apply
from geo_crm.models import Customer
from geo_crm.security.scope import Scope

LAYER = "customers"
EXTENT = 4096
BUFFER = 64
AGGREGATE_BELOW_Z = 11
CELLS_PER_TILE = 64
MAX_Z = 22
WEB_MERCATOR_WIDTH_M = 2 * 20037508.342789244
EARTH_R = 6378137.0


def check_tile(z: int, x: int, y: int) -> None:
    if not 0 <= z <= MAX_Z:
        raise FilterError("z", f"zoom must be 0..{MAX_Z}")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise FilterError("x/y", f"tile column and row must be 0..{n - 1} at zoom {z}")


def cell_size_m(z: int) -> float:
    """Aggregation grid cell (EPSG:3857 metres) at zoom z."""
    return WEB_MERCATOR_WIDTH_M / (1 << z) / CELLS_PER_TILE


GRID_Z = 10   # customer_tile_cell holds the cells of this zoom
assert AGGREGATE_BELOW_Z == GRID_Z + 1


def _unfiltered(f: CustomerFilter | None) -> bool:
    return f is None or not f.model_dump(exclude_none=True)


def _grid_tile(session: Session, z: int, x: int, y: int) -> bytes:
    """An aggregated tile of every located customer, from the zoom-10 cell table."""
    k = GRID_Z - z
    half = (1 << z) * CELLS_PER_TILE // 2          # cell index of the origin at zoom z
    x0 = x * CELLS_PER_TILE - half                 # first cell column of the tile (zoom z)
    y0 = half - (y + 1) * CELLS_PER_TILE           # first cell row (y grows northwards)
    sql = text(f"""
    SELECT ST_AsMVT(mvt.*, :layer, {EXTENT}, 'geom') FROM (
      SELECT ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(x, y), 3857), ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true)
             AS geom, count FROM (
        SELECT (sum(sum_mx) / sum(customers))::float8 AS x, (sum(sum_my) / sum(customers))::float8 AS y,
               sum(customers)::bigint AS count
          FROM customer_tile_cell
         WHERE cx BETWEEN :cx0 AND :cx1 AND cy BETWEEN :cy0 AND :cy1
         GROUP BY cx >> {k}, cy >> {k}) cells) mvt
     WHERE geom IS NOT NULL""")
    data = session.execute(sql, {"layer": LAYER, "z": z, "x": x, "y": y,
                                 "cx0": x0 << k, "cx1": ((x0 + CELLS_PER_TILE) << k) - 1,
                                 "cy0": y0 << k, "cy1": ((y0 + CELLS_PER_TILE) << k) - 1}).scalar()
    return bytes(data or b"")


def customer_tile(session: Session, scope: Scope, z: int, x: int, y: int,
                  f: CustomerFilter | None = None) -> bytes:
    """The MVT bytes of one tile (b'' when it has no features)."""
    check_tile(z, x, y)
    if z < AGGREGATE_BELOW_Z and scope.sees_everything and _unfiltered(f):
        return _grid_tile(session, z, x, y)
    env = func.ST_TileEnvelope(z, x, y)
    # customers whose point is in the tile or its buffer: a 4326 box for the GiST index
    margin = func.ST_TileEnvelope(z, x, y, literal_column("ST_MakeEnvelope(-20037508.342789244, "
                                  "-20037508.342789244, 20037508.342789244, 20037508.342789244, 3857)"),
                                  BUFFER / EXTENT)
    box4326 = func.ST_Transform(margin, 4326)
    g3857 = func.ST_Transform(Customer.geom, 3857)
    if z < AGGREGATE_BELOW_Z:
        # aggregates: only points inside the tile itself, so no customer counts twice.
        # Web Mercator by formula (x = R·λ, y = R·ln tan(π/4 + φ/2)): exact for the sphere
        # EPSG:3857 uses, and much cheaper than ST_Transform on hundreds of thousands of rows.
        size = cell_size_m(z)
        mx = (func.ST_X(Customer.geom) * (WEB_MERCATOR_WIDTH_M / 360.0)).label("mx")
        my = (func.ln(func.tan(func.radians(45.0 + func.ST_Y(Customer.geom) / 2.0))) * EARTH_R).label("my")
        inner = (apply(select(mx, my), f, scope)
                 .where(Customer.geom.op("&&")(func.ST_Transform(env, 4326)))).subquery("c")
        cx, cy = func.floor(inner.c.mx / size), func.floor(inner.c.my / size)
        cells = (select(func.count().label("count"), func.avg(inner.c.mx).label("x"), func.avg(inner.c.my).label("y"))
                 .group_by(cx, cy)).subquery("cells")
        mvt_rows = select(
            func.ST_AsMVTGeom(func.ST_SetSRID(func.ST_MakePoint(cells.c.x, cells.c.y), 3857), env, EXTENT, BUFFER,
                              True).label("geom"),
            cells.c.count.label("count")).subquery("mvt")
    else:
        inner = (apply(select(Customer.id, Customer.name, Customer.level, Customer.status, Customer.city,
                              g3857.label("g")), f, scope)
                 .where(Customer.geom.op("&&")(box4326))).subquery("c")
        mvt_rows = select(
            func.ST_AsMVTGeom(inner.c.g, env, EXTENT, BUFFER, True).label("geom"),
            inner.c.id, inner.c.name, inner.c.level, inner.c.status, inner.c.city,
            literal_column("1").label("count")).subquery("mvt")
    stmt = select(func.ST_AsMVT(literal_column("mvt.*"), LAYER, EXTENT, "geom")).select_from(mvt_rows) \
        .where(mvt_rows.c.geom.is_not(None))
    data = session.execute(stmt).scalar()
    return bytes(data or b"")
