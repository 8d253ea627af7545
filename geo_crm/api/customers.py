"""Customers and contacts over HTTP: `/api/v1/customers...`, `/api/v1/contacts/<id>`.

Lists answer a GeoJSON FeatureCollection (RFC 7946, EPSG:4326) with `numberMatched`,
`numberReturned` and `next_cursor`, or CSV with `format=csv`. Single records carry an
ETag holding their version; writes honour `If-Match` (412 when stale).
"""
from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Literal

from flask import Response, request, stream_with_context
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from geo_crm.api.framework import (ApiError, StrictModel, decode_cursor, geojson_response, if_match_version,
                                   operation, validation_error, with_etag)
from geo_crm.customers import service as svc
from geo_crm.customers.filters import MAX_RADIUS_M, CustomerFilter, FilterError, parse_area_geojson, parse_bbox, parse_lonlat
from geo_crm.customers.schemas import ContactCreate, ContactFields, CustomerCreate, CustomerFields
from geo_crm.http import Forbidden, current_scope, db, read_db

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _field_check(v, check):
    """Run a filters.py parser inside a field validator, so errors name the field."""
    if v is None:
        return v
    try:
        check(v)
    except FilterError as e:
        raise ValueError(e.problem)
    return v


class ListParams(CustomerFilter):
    """Customer filters plus sorting, paging and output format."""
    sort: svc.SortKey | None = Field(None, description="default: distance with near, else name")
    order: Literal["asc", "desc"] = "asc"
    limit: Annotated[int, Field(ge=1, le=svc.MAX_LIMIT)] = svc.DEFAULT_LIMIT
    offset: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    cursor: Annotated[str, Field(max_length=2000, description="next_cursor of the previous page")] | None = None
    format: Literal["geojson", "csv"] = "geojson"

    radius_m: Annotated[float | None, Field(gt=0, le=MAX_RADIUS_M, validate_default=True,
                                            description="metres; requires near")] = None

    @field_validator("radius_m")
    @classmethod
    def _pair(cls, v, info: ValidationInfo):
        if "near" not in info.data:  # near itself was invalid: reported there
            return v
        if (info.data.get("near") is None) != (v is None):
            raise ValueError("near and radius_m go together")
        return v

    @field_validator("bbox")
    @classmethod
    def _bbox(cls, v):
        return _field_check(v, lambda x: parse_bbox(x))

    @field_validator("near")
    @classmethod
    def _near(cls, v):
        return _field_check(v, lambda x: parse_lonlat(x, "near"))

    @field_validator("within")
    @classmethod
    def _within(cls, v):
        if isinstance(v, dict):
            v = json.dumps(v)
        return _field_check(v, lambda x: parse_area_geojson(x))

    @model_validator(mode="after")
    def _paging(self):
        if self.cursor and self.offset:
            raise ValueError("use either cursor or offset, not both")
        return self

    def filter(self) -> CustomerFilter:
        return CustomerFilter.model_validate(self.model_dump(include=set(CustomerFilter.model_fields),
                                                              exclude_none=True))


class SearchBody(ListParams):
    """The same as the list's query parameters, in a JSON body (for large `within` polygons).
    `within` may be a GeoJSON object or a string."""
    within: dict | str | None = Field(None, description="GeoJSON Polygon/MultiPolygon (EPSG:4326)")

    def filter(self) -> CustomerFilter:
        return CustomerFilter.model_validate(self.model_dump(include=set(CustomerFilter.model_fields),
                                                              exclude_none=True))


# -- response documents (OpenAPI) ----------------------------------------------------------
class CustomerProperties(BaseModel):
    """Customer fields; roles with field-level restriction receive a subset."""
    model_config = ConfigDict(extra="allow")
    id: int
    code: str
    name: str
    level: str | None = None
    status: str | None = None
    lon: float | None = Field(None, description="EPSG:4326")
    lat: float | None = Field(None, description="EPSG:4326")
    version: int | None = None
    distance_m: float | None = Field(None, description="metres from `near` (WGS84 spheroid), only with near")


class PointOut(BaseModel):
    type: Literal["Point"]
    coordinates: list[float]


class CustomerFeature(BaseModel):
    type: Literal["Feature"]
    id: int
    geometry: PointOut | None
    properties: CustomerProperties


class CustomerCollection(BaseModel):
    type: Literal["FeatureCollection"]
    features: list[CustomerFeature]
    numberMatched: int
    numberReturned: int
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last")
    sort: str
    order: str


class Suggestion(BaseModel):
    id: int
    code: str
    name: str
    city: str | None = None


class Suggestions(BaseModel):
    suggestions: list[Suggestion]


class ContactOut(BaseModel):
    id: int
    customer_id: int
    name: str
    gender: str
    title: str
    office_phone: str
    mobile_phone: str
    email: str
    is_primary: bool
    notes: str
    version: int
    created_at: str
    updated_at: str


class ContactList(BaseModel):
    contacts: list[ContactOut]


class SuggestParams(StrictModel):
    q: Annotated[str, Field(min_length=1, max_length=200)]
    limit: Annotated[int, Field(ge=1, le=50)] = 10


class UpdateBody(CustomerFields):
    """Fields to change (PATCH); `version` may stand in for If-Match."""


class ReplaceBody(CustomerCreate):
    """The whole record (PUT): fields left out return to their defaults."""


class ReassignBody(StrictModel):
    owner_id: int | None
    version: Annotated[int, Field(ge=1)] | None = None


def _filter_error(e: FilterError) -> ApiError:
    return validation_error(e.field, e.problem)


def _run(fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except FilterError as e:
        raise _filter_error(e)


def _scope_filter(params: ListParams) -> CustomerFilter:
    try:
        return params.filter()
    except FilterError as e:
        raise _filter_error(e)
    except Exception as e:  # pydantic re-validation (SearchBody.within as an object)
        from pydantic import ValidationError
        if isinstance(e, ValidationError):
            raise ApiError(422, "validation", "invalid filters",
                           [{"field": ".".join(map(str, d["loc"])) or "within", "problem": d["msg"]}
                            for d in e.errors(include_url=False, include_input=False)])
        raise


# -- CSV -------------------------------------------------------------------------------
def csv_cell(v) -> str:
    """Text for a CSV cell; a leading = + - @ tab or CR is neutralised with an apostrophe
    so spreadsheets do not run it as a formula (OWASP CSV injection)."""
    if v is None:
        return ""
    s = v if isinstance(v, str) else str(v)
    if s.startswith(FORMULA_PREFIXES):
        return "'" + s
    return s


def _csv_response(session, scope, f: CustomerFilter, params: ListParams) -> Response:
    if not scope.can("customer.export"):
        raise Forbidden("customer.export")
    _run(svc.check_filter_fields, f, scope, params.sort)
    columns = list(svc.visible_fields(scope)) + (["distance_m"] if f.near else [])
    # validate sort/filters before streaming starts, so errors are still clean 422s
    _run(svc.list_customers, session, scope, f, sort=params.sort, order=params.order, limit=1, with_total=False)

    def rows():
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(columns)
        yield "\ufeff" + buf.getvalue()
        for c, d in svc.iter_customers(session, scope, f, sort=params.sort, order=params.order):
            buf.seek(0)
            buf.truncate()
            data = svc.serialize(c, scope, distance=d)
            w.writerow([csv_cell(data.get(col)) for col in columns])
            yield buf.getvalue()

    resp = Response(stream_with_context(rows()), mimetype="text/csv")
    resp.headers["Content-Disposition"] = 'attachment; filename="customers.csv"'
    return resp


def _list(params: ListParams):
    scope = current_scope()
    f = _scope_filter(params)
    if params.format == "csv":
        return _csv_response(read_db(), scope, f, params)
    cursor = decode_cursor(params.cursor) if params.cursor else None
    page = _run(svc.list_customers, read_db(), scope, f, sort=params.sort, order=params.order,
                limit=params.limit, offset=params.offset, cursor=cursor)
    feats = [svc.feature(c, scope, distance=d) for c, d in page.rows]
    return geojson_response({
        "type": "FeatureCollection", "features": feats,
        "numberMatched": page.total, "numberReturned": len(feats), "next_cursor": page.next_cursor,
        "sort": page.sort, "order": page.order,
    })


# -- customers ---------------------------------------------------------------------------
@operation("/customers", "GET", summary="List customers (GeoJSON FeatureCollection or CSV)", tags=["customers"],
           permission="customer.read", query=ListParams, response=CustomerCollection, content_types=["application/geo+json", "text/csv"],
           responses={422: "invalid filter", 403: "CSV export not allowed for this role"})
def list_customers(query: ListParams):
    """Filters combine with AND. `near`+`radius_m` sorts by distance and adds `distance_m`
    (metres, WGS84 spheroid). Page with `next_cursor` (stable) or `offset`."""
    return _list(query)


@operation("/customers/search", "POST", summary="Search customers with filters in a JSON body", tags=["customers"],
           permission="customer.read", body=SearchBody, response=CustomerCollection, content_types=["application/geo+json", "text/csv"],
           responses={422: "invalid filter"})
def search_customers(body: SearchBody):
    """Same filters and output as `GET /customers`, for polygons too large for a URL."""
    return _list(body)


@operation("/customers/suggest", "GET", summary="Search suggestions (visible customers only)", tags=["customers"],
           permission="customer.read", query=SuggestParams, response=Suggestions)
def suggest_customers(query: SuggestParams):
    return {"suggestions": _run(svc.suggest, read_db(), current_scope(), query.q, query.limit)}


def _one(c, status: int = 200) -> Response:
    resp = geojson_response(svc.feature(c, current_scope()), status=status)
    return with_etag(resp, c.version)


@operation("/customers", "POST", summary="Create a customer", tags=["customers"], permission="customer.create",
           body=CustomerCreate, response=CustomerFeature, content_types=["application/geo+json"], responses={201: "created", 422: "invalid input"})
def create_customer(body: CustomerCreate):
    s = db()
    c = _run(svc.create_customer, s, current_scope(), body)
    s.commit()
    resp = _one(c, 201)
    resp.headers["Location"] = f"/api/v1/customers/{c.id}"
    return resp


@operation("/customers/<int:customer_id>", "GET", summary="One customer (GeoJSON Feature, ETag = version)",
           tags=["customers"], permission="customer.read", response=CustomerFeature,
           content_types=["application/geo+json"], responses={404: "not found or not visible", 304: "not modified"})
def get_customer(customer_id: int):
    c = svc.get_customer(db(), current_scope(), customer_id)
    etag = f'"{c.version}"'
    if request.headers.get("If-None-Match") == etag:
        return with_etag(Response(status=304), c.version)
    return _one(c)


@operation("/customers/<int:customer_id>", "PATCH", summary="Change some fields of a customer", tags=["customers"],
           body=UpdateBody, response=CustomerFeature, content_types=["application/geo+json"], responses={404: "not found", 412: "If-Match is stale", 409: "body version is stale",
                                       422: "invalid input"})
def patch_customer(customer_id: int, body: UpdateBody):
    """Send only the fields to change. Optimistic lock: `If-Match: "<version>"` or `version`
    in the body. A customer login may send only its corrected location."""
    s = db()
    c = _run(svc.update_customer, s, current_scope(), customer_id, body, expected_version=if_match_version())
    s.commit()
    return _one(c)


@operation("/customers/<int:customer_id>", "PUT", summary="Replace a customer", tags=["customers"],
           permission="customer.update", body=ReplaceBody, response=CustomerFeature,
           content_types=["application/geo+json"],
           responses={404: "not found", 412: "If-Match is stale", 422: "invalid input"})
def put_customer(customer_id: int, body: ReplaceBody):
    s = db()
    c = _run(svc.update_customer, s, current_scope(), customer_id, body, expected_version=if_match_version(),
             replace=True)
    s.commit()
    return _one(c)


@operation("/customers/<int:customer_id>", "DELETE", summary="Delete a customer (admin)", tags=["customers"],
           responses={204: "deleted", 404: "not found", 412: "If-Match is stale"})
def delete_customer(customer_id: int):
    s = db()
    svc.delete_customer(s, current_scope(), customer_id, expected_version=if_match_version())
    s.commit()
    return Response(status=204)


@operation("/customers/<int:customer_id>/owner", "PUT", summary="Reassign the account owner", tags=["customers"],
           body=ReassignBody, response=CustomerFeature, content_types=["application/geo+json"], responses={404: "not found", 403: "not allowed", 412: "stale"})
def reassign_customer(customer_id: int, body: ReassignBody):
    s = db()
    expected = if_match_version()
    c = _run(svc.reassign_owner, s, current_scope(), customer_id, body.owner_id,
             expected_version=expected if expected is not None else body.version)
    s.commit()
    return _one(c)


# -- contacts ----------------------------------------------------------------------------
def _contact(k, status: int = 200) -> Response:
    from flask import jsonify
    resp = jsonify(svc.serialize_contact(k))
    resp.status_code = status
    return with_etag(resp, k.version)


@operation("/customers/<int:customer_id>/contacts", "GET", summary="A customer's contacts", tags=["contacts"],
           permission="customer.read", response=ContactList, responses={404: "customer not found"})
def list_contacts(customer_id: int):
    return {"contacts": [svc.serialize_contact(k) for k in svc.list_contacts(db(), current_scope(), customer_id)]}


@operation("/customers/<int:customer_id>/contacts", "POST", summary="Add a contact", tags=["contacts"],
           body=ContactCreate, response=ContactOut, responses={201: "created", 404: "customer not found", 422: "invalid input"})
def create_contact(customer_id: int, body: ContactCreate):
    s = db()
    k = _run(svc.create_contact, s, current_scope(), customer_id, body)
    s.commit()
    resp = _contact(k, 201)
    resp.headers["Location"] = f"/api/v1/contacts/{k.id}"
    return resp


@operation("/contacts/<int:contact_id>", "GET", summary="One contact", tags=["contacts"],
           permission="customer.read", response=ContactOut, responses={404: "not found"})
def get_contact(contact_id: int):
    return _contact(svc.get_contact(db(), current_scope(), contact_id))


@operation("/contacts/<int:contact_id>", "PATCH", summary="Change a contact", tags=["contacts"], body=ContactFields,
           response=ContactOut, responses={404: "not found", 412: "stale", 422: "invalid input"})
def patch_contact(contact_id: int, body: ContactFields):
    s = db()
    k = _run(svc.update_contact, s, current_scope(), contact_id, body, expected_version=if_match_version())
    s.commit()
    return _contact(k)


@operation("/contacts/<int:contact_id>", "DELETE", summary="Delete a contact", tags=["contacts"],
           responses={204: "deleted", 404: "not found", 412: "stale"})
def delete_contact(contact_id: int):
    s = db()
    svc.delete_contact(s, current_scope(), contact_id, expected_version=if_match_version())
    s.commit()
    return Response(status=204)
