"""Spatial API: areas of a customer, nearest sites, radius search, density statistics and
spatial patterns. Parsing and rendering only; the rules live in geo_crm.spatial."""
from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Literal

from flask import Response, current_app, request
from pydantic import Field, ValidationError, model_validator

from geo_crm.api.framework import ApiError, StrictModel, geojson_response, operation, validation_error
from geo_crm.customers.filters import CustomerFilter, FilterError, parse_area_geojson, parse_bbox
from geo_crm.http import current_scope, read_db
from geo_crm.spatial import density as dens
from geo_crm.spatial import patterns, queries
from geo_crm.spatial.cache import TTLCache, etag_of, filter_key

CACHE_MAX_AGE_S = 60


def aggregate_cache() -> TTLCache:
    """The app's cache of density/hex aggregates (per app, so tests stay isolated)."""
    ext = current_app.extensions
    if "geo_crm.spatial_cache" not in ext:
        ext["geo_crm.spatial_cache"] = TTLCache(maxsize=256, ttl_s=CACHE_MAX_AGE_S)
    return ext["geo_crm.spatial_cache"]


def filter_of(params: CustomerFilter, drop: frozenset[str] = frozenset()) -> CustomerFilter:
    """The plain CustomerFilter inside a query model (re-validated: 422 on bad values)."""
    try:
        return CustomerFilter.model_validate(params.model_dump(
            include=set(CustomerFilter.model_fields) - drop, exclude_none=True))
    except ValidationError as e:
        raise ApiError(422, "validation", "invalid filters",
                       [{"field": ".".join(map(str, d["loc"])) or "filter", "problem": d["msg"]}
                        for d in e.errors(include_url=False, include_input=False)])


def run(fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except FilterError as e:
        raise validation_error(e.field, e.problem)


def cached_body(key: tuple, compute, mimetype: str, use_cache: bool = True) -> Response:
    """Serve bytes from the aggregate cache with an ETag; 304 on If-None-Match. Private
    caching unless the caller's scope sees everything (then shared caches may keep it)."""
    scope = current_scope()
    cache = aggregate_cache()
    body = cache.get_or_compute(key, compute) if use_cache else compute()
    tag = etag_of(body)
    cc = f"{'public' if scope.cache_key == 'all' else 'private'}, max-age={CACHE_MAX_AGE_S}"
    if request.if_none_match.contains(tag.strip('"')):
        resp = Response(status=304)
    else:
        resp = Response(body, mimetype=mimetype)
    resp.headers["ETag"] = tag
    resp.headers["Cache-Control"] = cc
    resp.headers["Vary"] = "Authorization, Cookie"
    return resp


# -- areas / nearest / radius -------------------------------------------------------------
@operation("/customers/<int:customer_id>/areas", "GET", summary="Region, territories, service branch, nearest "
           "branch and partner of a customer", tags=["spatial"], permission="customer.read",
           responses={404: "no such visible customer"})
def customer_areas(customer_id: int):
    """Distances in metres on the WGS84 spheroid. Territories listed are those the caller may see."""
    return run(queries.customer_areas, read_db(), current_scope(), customer_id)


class NearestParams(StrictModel):
    kind: Literal["branch", "partner"] = "branch"
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    customer_id: int | None = None
    n: Annotated[int, Field(ge=1, le=queries.MAX_NEAREST)] = 5

    @model_validator(mode="after")
    def _origin(self):
        if (self.lon is None) != (self.lat is None):
            raise ValueError("lon and lat go together")
        if (self.lon is None) == (self.customer_id is None):
            raise ValueError("give either lon and lat, or customer_id")
        return self


@operation("/nearest", "GET", summary="Nearest N branches or partners (KNN on the spatial index)",
           tags=["spatial"], query=NearestParams, responses={404: "customer not visible", 422: "bad origin"})
def nearest(query: NearestParams):
    """`distance_m`: metres on the spheroid, nearest first."""
    scope, s = current_scope(), read_db()
    if query.customer_id is not None:
        lon, lat = run(queries.customer_lonlat, s, scope, query.customer_id)
    else:
        lon, lat = query.lon, query.lat
    items = run(queries.nearest, s, scope, query.kind, lon, lat, query.n)
    return {"origin": {"lon": lon, "lat": lat}, "kind": query.kind, "items": items}


class RadiusParams(CustomerFilter):
    customer_id: int | None = None
    center_branch_id: Annotated[int | None, Field(description="centre on this branch")] = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    radius_m: Annotated[float, Field(gt=0, le=1_000_000)] | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0

    @model_validator(mode="before")
    @classmethod
    def _branch_alias(cls, data):
        # `branch_id` names the centre here (the service-branch filter is `service_branch_id`)
        if isinstance(data, dict) and "branch_id" in data:
            data = dict(data)
            data["center_branch_id"] = data.pop("branch_id")
        return data

    @model_validator(mode="after")
    def _check(self):  # overrides CustomerFilter's near/radius pairing
        origins = sum(x is not None for x in (self.customer_id, self.center_branch_id, self.lon))
        if (self.lon is None) != (self.lat is None):
            raise ValueError("lon and lat go together")
        if origins != 1:
            raise ValueError("give exactly one centre: customer_id, branch_id, or lon and lat")
        if self.radius_m is None:
            raise ValueError("radius_m is required")
        if self.near:
            raise ValueError("use lon/lat, customer_id or branch_id instead of near")
        if self.bbox:
            parse_bbox(self.bbox)
        if self.within:
            parse_area_geojson(self.within)
        return self


@operation("/customers/within-radius", "GET", summary="Customers within R metres of a point, customer or branch, "
           "nearest first", tags=["spatial"], permission="customer.read", query=RadiusParams,
           responses={404: "centre not visible", 422: "invalid parameters"})
def within_radius(query: RadiusParams):
    """All customer filters apply. `distance_m` in metres on the spheroid; the centre
    customer itself is included (distance 0) when it matches."""
    scope, s = current_scope(), read_db()
    if query.customer_id is not None:
        lon, lat = run(queries.customer_lonlat, s, scope, query.customer_id)
    elif query.center_branch_id is not None:
        lon, lat = run(queries.branch_lonlat, s, scope, query.center_branch_id)
    else:
        lon, lat = query.lon, query.lat
    f = filter_of(query, frozenset({"radius_m", "near"}))
    res = run(queries.customers_within_radius, s, scope, lon, lat, query.radius_m, f, query.limit, query.offset)
    return geojson_response({
        "type": "FeatureCollection", "center": {"lon": lon, "lat": lat}, "radius_m": query.radius_m,
        "numberMatched": res.total, "numberReturned": len(res.items),
        "features": [{"type": "Feature", "id": c["id"],
                      "geometry": {"type": "Point", "coordinates": [c["lon"], c["lat"]]},
                      "properties": {k: v for k, v in c.items() if k not in ("lon", "lat")}} for c in res.items]})


# -- density and patterns ------------------------------------------------------------------
class DensityParams(CustomerFilter):
    by: Literal["region", "territory", "hex"] = "region"
    hex_size_m: Annotated[float, Field(ge=100, le=200_000, description="hexagon edge, metres (EPSG:3067)")] = 5000
    as_of: Annotated[date | None, Field(description="revenue window ends here (default today)")] = None
    simplify: bool = True
    revenue: Annotated[bool, Field(description="include revenue (false: faster, revenue null)")] = True


@operation("/stats/density", "GET", summary="Customer density per region, territory or hex cell (GeoJSON)",
           tags=["spatial"], permission="map.read", query=DensityParams, content_types=["application/geo+json"],
           responses={304: "not modified (ETag)", 422: "invalid filter"})
def density(query: DensityParams):
    """count, area_km2 (geodesic), per_km2, revenue (12 months to as_of, non-cancelled
    orders), population and per_10k_inhabitants (GeoNames). Counts are live; the
    collection's `revenue_source` says where revenue comes from: `snapshot` (the nightly
    density snapshot taken on as_of, exact at `revenue_refreshed_at`), `report_view` (the
    reports' 12-month view, refreshed at `revenue_refreshed_at`, plus live drafts) or
    `orders` (summed live); null when revenue is left out. Hex cells are cached per
    visibility scope, filters and parameters; every response has an ETag."""
    scope, f = current_scope(), filter_of(query)
    as_of = query.as_of or date.today()
    key = ("density", scope.cache_key, scope.role if scope.cache_key != "all" else "", filter_key(f),
           query.by, query.hex_size_m, as_of.isoformat(), query.simplify, query.revenue)

    def compute():
        fc = run(dens.density, read_db(), scope, query.by, f, query.hex_size_m, as_of, query.simplify,
                 query.revenue)
        return json.dumps(fc, separators=(",", ":")).encode()
    if query.by != "hex":
        # region/territory figures come from B-tree lookups (fast): always fresh, ETag only
        return cached_body(key, compute, "application/geo+json", use_cache=False)
    return cached_body(key, compute, "application/geo+json")


class HotSpotParams(CustomerFilter):
    hex_size_m: Annotated[float, Field(ge=1000, le=200_000)] = 10_000


@operation("/stats/hotspots", "GET", summary="Getis-Ord Gi* hot and cold spots of customers on the hex grid",
           tags=["spatial"], permission="map.read", query=HotSpotParams, content_types=["application/geo+json"])
def hotspots(query: HotSpotParams):
    """Cells with z, p and class hot_99/95/90, cold_99/95/90 or ns (empty, non-significant
    cells are left out)."""
    scope, f = current_scope(), filter_of(query)
    key = ("hotspots", scope.cache_key, scope.role, filter_key(f), query.hex_size_m)

    def compute():
        fc = run(patterns.hot_spots, read_db(), scope, f, query.hex_size_m)
        return json.dumps(fc, separators=(",", ":")).encode()
    return cached_body(key, compute, "application/geo+json")


class UnderservedParams(CustomerFilter):
    by: Literal["region", "hex"] = "region"
    hex_size_m: Annotated[float, Field(ge=1000, le=200_000)] = 10_000
    max_per_10k: Annotated[float, Field(ge=0)] | None = None
    min_population: Annotated[int, Field(ge=0)] = 1000


@operation("/stats/underserved", "GET", summary="Areas with inhabitants but few customers per 10k",
           tags=["spatial"], permission="map.read", query=UnderservedParams, content_types=["application/geo+json"])
def underserved(query: UnderservedParams):
    """Default threshold: half the overall visible penetration. `gap` = expected − actual customers."""
    fc = run(patterns.underserved_areas, read_db(), current_scope(), filter_of(query), query.by,
             query.hex_size_m, query.max_per_10k, query.min_population)
    return geojson_response(fc)


class FarParams(CustomerFilter):
    min_km: Annotated[float, Field(gt=0, le=2000)] = 50
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


@operation("/stats/far-customers", "GET", summary="Customers farther than min_km from any branch or partner",
           tags=["spatial"], permission="map.read", query=FarParams)
def far_customers(query: FarParams):
    return run(patterns.far_customers, read_db(), current_scope(), filter_of(query), query.min_km, query.limit)


class BranchDistParams(CustomerFilter):
    pass


@operation("/stats/branch-distances", "GET", summary="Distance from each branch to the customers it serves",
           tags=["spatial"], permission="map.read", query=BranchDistParams)
def branch_distances(query: BranchDistParams):
    """count, median_km, p90_km, max_km per branch (visible customers only)."""
    return {"items": run(patterns.branch_distance_table, read_db(), current_scope(), filter_of(query))}
