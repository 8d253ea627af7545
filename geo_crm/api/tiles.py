"""Mapbox vector tiles of customers: `/api/v1/tiles/customers/{z}/{x}/{y}.mvt`.

Tiles carry the caller's visibility and the customer filters (query string). They are
cached in-process per (scope.cache_key, filters, z, x, y) with an ETag; responses are
`private` unless the caller sees everything. An empty tile answers 204."""
from __future__ import annotations

from flask import Response, request

from geo_crm.api.framework import ApiError, operation
from geo_crm.api.spatial import aggregate_cache, filter_of, run
from geo_crm.customers.filters import CustomerFilter
from geo_crm.http import current_scope, read_db
from geo_crm.spatial.cache import etag_of, filter_key
from geo_crm.spatial.tiles import customer_tile

MVT = "application/vnd.mapbox-vector-tile"
TILE_MAX_AGE_S = 60


@operation("/tiles/customers/<int:z>/<int:x>/<int:y>.mvt", "GET", summary="Customer vector tile (MVT)",
           tags=["spatial"], permission="map.read", query=CustomerFilter, content_types=[MVT],
           responses={204: "empty tile", 304: "not modified", 400: "invalid z/x/y"})
def customer_tile_view(z: int, x: int, y: int, query: CustomerFilter):
    """Layer `customers`. Below zoom 11: grid aggregates with `count`; from 11: one point
    per customer with id, name, level, status, city."""
    if not (0 <= z <= 22 and 0 <= x < (1 << z) and 0 <= y < (1 << z)):
        raise ApiError(400, "bad_tile", f"no tile {z}/{x}/{y}")
    scope, f = current_scope(), filter_of(query)
    key = ("tile", scope.cache_key, scope.role, filter_key(f), z, x, y)
    cache = aggregate_cache()
    # single-flight: a map opening fires many tile requests; a tile asked for twice at
    # once (two users, or a retry) is computed once
    data = cache.get_or_compute(key, lambda: run(customer_tile, read_db(), scope, z, x, y, f))
    cc = f"{'public' if scope.cache_key == 'all' else 'private'}, max-age={TILE_MAX_AGE_S}"
    if not data:
        resp = Response(status=204, mimetype=MVT)
    else:
        tag = etag_of(data)
        if request.if_none_match.contains(tag.strip('"')):
            resp = Response(status=304)
        else:
            resp = Response(data, mimetype=MVT)
        resp.headers["ETag"] = tag
    resp.headers["Cache-Control"] = cc
    resp.headers["Vary"] = "Authorization, Cookie"
    return resp
