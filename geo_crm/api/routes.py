"""Delivery route planning API (`/api/v1/routes`).

Planning runs in a background thread by default (`wait: false`): the answer is 202 with
the plan id and status `queued`; poll `GET /routes/{id}` until `planned` or `failed`.
With `wait: true` the plan is computed within the request (201). Bad input answers 4xx
before anything is written.
"""
from __future__ import annotations

from datetime import date  # noqa: F401  (used in pydantic annotations)
from typing import Annotated, Literal

from flask import Response, current_app, request
from pydantic import Field, field_validator, model_validator
from sqlalchemy import or_, select

from geo_crm.api.framework import (ApiError, StrictModel, if_match_version, operation, validation_error,
                                   with_etag)
from geo_crm.http import csp_nonce, current_scope, database, db
from geo_crm.models import Branch
from geo_crm.routing import exports, jobs
from geo_crm.routing.persist import EditError, list_plans, move_stops, plan_detail, plan_header
from geo_crm.routing.planner import PlanInputError, PlanRequest, StopOverride

HHMM = r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$"


class StopIn(StrictModel):
    customer_id: int
    required: bool = True
    priority: Annotated[int, Field(ge=0, le=100)] = 0
    tw_start: Annotated[str | None, Field(pattern=HHMM, description="local HH:MM")] = None
    tw_end: Annotated[str | None, Field(pattern=HHMM, description="local HH:MM")] = None
    demand: Annotated[int | None, Field(ge=0)] = None
    service_min: Annotated[int | None, Field(ge=0, le=600)] = None

    @model_validator(mode="after")
    def _window(self):
        if self.tw_start and self.tw_end and self.tw_end <= self.tw_start:
            raise ValueError("tw_end: the time window ends before it starts")
        return self


class PlanIn(StrictModel):
    date: date
    branch: Annotated[list[str | int], Field(min_length=1, max_length=20,
                                             description="branch codes or ids (several: multi-depot)")]
    source: Literal["orders", "filter", "customers"] = "orders"
    filter: Annotated[dict | None, Field(description="CustomerFilter fields (source=filter)")] = None
    customer_ids: Annotated[list[int] | None, Field(max_length=2000)] = None
    stops: Annotated[list[StopIn], Field(max_length=2000)] = []
    vehicle_ids: list[int] | None = None
    max_vehicles: Annotated[int | None, Field(ge=0, le=500)] = None
    mode: Literal["auto", "network", "haversine"] = "auto"
    time_limit_s: Annotated[float, Field(gt=0, le=600)] = 10
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 1
    detour_factor: Annotated[float, Field(ge=1, le=5)] = 1.3
    speed_kmh: Annotated[float | None, Field(ge=1, le=200)] = None
    name: Annotated[str, Field(max_length=200)] = ""
    wait: Annotated[bool, Field(description="compute within the request instead of in the background")] = False

    @field_validator("branch", mode="before")
    @classmethod
    def _one(cls, v):
        return [v] if isinstance(v, (str, int)) else v


class ReplanIn(StrictModel):
    mode: Literal["auto", "network", "haversine"] | None = None
    time_limit_s: Annotated[float | None, Field(gt=0, le=600)] = None
    seed: Annotated[int | None, Field(ge=0, le=2**31 - 1)] = None
    force: bool = False
    wait: bool = False


class MoveIn(StrictModel):
    stop_id: int
    route_id: Annotated[int | None, Field(description="target route; null takes the stop off the plan")]
    position: Annotated[int | None, Field(ge=1, description="1-based; null appends")] = None


class MovesIn(StrictModel):
    moves: Annotated[list[MoveIn], Field(min_length=1, max_length=500)]


class ExportQuery(StrictModel):
    format: Literal["gpx", "kml", "geojson", "csv", "html"] = "gpx"
    route: Annotated[int | None, Field(ge=1, description="route number (default: all)")] = None


class ListQuery(StrictModel):
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    before: int | None = None


def resolve_branches(session, refs: list) -> list[int]:
    """Branch ids from codes or ids; unknown → 404-style PlanInputError."""
    out = []
    for ref in refs:
        s = str(ref).strip()
        cond = [Branch.code == s.upper()]
        if s.isdigit():
            cond.append(Branch.id == int(s))
        bid = session.scalar(select(Branch.id).where(or_(*cond)))
        if bid is None:
            raise PlanInputError("branch", f"unknown branch {s!r}", 404)
        out.append(int(bid))
    return out


def _plan_error(e: PlanInputError) -> ApiError:
    if e.status == 404:
        return ApiError(404, "not_found", e.problem, [{"field": e.field, "problem": e.problem}])
    if e.status == 403:
        return ApiError(403, "forbidden", e.problem, [{"field": e.field, "problem": e.problem}])
    return validation_error(e.field, e.problem)


def _background() -> bool:
    cfg = current_app.config
    return bool(cfg.get("ROUTES_BACKGROUND", not cfg.get("TESTING")))


def request_from(body: PlanIn, branch_ids: list[int]) -> PlanRequest:
    return PlanRequest(plan_date=body.date, branch_ids=branch_ids, source=body.source,
                       customer_filter=body.filter, customer_ids=body.customer_ids or [],
                       stops=[StopOverride(**s.model_dump()) for s in body.stops], vehicle_ids=body.vehicle_ids,
                       max_vehicles=body.max_vehicles, mode=body.mode, time_limit_s=body.time_limit_s,
                       seed=body.seed, detour_factor=body.detour_factor, speed_kmh=body.speed_kmh, name=body.name)


def _accepted(plan, background: bool):
    head = plan_header(plan)
    head["url"] = f"/api/v1/routes/{plan.id}"
    resp = with_etag(Response(_json(head), status=202 if background else 201, mimetype="application/json"),
                     plan.version)
    resp.headers["Location"] = head["url"]
    return resp


def _json(obj) -> str:
    import json
    return json.dumps(obj, default=str)


@operation("/routes/plan", "POST", summary="Plan delivery routes", tags=["routes"], permission="route.plan",
           body=PlanIn, responses={201: "planned (wait=true)", 202: "queued; poll GET /routes/{id}",
                                   403: "another branch", 404: "unknown branch", 422: "invalid input"})
def plan_routes(body: PlanIn):
    """Plan routes from one or more branches for orders due on `date`, a customer filter or
    an explicit customer list. Explicit customers without coordinates are refused (422);
    orders/filter stops without coordinates come back unassigned with `no_location`."""
    s = db()
    scope = current_scope()
    background = _background() and not body.wait
    try:
        req = request_from(body, resolve_branches(s, body.branch))
        plan = jobs.start_plan(s, scope, req, session_factory=database().Session, background=background)
    except PlanInputError as e:
        s.rollback()
        raise _plan_error(e)
    if not background:
        s.commit()
    return _accepted(plan, background)


@operation("/routes", "GET", summary="List delivery plans", tags=["routes"], permission="route.read",
           query=ListQuery)
def list_routes(query: ListQuery):
    items = list_plans(db(), current_scope(), limit=query.limit, before_id=query.before)
    nxt = items[-1]["id"] if len(items) == query.limit else None
    return {"items": items, "next_before": nxt}


@operation("/routes/<int:plan_id>", "GET", summary="A delivery plan with routes, stops and geometry",
           tags=["routes"], permission="route.read", responses={404: "not found"})
def get_route_plan(plan_id: int):
    d = plan_detail(db(), current_scope(), plan_id)
    return with_etag(Response(_json(d), mimetype="application/json"), d["version"])


@operation("/routes/<int:plan_id>/export", "GET", summary="Export a plan (GPX, KML, GeoJSON, CSV, HTML)",
           tags=["routes"], permission="route.read", query=ExportQuery, responses={404: "not found"},
           content_types=[m for m, _ in exports.FORMATS.values()])
def export_route_plan(plan_id: int, query: ExportQuery):
    d = plan_detail(db(), current_scope(), plan_id)
    if d["status"] != "planned":
        raise ApiError(409, "not_planned", f"the plan is {d['status']}")
    if query.route is not None and not any(r["route_no"] == query.route for r in d["routes"]):
        raise validation_error("route", "no such route in this plan")
    cfg = current_app.config["GEO_CRM"]
    kw = {"nonce": csp_nonce(), "tile_url": cfg.tile_url, "tile_attribution": cfg.tile_attribution,
          "center": cfg.map_center} if query.format == "html" else {}
    data, mimetype, fname = exports.export(d, query.format, query.route, **kw)
    resp = Response(data, mimetype=mimetype.split(";")[0])
    if ";" in mimetype:
        resp.headers["Content-Type"] = mimetype
    disp = "inline" if query.format == "html" and request.args.get("download") is None else "attachment"
    resp.headers["Content-Disposition"] = f'{disp}; filename="{fname}"'
    return resp


@operation("/routes/<int:plan_id>/stops", "PATCH", summary="Move stops by hand; ETAs and totals are recomputed",
           tags=["routes"], permission="route.plan", body=MovesIn,
           responses={404: "not found", 409: "plan not planned", 412: "stale If-Match", 422: "invalid move"})
def move_route_stops(plan_id: int, body: MovesIn):
    """Violations (capacity, late stops, shift overrun) are flagged on the routes and
    stops rather than refused."""
    s = db()
    try:
        plan = move_stops(s, current_scope(), plan_id, [m.model_dump() for m in body.moves],
                          expected_version=if_match_version())
    except EditError as e:
        s.rollback()
        if e.field == "status":
            raise ApiError(409, "not_planned", e.problem)
        raise validation_error(e.field, e.problem)
    s.commit()
    d = plan_detail(s, current_scope(), plan.id)
    return with_etag(Response(_json(d), mimetype="application/json"), d["version"])


@operation("/routes/<int:plan_id>/replan", "POST", summary="Re-plan with the stored request", tags=["routes"],
           permission="route.plan", body=ReplanIn,
           responses={201: "planned", 202: "queued", 404: "not found", 409: "still computing"})
def replan_route_plan(plan_id: int, body: ReplanIn):
    s = db()
    background = _background() and not body.wait
    try:
        plan = jobs.replan(s, current_scope(), plan_id,
                           {"mode": body.mode, "time_limit_s": body.time_limit_s, "seed": body.seed,
                            "force": body.force},
                           session_factory=database().Session, background=background)
    except PlanInputError as e:
        s.rollback()
        raise _plan_error(e)
    except EditError as e:
        s.rollback()
        raise ApiError(409, "busy", e.problem)
    if not background:
        s.commit()
    return _accepted(plan, background)

