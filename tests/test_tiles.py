"""Vector tiles: decoded with mapbox-vector-tile and compared with the customers inside the
tile computed with pyproj (Web Mercator) on the same rows; visibility, filters, caching."""
from __future__ import annotations

import math

import mapbox_vector_tile
import pytest
from pyproj import Transformer
from sqlalchemy import text

from tests.test_spatial import rows, visible_ids

TO_3857 = Transformer.from_crs(4326, 3857, always_xy=True)
HALF = 20037508.342789244


def tile_of(lon, lat, z):
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def bounds(z, x, y, margin=0.0):
    w = 2 * HALF / (1 << z)
    minx, maxy = -HALF + x * w, HALF - y * w
    return minx - margin * w, maxy - w - margin * w, minx + w + margin * w, maxy + margin * w


def inside(conn, z, x, y, margin=0.0, where="TRUE", **p):
    b = bounds(z, x, y, margin)
    out = {}
    for c in rows(conn, f"SELECT id, level, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM customer "
                        f"WHERE geom IS NOT NULL AND {where}", **p):
        mx, my = TO_3857.transform(c["lon"], c["lat"])
        if b[0] <= mx <= b[2] and b[1] <= my <= b[3]:
            out[c["id"]] = c
    return out


def decode(resp):
    assert resp.status_code == 200, resp.status_code
    assert resp.mimetype == "application/vnd.mapbox-vector-tile"
    return mapbox_vector_tile.decode(resp.data)["customers"]["features"]


def busiest_tile(conn, z):
    c = rows(conn, "SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat FROM customer WHERE city ILIKE 'Helsinki%' "
                   "AND geom IS NOT NULL LIMIT 1")[0]
    return tile_of(c["lon"], c["lat"], z)


def test_zoomed_in_tile_has_the_customers_inside(api, connection):
    z = 12
    x, y = busiest_tile(connection, z)
    feats = decode(api("admin").get(f"/api/v1/tiles/customers/{z}/{x}/{y}.mvt"))
    ids = {f["properties"]["id"] for f in feats}
    strictly = set(inside(connection, z, x, y))
    with_buffer = set(inside(connection, z, x, y, margin=64 / 4096))
    assert strictly and strictly <= ids <= with_buffer
    f = feats[0]["properties"]
    assert {"id", "name", "level", "status", "count"} <= set(f) and f["count"] == 1


def test_low_zoom_tile_aggregates_counts(api, connection):
    for z in (5, 8):
        x, y = busiest_tile(connection, z)
        feats = decode(api("admin").get(f"/api/v1/tiles/customers/{z}/{x}/{y}.mvt"))
        assert all("id" not in f["properties"] for f in feats)
        assert sum(f["properties"]["count"] for f in feats) == len(inside(connection, z, x, y))
        assert len(feats) < len(inside(connection, z, x, y))


def test_tile_respects_scope_and_filters(api, connection):
    vis = visible_ids(connection, "regional")
    z = 6
    for z, (x, y) in [(6, busiest_tile(connection, 6)), (12, busiest_tile(connection, 12))]:
        r = api("regional").get(f"/api/v1/tiles/customers/{z}/{x}/{y}.mvt")
        assert r.headers["Cache-Control"].startswith("private")
        truth = {i for i in inside(connection, z, x, y, margin=0 if z < 11 else 64 / 4096) if i in vis}
        if r.status_code == 204:
            assert not truth
            continue
        feats = decode(r)
        if z < 11:
            assert sum(f["properties"]["count"] for f in feats) == len(truth)
        else:
            assert {f["properties"]["id"] for f in feats} == truth
    x, y = busiest_tile(connection, 12)
    feats = decode(api("admin").get(f"/api/v1/tiles/customers/12/{x}/{y}.mvt?level=key,major"))
    assert feats and {f["properties"]["level"] for f in feats} <= {"key", "major"}
    truth = set(inside(connection, 12, x, y, margin=64 / 4096, where="level IN ('key', 'major')"))
    assert {f["properties"]["id"] for f in feats} == truth


def test_tile_cache_etag_and_empty_and_invalid(api, connection):
    x, y = busiest_tile(connection, 10)
    a = api("admin").get(f"/api/v1/tiles/customers/10/{x}/{y}.mvt")
    assert a.status_code == 200 and a.headers["ETag"] and a.headers["Cache-Control"].startswith("public")
    b = api("admin").get(f"/api/v1/tiles/customers/10/{x}/{y}.mvt", headers={"If-None-Match": a.headers["ETag"]})
    assert b.status_code == 304
    empty = api("admin").get("/api/v1/tiles/customers/10/0/0.mvt")
    assert empty.status_code == 204 and empty.data == b""
    assert api("admin").get("/api/v1/tiles/customers/3/8/0.mvt").status_code == 400
    assert api("admin").get("/api/v1/tiles/customers/23/0/0.mvt").status_code == 400
    assert api("admin").get("/api/v1/tiles/customers/a/0/0.mvt").status_code == 404
    assert api("admin").get("/api/v1/tiles/customers/3/1/1.mvt?level=gold").status_code == 422
    assert api("customer").get("/api/v1/tiles/customers/3/4/2.mvt").status_code == 403


def test_tile_cache_is_per_scope(api, connection):
    """The admin's cached tile must never be served to the regional manager."""
    x, y = busiest_tile(connection, 12)
    adm = {f["properties"]["id"] for f in decode(api("admin").get(f"/api/v1/tiles/customers/12/{x}/{y}.mvt"))}
    r = api("regional").get(f"/api/v1/tiles/customers/12/{x}/{y}.mvt")
    reg = set() if r.status_code == 204 else {f["properties"]["id"] for f in decode(r)}
    assert reg <= visible_ids(connection, "regional") and reg != adm


# -- low-zoom tiles from the live zoom-10 cell table (customer_tile_cell) ----------------------
CELL10 = 2 * HALF / 1024 / 64


def grid_truth(conn, z, x, y):
    """Python aggregation of a tile at zoom z < 11: customers per grid cell (cell = tile
    width / 64, EPSG:3857) whose cell lies in the tile, at their mean position, in tile
    coordinates (extent 4096, y down)."""
    w = 2 * HALF / (1 << z)
    size = w / 64
    minx, maxy = -HALF + x * w, HALF - y * w
    cells: dict = {}
    for c in rows(conn, "SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat FROM customer WHERE geom IS NOT NULL"):
        mx, my = TO_3857.transform(c["lon"], c["lat"])
        cx, cy = math.floor(mx / size), math.floor(my / size)
        half = 32 << z                      # cells from the origin to the west/north edge
        if not (x * 64 - half <= cx < x * 64 - half + 64 and half - (y + 1) * 64 <= cy < half - y * 64):
            continue
        s = cells.setdefault((cx, cy), [0, 0.0, 0.0])
        s[0] += 1
        s[1] += mx
        s[2] += my
    return [(n, (sx / n - minx) / w * 4096, (maxy - sy / n) / w * 4096) for n, sx, sy in cells.values()]


def decoded_points(resp):
    feats = mapbox_vector_tile.decode(resp.data, default_options={"y_coord_down": True})["customers"]["features"]
    return [(f["properties"]["count"], *f["geometry"]["coordinates"]) for f in feats]


@pytest.mark.parametrize("z", [3, 6, 8, 10])
def test_low_zoom_tile_of_everything_matches_a_python_aggregation(api, connection, z):
    x, y = busiest_tile(connection, z)
    got = sorted(decoded_points(api("admin").get(f"/api/v1/tiles/customers/{z}/{x}/{y}.mvt")))
    truth = sorted(grid_truth(connection, z, x, y))
    assert sum(n for n, *_ in got) == sum(n for n, *_ in truth) == len(inside(connection, z, x, y))
    assert len(got) == len(truth)
    by_count: dict = {}
    for n, px, py in truth:
        by_count.setdefault(n, []).append((px, py))
    for n, gx, gy in got:                       # each feature is one cell's mean position (±1 unit: rounding)
        cand = by_count[n]
        best = min(cand, key=lambda p: abs(p[0] - gx) + abs(p[1] - gy))
        assert abs(best[0] - gx) <= 1 and abs(best[1] - gy) <= 1, (n, gx, gy, best)
        cand.remove(best)
    # the executive (sees everything) gets the same tile; a filter takes the scan path with the same answer
    assert sorted(decoded_points(api("executive").get(f"/api/v1/tiles/customers/{z}/{x}/{y}.mvt"))) == got
    every_level = "key,major,ordinary,small"
    scanned = decoded_points(api("admin").get(f"/api/v1/tiles/customers/{z}/{x}/{y}.mvt?level={every_level}"))
    n_located_with_level = sum(n for n, *_ in scanned)
    assert n_located_with_level == sum(n for n, *_ in got)


def _grid_recomputed(conn):
    return rows(conn, f"""
        SELECT cx, cy, count(*) AS customers, sum(mx::numeric) AS sum_mx, sum(my::numeric) AS sum_my FROM (
          SELECT floor(mx / {CELL10!r})::int AS cx, floor(my / {CELL10!r})::int AS cy, mx, my FROM (
            SELECT ST_X(geom) * (2 * 20037508.342789244 / 360.0) AS mx,
                   ln(tan(radians(45.0 + ST_Y(geom) / 2.0))) * 6378137.0 AS my
              FROM customer WHERE geom IS NOT NULL) p) q
        GROUP BY cx, cy ORDER BY cx, cy""")


def _grid(conn):
    return rows(conn, "SELECT cx, cy, customers, sum_mx, sum_my FROM customer_tile_cell ORDER BY cx, cy")


def test_tile_cell_table_follows_every_customer_write(api, app, connection):
    assert _grid(connection) == _grid_recomputed(connection)
    z = 6
    x, y = busiest_tile(connection, z)
    n0 = sum(n for n, *_ in decoded_points(api("admin").get(f"/api/v1/tiles/customers/{z}/{x}/{y}.mvt")))
    # insert (one statement, two rows: one located, one without a location)
    src = rows(connection, "SELECT id FROM customer WHERE city ILIKE 'Helsinki%' AND geom IS NOT NULL LIMIT 1")[0]["id"]
    connection.execute(text("""
        INSERT INTO customer (code, name, geom, geocode_quality)
        SELECT 'TILE-' || g, 'Tile test ' || g, CASE WHEN g = 1 THEN c.geom END,
               CASE WHEN g = 1 THEN c.geocode_quality ELSE 'none' END
          FROM customer c, generate_series(1, 2) g WHERE c.id = :i"""), {"i": src})
    assert _grid(connection) == _grid_recomputed(connection)
    # move many (a bulk update), move one out of Finland, remove a location, then delete
    connection.execute(text("UPDATE customer SET geom = ST_Translate(geom, 0.05, 0.02) WHERE id % 7 = 0"))
    connection.execute(text("UPDATE customer SET geom = ST_SetSRID(ST_MakePoint(-70, -30), 4326) WHERE id % 11 = 1"))
    connection.execute(text("UPDATE customer SET geom = NULL, geocode_quality = 'none' WHERE id % 13 = 2"))
    connection.execute(text("UPDATE customer SET name = name || ' x' WHERE id % 5 = 0"))   # no move: no change
    assert _grid(connection) == _grid_recomputed(connection)
    connection.execute(text("DELETE FROM customer WHERE code LIKE 'TILE-%'"))
    assert _grid(connection) == _grid_recomputed(connection)
    assert rows(connection, "SELECT count(*) AS n FROM customer_tile_cell WHERE customers <= 0")[0]["n"] == 0
    # the tile shows the writes at once (the query reads the table; the app's cache is cleared)
    app.extensions["geo_crm.spatial_cache"].clear()
    n1 = sum(n for n, *_ in decoded_points(api("admin").get(f"/api/v1/tiles/customers/{z}/{x}/{y}.mvt")))
    assert n1 == len(inside(connection, z, x, y)) != n0
