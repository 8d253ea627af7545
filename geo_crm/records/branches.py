"""Branches (depots) with opening hours, a Point location and an optional service-area
MultiPolygon, and their vehicles. Writing `service_area` or `geom` re-assigns
customers' `service_branch_id` through the `branch_service_area` DB trigger."""
from __future__ import annotations

import re
from datetime import time
from typing import Any

from geoalchemy2.shape import to_shape
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from geo_crm.models import Branch, Customer, DeliveryRoute, Vehicle
from geo_crm.models.enums import SERVICE_AREA_KINDS
from geo_crm.records.common import Forbidden, Invalid, NotFound, Page, check_version, paginate, plain
from geo_crm.records.geo import feature, parse_area, parse_point, shape_geojson, to_db
from geo_crm.security.scope import Scope

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
BRANCH_FIELDS = ("code", "name", "address", "postcode", "city", "phone", "email", "is_depot")
VEHICLE_FIELDS = ("name", "capacity", "shift_start", "shift_end", "max_duration_min", "speed_kmh", "active")


def _need(scope: Scope, action: str) -> None:
    if not scope.can(action):
        raise Forbidden(action)


def check_opening_hours(value: Any, field: str = "opening_hours") -> dict:
    """{"mon": ["08:00", "17:00"], ...}; days mon..sun; close after open."""
    if not isinstance(value, dict):
        raise Invalid(field, "expected an object of day → [open, close]")
    out = {}
    for day, span in value.items():
        if day not in DAYS:
            raise Invalid(f"{field}.{day}", f"unknown day; one of {', '.join(DAYS)}")
        if (not isinstance(span, (list, tuple)) or len(span) != 2
                or not all(isinstance(t, str) and _HHMM.match(t) for t in span)):
            raise Invalid(f"{field}.{day}", "expected [\"HH:MM\", \"HH:MM\"]")
        if span[1] <= span[0]:
            raise Invalid(f"{field}.{day}", "closing time must be after opening time")
        out[day] = [span[0], span[1]]
    return out


# -- branches ------------------------------------------------------------------------
def branch_feature(b: Branch, *, with_area: bool = True, customers: int | None = None) -> dict:
    props = {k: plain(getattr(b, k)) for k in ("code", "name", "address", "postcode", "city", "phone",
                                                "email", "is_depot", "service_area_kind", "version")}
    props["id"] = b.id
    props["opening_hours"] = b.opening_hours or {}
    props["vehicle_count"] = len(b.vehicles)
    props["created_at"], props["updated_at"] = plain(b.created_at), plain(b.updated_at)
    if with_area:
        props["service_area"] = shape_geojson(to_shape(b.service_area)) if b.service_area is not None else None
    if customers is not None:
        props["customers_served"] = customers
    return feature(b.id, shape_geojson(to_shape(b.geom)), props)


def list_branches(session: Session, scope: Scope, *, q: str | None = None, limit: int = 100,
                  offset: int = 0) -> Page:
    _need(scope, "branch.read")
    stmt = select(Branch).order_by(Branch.name, Branch.id)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(Branch.name.ilike(like), Branch.code.ilike(like), Branch.city.ilike(like)))
    return paginate(session, stmt, limit, offset)


def get_branch(session: Session, scope: Scope, branch_id: int) -> Branch:
    if not scope.can("branch.read"):
        raise NotFound()
    b = session.get(Branch, branch_id)
    if b is None:
        raise NotFound()
    return b


def customers_served(session: Session, scope: Scope, branch_id: int) -> int:
    """How many customers *visible to the caller* this branch serves."""
    return session.scalar(select(func.count()).select_from(Customer)
                          .where(Customer.service_branch_id == branch_id, scope.customer_filter())) or 0


def _apply_branch(b: Branch, data: dict) -> None:
    for k in BRANCH_FIELDS:
        if k in data:
            setattr(b, k, data[k])
    if "opening_hours" in data:
        b.opening_hours = check_opening_hours(data["opening_hours"] or {})
    if "geometry" in data:
        if data["geometry"] is None:
            raise Invalid("geometry", "a branch needs a location")
        b.geom = to_db(parse_point(data["geometry"], "geometry"))
    if "service_area" in data:
        area = data["service_area"]
        b.service_area = None if area is None else to_db(parse_area(area, "service_area"))
        b.service_area_kind = None if area is None else data.get("service_area_kind") or "drawn"
    elif "service_area_kind" in data:
        b.service_area_kind = data["service_area_kind"]
    if b.service_area_kind is not None and b.service_area_kind not in SERVICE_AREA_KINDS:
        raise Invalid("service_area_kind", f"one of {', '.join(SERVICE_AREA_KINDS)}")


def _check_code_free(session: Session, model, code: str, own_id: int | None) -> None:
    other = session.scalar(select(model.id).where(model.code == code))
    if other is not None and other != own_id:
        raise Invalid("code", "already used by another record")


def create_branch(session: Session, scope: Scope, data: dict) -> Branch:
    _need(scope, "branch.write")
    for f in ("code", "name", "geometry"):
        if not data.get(f):
            raise Invalid(f, "required")
    _check_code_free(session, Branch, data["code"], None)
    b = Branch(opening_hours={})
    _apply_branch(b, data)
    session.add(b)
    session.flush()
    return b


def update_branch(session: Session, scope: Scope, branch_id: int, data: dict, expected_version: int | None) -> Branch:
    b = get_branch(session, scope, branch_id)
    _need(scope, "branch.write")
    check_version(b.version, expected_version)
    if "code" in data:
        _check_code_free(session, Branch, data["code"], b.id)
    _apply_branch(b, data)
    session.flush()
    return b


def delete_branch(session: Session, scope: Scope, branch_id: int, expected_version: int | None) -> None:
    b = get_branch(session, scope, branch_id)
    _need(scope, "branch.write")
    check_version(b.version, expected_version)
    if session.scalar(select(DeliveryRoute.id).where(DeliveryRoute.branch_id == b.id).limit(1)):
        # delivery history must stay intact (delivery_route.branch_id has no cascade)
        raise Invalid("id", "the branch has planned delivery routes; delete those plans first")
    session.delete(b)
    session.flush()


# -- vehicles ------------------------------------------------------------------------
def vehicle_dict(v: Vehicle) -> dict:
    return {"id": v.id, "branch_id": v.branch_id, **{k: plain(getattr(v, k)) for k in VEHICLE_FIELDS}}


def _parse_time(value: Any, field: str) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str) and _HHMM.match(value.strip()):
        h, m = value.strip().split(":")
        return time(int(h), int(m))
    raise Invalid(field, "expected HH:MM")


def _apply_vehicle(v: Vehicle, data: dict) -> None:
    for k in VEHICLE_FIELDS:
        if k in data:
            val = data[k]
            if k in ("shift_start", "shift_end"):
                val = _parse_time(val, k)
            setattr(v, k, val)
    if not v.name or not str(v.name).strip():
        raise Invalid("name", "required")
    if v.capacity is None or v.capacity <= 0:
        raise Invalid("capacity", "must be greater than 0")
    if (v.max_duration_min or 0) <= 0:
        raise Invalid("max_duration_min", "must be greater than 0")
    if (v.speed_kmh or 0) <= 0:
        raise Invalid("speed_kmh", "must be greater than 0")
    if v.shift_end <= v.shift_start:
        raise Invalid("shift_end", "must be after shift_start")


def list_vehicles(session: Session, scope: Scope, branch_id: int) -> list[Vehicle]:
    get_branch(session, scope, branch_id)
    return list(session.scalars(select(Vehicle).where(Vehicle.branch_id == branch_id).order_by(Vehicle.id)))


def get_vehicle(session: Session, scope: Scope, vehicle_id: int) -> Vehicle:
    if not scope.can("branch.read"):
        raise NotFound()
    v = session.get(Vehicle, vehicle_id)
    if v is None:
        raise NotFound()
    return v


def create_vehicle(session: Session, scope: Scope, branch_id: int, data: dict) -> Vehicle:
    get_branch(session, scope, branch_id)
    _need(scope, "branch.write")
    v = Vehicle(branch_id=branch_id, shift_start=time(7, 0), shift_end=time(17, 0), max_duration_min=600,
                speed_kmh=50, active=True)
    _apply_vehicle(v, data)
    session.add(v)
    session.flush()
    return v


def update_vehicle(session: Session, scope: Scope, vehicle_id: int, data: dict) -> Vehicle:
    v = get_vehicle(session, scope, vehicle_id)
    _need(scope, "branch.write")
    if "branch_id" in data and data["branch_id"] != v.branch_id:
        if session.get(Branch, data["branch_id"]) is None:
            raise Invalid("branch_id", "no such branch")
        v.branch_id = data["branch_id"]
    _apply_vehicle(v, data)
    session.flush()
    return v


def delete_vehicle(session: Session, scope: Scope, vehicle_id: int) -> None:
    v = get_vehicle(session, scope, vehicle_id)
    _need(scope, "branch.write")
    session.delete(v)
    session.flush()
