"""HTTP API for branches + vehicles, partners, products, orders + lines and regions.

GeoJSON (RFC 7946, EPSG:4326) where records have geometry; lists are paged with
limit/offset and carry `total`; writes honour `If-Match` (412 on a stale version)."""
from __future__ import annotations

import functools
from datetime import date
from typing import Any, Literal

from flask import jsonify
from pydantic import Field
from sqlalchemy.orm.exc import StaleDataError

from geo_crm.api.framework import (ApiError, StrictModel, geojson_response, if_match_version, operation,
                                   validation_error, with_etag)
from geo_crm.http import Conflict, current_scope, db
from geo_crm.records import branches, orders, partners, products, regions
from geo_crm.records.common import Invalid, Page

GeoJSONGeometry = dict[str, Any] | str


def domain_errors(fn):
    """Domain `Invalid` → 422 with the field name; a concurrent write → Conflict."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except Invalid as e:
            db().rollback()
            raise validation_error(e.field, e.problem)
        except StaleDataError:
            db().rollback()
            raise Conflict("the record was changed by someone else; reload and retry")
    return wrapper


def _fields(body) -> dict:
    return body.model_dump(exclude_unset=True)


def _page_members(page: Page) -> dict:
    return {"total": page.total, "limit": page.limit, "offset": page.offset,
            "numberMatched": page.total, "numberReturned": len(page.items)}


def _fc(features: list[dict], page: Page):
    return geojson_response({"type": "FeatureCollection", "features": features, **_page_members(page)})


GEOJSON = ["application/geo+json"]


def _feature_resp(feat: dict, version: int, status: int = 200):
    return with_etag(geojson_response(feat, status), version)


class Paging(StrictModel):
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=10_000_000)


# -- branches -------------------------------------------------------------------------------
class BranchQuery(Paging):
    q: str | None = Field(None, max_length=100)
    include_area: bool = False


class BranchIn(StrictModel):
    code: str | None = Field(None, min_length=1, max_length=32)
    name: str | None = Field(None, min_length=1, max_length=200)
    address: str | None = Field(None, max_length=300)
    postcode: str | None = Field(None, max_length=16)
    city: str | None = Field(None, max_length=100)
    phone: str | None = Field(None, max_length=50)
    email: str | None = Field(None, max_length=200)
    is_depot: bool | None = None
    opening_hours: dict[str, Any] | None = None
    geometry: GeoJSONGeometry | None = Field(None, description="GeoJSON Point (EPSG:4326) or WKT/EWKT")
    service_area: GeoJSONGeometry | None = Field(None, description="GeoJSON (Multi)Polygon or WKT; null removes")
    service_area_kind: Literal["drawn", "voronoi"] | None = None


TAG_B = ["branches"]


@operation("/branches", summary="List branches (GeoJSON Points)", tags=TAG_B, permission="branch.read",
           query=BranchQuery, content_types=GEOJSON)
@domain_errors
def list_branches(query: BranchQuery):
    s, scope = db(), current_scope()
    page = branches.list_branches(s, scope, q=query.q, limit=query.limit, offset=query.offset)
    return _fc([branches.branch_feature(b, with_area=query.include_area) for b in page.items], page)


@operation("/branches/<int:branch_id>", summary="A branch with its service area", tags=TAG_B,
           permission="branch.read", responses={404: "not found"}, content_types=GEOJSON)
@domain_errors
def get_branch(branch_id: int):
    s, scope = db(), current_scope()
    b = branches.get_branch(s, scope, branch_id)
    feat = branches.branch_feature(b, customers=branches.customers_served(s, scope, b.id))
    feat["properties"]["vehicles"] = [branches.vehicle_dict(v) for v in b.vehicles]
    return _feature_resp(feat, b.version)


@operation("/branches", "POST", summary="Create a branch", tags=TAG_B, permission="branch.write", body=BranchIn,
           responses={201: "created", 422: "invalid"}, content_types=GEOJSON)
@domain_errors
def create_branch(body: BranchIn):
    s = db()
    b = branches.create_branch(s, current_scope(), _fields(body))
    s.commit()
    return _feature_resp(branches.branch_feature(b), b.version, 201)


@operation("/branches/<int:branch_id>", "PATCH", summary="Update a branch (If-Match: version)", tags=TAG_B,
           permission="branch.write", body=BranchIn, responses={412: "stale version", 422: "invalid"}, content_types=GEOJSON)
@domain_errors
def update_branch(branch_id: int, body: BranchIn):
    s = db()
    b = branches.update_branch(s, current_scope(), branch_id, _fields(body), if_match_version())
    s.commit()
    return _feature_resp(branches.branch_feature(b), b.version)


@operation("/branches/<int:branch_id>", "DELETE", summary="Delete a branch and its vehicles", tags=TAG_B,
           permission="branch.write", responses={204: "deleted", 412: "stale version"})
@domain_errors
def delete_branch(branch_id: int):
    s = db()
    branches.delete_branch(s, current_scope(), branch_id, if_match_version())
    s.commit()
    return "", 204


class VehicleIn(StrictModel):
    name: str | None = Field(None, min_length=1, max_length=100)
    capacity: int | None = Field(None, description="load units; > 0")
    shift_start: str | None = Field(None, description="HH:MM")
    shift_end: str | None = Field(None, description="HH:MM, after shift_start")
    max_duration_min: int | None = None
    speed_kmh: int | None = None
    active: bool | None = None
    branch_id: int | None = None


@operation("/branches/<int:branch_id>/vehicles", summary="Vehicles of a branch", tags=TAG_B,
           permission="branch.read")
@domain_errors
def list_vehicles(branch_id: int):
    vs = branches.list_vehicles(db(), current_scope(), branch_id)
    return {"items": [branches.vehicle_dict(v) for v in vs], "total": len(vs)}


@operation("/branches/<int:branch_id>/vehicles", "POST", summary="Add a vehicle to a branch", tags=TAG_B,
           permission="branch.write", body=VehicleIn, responses={201: "created", 422: "invalid"})
@domain_errors
def create_vehicle(branch_id: int, body: VehicleIn):
    s = db()
    data = _fields(body)
    data.pop("branch_id", None)
    v = branches.create_vehicle(s, current_scope(), branch_id, data)
    s.commit()
    return jsonify(branches.vehicle_dict(v)), 201


@operation("/vehicles/<int:vehicle_id>", summary="A vehicle", tags=TAG_B, permission="branch.read")
@domain_errors
def get_vehicle(vehicle_id: int):
    return branches.vehicle_dict(branches.get_vehicle(db(), current_scope(), vehicle_id))


@operation("/vehicles/<int:vehicle_id>", "PATCH", summary="Update a vehicle", tags=TAG_B,
           permission="branch.write", body=VehicleIn)
@domain_errors
def update_vehicle(vehicle_id: int, body: VehicleIn):
    s = db()
    v = branches.update_vehicle(s, current_scope(), vehicle_id, _fields(body))
    s.commit()
    return branches.vehicle_dict(v)


@operation("/vehicles/<int:vehicle_id>", "DELETE", summary="Delete a vehicle", tags=TAG_B,
           permission="branch.write", responses={204: "deleted"})
@domain_errors
def delete_vehicle(vehicle_id: int):
    s = db()
    branches.delete_vehicle(s, current_scope(), vehicle_id)
    s.commit()
    return "", 204


# -- partners -------------------------------------------------------------------------------
TAG_P = ["partners"]


class PartnerQuery(Paging):
    q: str | None = Field(None, max_length=100)
    partner_type: Literal["distributor", "reseller", "supplier"] | None = None
    region_id: int | None = None
    include_area: bool = False


class PartnerIn(StrictModel):
    code: str | None = Field(None, min_length=1, max_length=32)
    name: str | None = Field(None, min_length=1, max_length=200)
    partner_type: Literal["distributor", "reseller", "supplier"] | None = None
    credit_level: Literal["AAA", "AA", "A", "BBB", "BB", "B", "C"] | None = None
    address: str | None = Field(None, max_length=300)
    postcode: str | None = Field(None, max_length=16)
    city: str | None = Field(None, max_length=100)
    phone: str | None = Field(None, max_length=50)
    email: str | None = Field(None, max_length=200)
    notes: str | None = Field(None, max_length=10_000)
    commission_pct: float | None = Field(None, ge=0, le=100)
    geometry: GeoJSONGeometry | None = None
    coverage: GeoJSONGeometry | None = None
    region_ids: list[int] | None = None


@operation("/partners", summary="List partners (GeoJSON Points)", tags=TAG_P, permission="partner.read",
           query=PartnerQuery, content_types=GEOJSON)
@domain_errors
def list_partners(query: PartnerQuery):
    s = db()
    page = partners.list_partners(s, current_scope(), q=query.q, partner_type=query.partner_type,
                                  region_id=query.region_id, limit=query.limit, offset=query.offset)
    return _fc([partners.partner_feature(s, p, with_area=query.include_area) for p in page.items], page)


@operation("/partners/<int:partner_id>", summary="A partner with coverage", tags=TAG_P, permission="partner.read", content_types=GEOJSON)
@domain_errors
def get_partner(partner_id: int):
    s = db()
    p = partners.get_partner(s, current_scope(), partner_id)
    return _feature_resp(partners.partner_feature(s, p), p.version)


@operation("/partners", "POST", summary="Create a partner", tags=TAG_P, permission="partner.write", body=PartnerIn,
           responses={201: "created", 422: "invalid"}, content_types=GEOJSON)
@domain_errors
def create_partner(body: PartnerIn):
    s = db()
    p = partners.create_partner(s, current_scope(), _fields(body))
    s.commit()
    return _feature_resp(partners.partner_feature(s, p), p.version, 201)


@operation("/partners/<int:partner_id>", "PATCH", summary="Update a partner (If-Match: version)", tags=TAG_P,
           permission="partner.write", body=PartnerIn, responses={412: "stale version"}, content_types=GEOJSON)
@domain_errors
def update_partner(partner_id: int, body: PartnerIn):
    s = db()
    p = partners.update_partner(s, current_scope(), partner_id, _fields(body), if_match_version())
    s.commit()
    return _feature_resp(partners.partner_feature(s, p), p.version)


@operation("/partners/<int:partner_id>", "DELETE", summary="Delete a partner", tags=TAG_P,
           permission="partner.write", responses={204: "deleted"})
@domain_errors
def delete_partner(partner_id: int):
    s = db()
    partners.delete_partner(s, current_scope(), partner_id, if_match_version())
    s.commit()
    return "", 204


# -- products -------------------------------------------------------------------------------
TAG_PR = ["products"]


class ProductQuery(Paging):
    q: str | None = Field(None, max_length=100)
    category: str | None = Field(None, max_length=64)
    active: bool | None = None


class ProductIn(StrictModel):
    sku: str | None = Field(None, min_length=1, max_length=32)
    name: str | None = Field(None, min_length=1, max_length=200)
    category: str | None = Field(None, max_length=64)
    unit: str | None = Field(None, min_length=1, max_length=16)
    unit_price: float | None = Field(None, description="EUR")
    unit_cost: float | None = Field(None, description="EUR")
    load_units: int | None = Field(None, description="vehicle capacity units per item")
    active: bool | None = None


@operation("/products", summary="List products", tags=TAG_PR, permission="product.read", query=ProductQuery)
@domain_errors
def list_products(query: ProductQuery):
    scope = current_scope()
    page = products.list_products(db(), scope, q=query.q, category=query.category, active=query.active,
                                  limit=query.limit, offset=query.offset)
    return {"items": [products.product_dict(p, scope) for p in page.items], **_page_members(page)}


@operation("/products/<int:product_id>", summary="A product", tags=TAG_PR, permission="product.read")
@domain_errors
def get_product(product_id: int):
    scope = current_scope()
    p = products.get_product(db(), scope, product_id)
    return with_etag(jsonify(products.product_dict(p, scope)), p.version)


@operation("/products", "POST", summary="Create a product", tags=TAG_PR, permission="product.write",
           body=ProductIn, responses={201: "created", 422: "invalid"})
@domain_errors
def create_product(body: ProductIn):
    s = db()
    p = products.create_product(s, current_scope(), _fields(body))
    s.commit()
    resp = with_etag(jsonify(products.product_dict(p)), p.version)
    return resp, 201


@operation("/products/<int:product_id>", "PATCH", summary="Update a product (If-Match: version)", tags=TAG_PR,
           permission="product.write", body=ProductIn, responses={412: "stale version"})
@domain_errors
def update_product(product_id: int, body: ProductIn):
    s = db()
    p = products.update_product(s, current_scope(), product_id, _fields(body), if_match_version())
    s.commit()
    return with_etag(jsonify(products.product_dict(p)), p.version)


@operation("/products/<int:product_id>", "DELETE", summary="Delete a product never ordered", tags=TAG_PR,
           permission="product.write", responses={204: "deleted", 422: "on orders"})
@domain_errors
def delete_product(product_id: int):
    s = db()
    products.delete_product(s, current_scope(), product_id, if_match_version())
    s.commit()
    return "", 204


# -- orders ---------------------------------------------------------------------------------
TAG_O = ["orders"]
OrderStatus = Literal["draft", "confirmed", "delivered", "cancelled"]


class OrderQuery(Paging):
    status: list[OrderStatus] | None = None
    date_from: date | None = None
    date_to: date | None = None
    customer_id: int | None = None
    q: str | None = Field(None, max_length=100, description="customer name/code or order number")


class LineIn(StrictModel):
    product_id: int
    quantity: int = Field(description="whole units, > 0")


class OrderIn(StrictModel):
    customer_id: int | None = None
    status: OrderStatus | None = None
    order_date: date | None = None
    delivery_date: date | None = None
    delivery_address: str | None = Field(None, max_length=300)
    delivery_geometry: GeoJSONGeometry | None = Field(None, description="Point; defaults to the customer's location")
    notes: str | None = Field(None, max_length=10_000)
    lines: list[LineIn] | None = None


def _order_data(body: OrderIn) -> dict:
    data = _fields(body)
    if "lines" in data and data["lines"] is not None:
        for i, ln in enumerate(data["lines"]):
            if ln["quantity"] <= 0:
                raise Invalid(f"lines.{i}.quantity", "must be a whole number greater than 0")
    return data


@operation("/orders", summary="List visible orders (GeoJSON, delivery point)", tags=TAG_O,
           permission="order.read", query=OrderQuery, content_types=GEOJSON)
@domain_errors
def list_orders(query: OrderQuery):
    s, scope = db(), current_scope()
    page = orders.list_orders(s, scope, status=query.status, date_from=query.date_from, date_to=query.date_to,
                              customer_id=query.customer_id, q=query.q, limit=query.limit, offset=query.offset)
    feats = [orders.order_feature(s, o, scope, customer_name=name, with_lines=False) for o, name in page.items]
    return _fc(feats, page)


@operation("/orders/<int:order_id>", summary="An order with its lines", tags=TAG_O, permission="order.read",
           responses={404: "not found or not visible"}, content_types=GEOJSON)
@domain_errors
def get_order(order_id: int):
    s, scope = db(), current_scope()
    o = orders.get_order(s, scope, order_id)
    return _feature_resp(orders.order_feature(s, o, scope), o.version)


@operation("/orders", "POST", summary="Create an order; totals are computed from the lines", tags=TAG_O,
           permission="order.write", body=OrderIn, responses={201: "created", 422: "invalid"}, content_types=GEOJSON)
@domain_errors
def create_order(body: OrderIn):
    s, scope = db(), current_scope()
    o = orders.create_order(s, scope, _order_data(body))
    s.commit()
    return _feature_resp(orders.order_feature(s, o, scope), o.version, 201)


@operation("/orders/<int:order_id>", "PATCH", summary="Update an order or move its status (If-Match)",
           tags=TAG_O, permission="order.write", body=OrderIn, responses={412: "stale version", 422: "invalid"}, content_types=GEOJSON)
@domain_errors
def update_order(order_id: int, body: OrderIn):
    s, scope = db(), current_scope()
    o = orders.update_order(s, scope, order_id, _order_data(body), if_match_version())
    s.commit()
    return _feature_resp(orders.order_feature(s, o, scope), o.version)


@operation("/orders/<int:order_id>", "DELETE", summary="Delete a draft order", tags=TAG_O,
           permission="order.write", responses={204: "deleted"})
@domain_errors
def delete_order(order_id: int):
    s = db()
    orders.delete_order(s, current_scope(), order_id, if_match_version())
    s.commit()
    return "", 204


# -- regions --------------------------------------------------------------------------------
TAG_R = ["regions"]


class RegionQuery(Paging):
    level: int | None = Field(None, ge=0, le=2)
    q: str | None = Field(None, max_length=100)
    simplify_m: float | None = Field(None, ge=0, le=regions.MAX_SIMPLIFY_M,
                                     description="simplification tolerance in metres, for map display")
    limit: int = Field(100, ge=1, le=500)


class RegionOneQuery(StrictModel):
    simplify_m: float | None = Field(None, ge=0, le=regions.MAX_SIMPLIFY_M)


class RegionIn(StrictModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    name_local: str | None = Field(None, max_length=200)
    population: int | None = Field(None, ge=0)


@operation("/regions", summary="Administrative regions (GeoJSON, population, area_km2)", tags=TAG_R,
           permission=regions.READ, query=RegionQuery, content_types=GEOJSON)
@domain_errors
def list_regions(query: RegionQuery):
    page = regions.list_regions(db(), current_scope(), level=query.level, q=query.q, simplify_m=query.simplify_m,
                                limit=query.limit, offset=query.offset)
    return _fc(page.items, page)


@operation("/regions/<int:region_id>", summary="A region", tags=TAG_R, permission=regions.READ,
           query=RegionOneQuery, content_types=GEOJSON)
@domain_errors
def get_region(region_id: int, query: RegionOneQuery):
    _, feat = regions.get_region(db(), current_scope(), region_id, query.simplify_m)
    return geojson_response(feat)


@operation("/regions/<int:region_id>", "PATCH", summary="Rename a region or update its population (admin)",
           tags=TAG_R, permission="region.write", body=RegionIn, content_types=GEOJSON)
@domain_errors
def update_region(region_id: int, body: RegionIn):
    s, scope = db(), current_scope()
    regions.update_region(s, scope, region_id, _fields(body))
    s.commit()
    _, feat = regions.get_region(s, scope, region_id)
    return geojson_response(feat)


_ = ApiError  # re-exported for callers raising API errors from here
