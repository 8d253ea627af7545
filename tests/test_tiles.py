"""Vector tiles: decoded with mapbox-vector-tile and compared with the customers inside the
tile computed with pyproj (Web Mercator) on the same rows; visibility, filters, caching."""
from __future__ import annotations

import math

import mapbox_vector_tile
import pytest
from pyproj import Transformer

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
