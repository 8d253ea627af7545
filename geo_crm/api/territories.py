"""Territory planning API: CRUD, build from regions, split, merge, users, overlap/gap and
balance reports, suggested alignment, branch service areas. Domain: geo_crm.territories."""
from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from flask import Response
from pydantic import Field

from geo_crm.api.framework import (ApiError, StrictModel, geojson_response, if_match_version, operation,
                                   validation_error, with_etag)
from geo_crm.customers.filters import FilterError
from geo_crm.http import current_scope, db, read_db
from geo_crm.territories import reports, service, service_areas, suggest

Color = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]


def _run(fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except FilterError as e:
        raise validation_error(e.field, e.problem)
    except service.OverlapError as e:
        raise ApiError(409, "overlap", str(e) + "; resend with allow_overlap=true to save anyway",
                       [{"field": "geometry", "problem": f"overlaps {o['name']} by {o['overlap_km2']} km²",
                         "territory_id": o["id"], "overlap_km2": o["overlap_km2"]} for o in e.overlaps])


def _feature(t, status=200) -> Response:
    resp = geojson_response(service.to_feature(db(), t), status)
    return with_etag(resp, t.version)


class TerritoryCreate(StrictModel):
    name: Name
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon, EPSG:4326")
    description: Annotated[str, Field(max_length=5000)] = ""
    color: Color = "#3388ff"
    allow_overlap: bool = False


class TerritoryPatch(StrictModel):
    name: Name | None = None
    geometry: dict[str, Any] | None = None
    description: Annotated[str, Field(max_length=5000)] | None = None
    color: Color | None = None
    allow_overlap: bool = False
    version: Annotated[int, Field(ge=1)] | None = None


class FromRegions(StrictModel):
    name: Name
    region_ids: Annotated[list[int], Field(min_length=1, max_length=500)]
    description: Annotated[str, Field(max_length=5000)] = ""
    color: Color = "#3388ff"
    allow_overlap: bool = False


class SplitBody(StrictModel):
    line: dict[str, Any] = Field(description="GeoJSON LineString crossing the territory")
    names: Annotated[list[Name], Field(min_length=2, max_length=2)] | None = None
    version: Annotated[int, Field(ge=1)] | None = None


class MergeBody(StrictModel):
    territory_ids: Annotated[list[int], Field(min_length=2, max_length=50)]
    name: Name | None = None


class UsersBody(StrictModel):
    user_ids: Annotated[list[int], Field(max_length=500)]


class SuggestParams(StrictModel):
    k: Annotated[int, Field(ge=2, le=50)] = 5
    metric: Literal["customers", "revenue", "workload"] = "customers"
    hex_size_m: Annotated[float, Field(ge=5000, le=100_000)] = 10_000
    as_of: date | None = None


class AcceptBody(StrictModel):
    type: Literal["FeatureCollection"]
    features: Annotated[list[dict[str, Any]], Field(min_length=2, max_length=50)]
    properties: dict[str, Any] = {}


class DrawnArea(StrictModel):
    geometry: dict[str, Any]


@operation("/territories", "GET", summary="Territories the caller may see (GeoJSON)", tags=["territories"],
           permission="territory.read", content_types=["application/geo+json"])
def list_territories():
    return geojson_response(service.list_features(read_db(), current_scope()))


@operation("/territories", "POST", summary="Create a territory from a drawn polygon", tags=["territories"],
           permission="territory.write", body=TerritoryCreate,
           responses={201: "created", 409: "overlaps another territory"},
           content_types=["application/geo+json"])
def create_territory(body: TerritoryCreate):
    t = _run(service.create, db(), current_scope(), name=body.name, geometry=body.geometry,
             description=body.description, color=body.color, allow_overlap=body.allow_overlap)
    db().commit()
    return _feature(t, 201)


@operation("/territories/<int:territory_id>", "GET", summary="One territory (ETag = version)", tags=["territories"],
           permission="territory.read", content_types=["application/geo+json"])
def get_territory(territory_id: int):
    return _feature(service.get(read_db(), current_scope(), territory_id))


@operation("/territories/<int:territory_id>", "PATCH", summary="Change a territory (If-Match or version)",
           tags=["territories"], permission="territory.write", body=TerritoryPatch,
           content_types=["application/geo+json"],
           responses={409: "overlap or version conflict", 412: "If-Match mismatch"})
def patch_territory(territory_id: int, body: TerritoryPatch):
    expected = if_match_version() or body.version
    t = _run(service.update, db(), current_scope(), territory_id, expected_version=expected,
             allow_overlap=body.allow_overlap, name=body.name, geometry=body.geometry,
             description=body.description, color=body.color)
    db().commit()
    return _feature(t)


@operation("/territories/<int:territory_id>", "DELETE", summary="Delete a territory", tags=["territories"],
           permission="territory.write")
def delete_territory(territory_id: int):
    _run(service.remove, db(), current_scope(), territory_id, if_match_version())
    db().commit()
    return Response(status=204)


@operation("/territories/from-regions", "POST", summary="Build a territory from administrative regions",
           tags=["territories"], permission="territory.write", body=FromRegions, responses={201: "created"},
           content_types=["application/geo+json"])
def from_regions(body: FromRegions):
    t = _run(service.from_regions, db(), current_scope(), name=body.name, region_ids=body.region_ids,
             color=body.color, description=body.description, allow_overlap=body.allow_overlap)
    db().commit()
    return _feature(t, 201)


@operation("/territories/<int:territory_id>/split", "POST", summary="Split a territory by a line (ST_Split)",
           tags=["territories"], permission="territory.write", body=SplitBody, content_types=["application/geo+json"])
def split_territory(territory_id: int, body: SplitBody):
    ts = _run(service.split, db(), current_scope(), territory_id, body.line,
              tuple(body.names) if body.names else None, if_match_version() or body.version)
    db().commit()
    return geojson_response({"type": "FeatureCollection", "features": [service.to_feature(db(), t) for t in ts]})


@operation("/territories/merge", "POST", summary="Merge territories (ST_Union) into the first",
           tags=["territories"], permission="territory.write", body=MergeBody, content_types=["application/geo+json"])
def merge_territories(body: MergeBody):
    t = _run(service.merge, db(), current_scope(), body.territory_ids, body.name)
    db().commit()
    return _feature(t)


@operation("/territories/<int:territory_id>/users", "PUT", summary="Set the users assigned to a territory",
           tags=["territories"], permission="territory.write", body=UsersBody,
           content_types=["application/geo+json"])
def set_users(territory_id: int, body: UsersBody):
    t = _run(service.assign_users, db(), current_scope(), territory_id, body.user_ids)
    db().commit()
    return _feature(t)


@operation("/territories/report/overlaps", "GET", summary="Overlaps between territories and uncovered gaps",
           tags=["territories"], permission="territory.read")
def overlaps_report():
    return reports.overlaps_and_gaps(read_db(), current_scope())


class BalanceParams(StrictModel):
    as_of: date | None = None


@operation("/territories/report/balance", "GET", summary="Balance report per territory with imbalance metrics",
           tags=["territories"], permission="territory.read", query=BalanceParams)
def balance_report(query: BalanceParams):
    return reports.balance(read_db(), current_scope(), query.as_of)


@operation("/territories/suggest", "GET", summary="Suggest a balanced contiguous alignment of K territories",
           tags=["territories"], permission="territory.write", query=SuggestParams,
           content_types=["application/geo+json"])
def suggest_alignment(query: SuggestParams):
    return geojson_response(_run(suggest.suggest, read_db(), current_scope(), query.k, query.metric,
                                 query.hex_size_m, query.as_of))


@operation("/territories/suggest/accept", "POST", summary="Replace the territories by a suggestion (one transaction)",
           tags=["territories"], permission="territory.write", body=AcceptBody,
           content_types=["application/geo+json"],
           responses={403: "the caller does not see every territory", 422: "invalid suggestion"})
def accept_alignment(body: AcceptBody):
    """Existing territories are matched to the suggested shapes by largest overlap (ids,
    names and users kept); membership is recomputed by the DB; history and audit written."""
    if not current_scope().sees_everything:
        # realigning replaces every territory: only roles that see all of them may do it
        from geo_crm.http import Forbidden
        raise Forbidden("territory.realign")
    ts = _run(suggest.accept, db(), current_scope(), body.model_dump())
    db().commit()
    return geojson_response({"type": "FeatureCollection", "features": [service.to_feature(db(), t) for t in ts]})


@operation("/service-areas", "GET", summary="Branch service areas (GeoJSON)", tags=["territories"],
           permission="branch.read", content_types=["application/geo+json"])
def get_service_areas():
    return geojson_response(service_areas.service_areas(read_db(), current_scope()))


@operation("/service-areas/voronoi", "POST", summary="Recompute all service areas as nearest-branch Voronoi cells",
           tags=["territories"], permission="branch.write")
def voronoi():
    n = service_areas.recompute_voronoi(db(), current_scope())
    db().commit()
    return {"updated": n}


@operation("/branches/<int:branch_id>/service-area", "PUT", summary="Save a drawn service area for a branch",
           tags=["territories"], permission="branch.write", body=DrawnArea)
def put_service_area(branch_id: int, body: DrawnArea):
    b = _run(service_areas.save_drawn, db(), current_scope(), branch_id, body.geometry)
    db().commit()
    return {"branch_id": b.id, "service_area_kind": b.service_area_kind}
