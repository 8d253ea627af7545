"""Saving, reading and editing delivery plans (`delivery_plan`, `delivery_route`,
`route_stop`).

* :func:`create_plan` writes the queued plan row; :func:`save_result` replaces its routes
  and stops with a computed :class:`~geo_crm.routing.planner.PlanResult` and marks it
  planned — in the caller's single transaction, so a plan is never half-written.
* Visibility (:func:`plan_filter`): `route.read` roles; admin and executive see every plan,
  logistics staff only plans whose depots are all their branch and whose stops are all
  customers they can see. Anything else answers NotFound (404).
* :func:`move_stops` moves stops by hand (to another route/position, or off the plan),
  then :func:`recompute_route` rebuilds ETAs, load, distance, duration and geometry with
  the plan's cost mode and flags violations (capacity, time window, shift) on the route
  and on each late stop instead of refusing the edit.

Times are timestamptz (ETAs on the plan date in the plan's time zone); distances metres,
durations seconds, geometry EPSG:4326.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, not_, select, text, true
from sqlalchemy.orm import Session

from geo_crm.errors import Forbidden, check_version, get_visible
from geo_crm.models import Customer, DeliveryPlan, DeliveryRoute, RouteStop, Vehicle
from geo_crm.security.scope import Scope

from . import haversine, network
from .planner import PlanRequest, PlanResult

try:  # the palette of the map layer, so colours match everywhere
    from maps.layers import ROUTE_PALETTE
except Exception:  # pragma: no cover
    ROUTE_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


class EditError(ValueError):
    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


# ----------------------------------------------------------------------------- visibility

def plan_filter(scope: Scope):
    """SQL predicate over DeliveryPlan for plans `scope` may read."""
    if not scope.can("route.read"):
        return func.false()
    if scope.sees_everything:
        return true()
    if scope.role == "logistics" and scope.branch_id is not None:
        only_mine = DeliveryPlan.params["branch_ids"] == func.jsonb_build_array(scope.branch_id)
        hidden = (select(RouteStop.id).join(Customer, Customer.id == RouteStop.customer_id)
                  .where(RouteStop.plan_id == DeliveryPlan.id, not_(scope.customer_filter()))
                  .correlate(DeliveryPlan).exists())
        return and_(only_mine, not_(hidden))
    return func.false()


def get_plan(session: Session, scope: Scope, plan_id: int, *, for_update: bool = False) -> DeliveryPlan:
    """The plan, or NotFound when it does not exist or the caller may not see it."""
    return get_visible(session, DeliveryPlan, plan_id, plan_filter(scope), for_update=for_update)


def list_plans(session: Session, scope: Scope, *, limit: int = 50, before_id: int | None = None) -> list[dict]:
    q = select(DeliveryPlan).where(plan_filter(scope)).order_by(DeliveryPlan.id.desc()).limit(limit)
    if before_id:
        q = q.where(DeliveryPlan.id < before_id)
    return [plan_header(p) for p in session.scalars(q)]


def plan_header(p: DeliveryPlan) -> dict:
    return {"id": p.id, "name": p.name, "plan_date": p.plan_date.isoformat(), "cost_mode": p.cost_mode,
            "status": p.status, "error": p.error, "summary": p.summary or {}, "version": p.version,
            "branch_ids": (p.params or {}).get("branch_ids", []),
            "created_at": p.created_at.isoformat() if p.created_at else None}


# ----------------------------------------------------------------------------- writing

def create_plan(session: Session, req: PlanRequest, *, user_id: int | None, status: str = "queued") -> DeliveryPlan:
    plan = DeliveryPlan(name=req.name or f"Deliveries {req.plan_date.isoformat()}", plan_date=req.plan_date,
                        cost_mode="haversine" if req.mode == "haversine" else "network", status=status,
                        params=req.to_params(), summary={}, created_by=user_id)
    session.add(plan)
    session.flush()
    return plan


def _ewkt(wkt: str | None) -> str | None:
    return None if wkt is None else "SRID=4326;" + wkt


def save_result(session: Session, plan: DeliveryPlan, result: PlanResult) -> None:
    """Replace the plan's routes and stops with `result` and mark it planned."""
    prep = result.prepared
    session.execute(delete(RouteStop).where(RouteStop.plan_id == plan.id))
    session.execute(delete(DeliveryRoute).where(DeliveryRoute.plan_id == plan.id))
    session.expire(plan, ["routes"])
    for no, r in enumerate(result.routes, start=1):
        route = DeliveryRoute(plan_id=plan.id, route_no=no, branch_id=r.depot.branch_id, vehicle_id=r.vehicle.id,
                              start_at=prep.at(r.start_s), end_at=prep.at(r.end_s), distance_m=r.distance_m,
                              duration_s=r.duration_s, load=r.load,
                              color=ROUTE_PALETTE[(no - 1) % len(ROUTE_PALETTE)], violations=[],
                              geom=_ewkt(r.wkt))
        session.add(route)
        session.flush()
        for s in r.stops:
            session.add(_stop_row(plan.id, route.id, s, prep))
    for u in result.unassigned:
        session.add(_stop_row(plan.id, None, u, prep))
    plan.cost_mode = result.mode
    plan.status = "planned"
    plan.error = None
    plan.summary = result.summary()
    session.flush()


def _stop_row(plan_id: int, route_id: int | None, s, prep) -> RouteStop:
    i = s.info
    has_loc = i.lon is not None and i.lat is not None
    return RouteStop(plan_id=plan_id, route_id=route_id, seq=s.seq, customer_id=i.customer_id, order_id=i.order_id,
                     eta=prep.at(s.start_s) if route_id else None,
                     departure=prep.at(s.departure_s) if route_id else None,
                     demand=i.demand, load_after=s.load_after, service_min=min(i.service_s // 60, 32767),
                     tw_start=prep.at(i.tw_start_s) if i.tw_start_s else None, tw_end=prep.at(i.tw_end_s),
                     required=i.required, priority=i.priority,
                     unassigned_reason=None if route_id else s.reason,
                     violation=None if route_id else (s.detail or None),
                     geom=f"SRID=4326;POINT({i.lon} {i.lat})" if has_loc else "SRID=4326;POINT EMPTY")


def mark_failed(session: Session, plan: DeliveryPlan, message: str) -> None:
    plan.status = "failed"
    plan.error = message[:2000]
    session.flush()


# ----------------------------------------------------------------------------- reading

def plan_detail(session: Session, scope: Scope, plan_id: int) -> dict[str, Any]:
    """The plan as plain data: routes with ordered stops and GeoJSON geometry, and the
    unassigned stops. Customer fields are limited to what the Scope may read."""
    plan = get_plan(session, scope, plan_id)
    routes = session.execute(
        select(DeliveryRoute, Vehicle.name, func.ST_AsGeoJSON(DeliveryRoute.geom, 7))
        .outerjoin(Vehicle, Vehicle.id == DeliveryRoute.vehicle_id)
        .where(DeliveryRoute.plan_id == plan.id).order_by(DeliveryRoute.route_no)).all()
    stops = session.execute(
        select(RouteStop, Customer.code, Customer.name, Customer.address, Customer.city, Customer.phone,
               Customer.delivery_notes, func.ST_X(RouteStop.geom), func.ST_Y(RouteStop.geom))
        .join(Customer, Customer.id == RouteStop.customer_id)
        .where(RouteStop.plan_id == plan.id)
        .order_by(RouteStop.route_id.nulls_last(), RouteStop.seq, RouteStop.id)).all()
    import json
    from zoneinfo import ZoneInfo
    tz = ZoneInfo((plan.params or {}).get("timezone") or "Europe/Helsinki")

    def _iso(v):
        return v.astimezone(tz).isoformat() if v else None
    by_route: dict[int | None, list[dict]] = {}
    for st, code, name, address, city, phone, notes, x, y in stops:
        by_route.setdefault(st.route_id, []).append({
            "id": st.id, "seq": st.seq, "customer_id": st.customer_id, "customer_code": code,
            "name": name, "address": ", ".join(p for p in (address, city) if p), "phone": phone,
            "notes": notes or "", "order_id": st.order_id,
            "eta": _iso(st.eta), "departure": _iso(st.departure), "demand": st.demand,
            "load_after": st.load_after, "service_min": st.service_min,
            "tw_start": _iso(st.tw_start), "tw_end": _iso(st.tw_end), "required": st.required,
            "priority": st.priority, "unassigned_reason": st.unassigned_reason, "violation": st.violation,
            "lon": x, "lat": y})
    out_routes = []
    for r, vname, gj in routes:
        out_routes.append({
            "id": r.id, "route_no": r.route_no, "branch_id": r.branch_id, "vehicle_id": r.vehicle_id,
            "vehicle": vname or f"Route {r.route_no}", "color": r.color, "start_at": _iso(r.start_at),
            "end_at": _iso(r.end_at), "distance_m": round(r.distance_m, 1), "duration_s": round(r.duration_s, 1),
            "load": r.load, "violations": r.violations or [],
            "geometry": json.loads(gj) if gj else None, "stops": by_route.get(r.id, [])})
    return {**plan_header(plan), "params": plan.params, "routes": out_routes,
            "unassigned": by_route.get(None, [])}


def _iso(v: datetime | None) -> str | None:
    return v.isoformat() if v else None


# ----------------------------------------------------------------------------- manual edits

def move_stops(session: Session, scope: Scope, plan_id: int, moves: list[dict], *,
               expected_version: int | None = None) -> DeliveryPlan:
    """Apply `moves` = [{"stop_id", "route_id" (None: take off the plan), "position" (1-based,
    None: append)}], then recompute every touched route. Violations are flagged, not refused."""
    plan = get_plan(session, scope, plan_id, for_update=True)
    if not scope.can("route.plan"):
        raise Forbidden("route.plan")
    check_version(plan.version, expected_version)
    if plan.status != "planned":
        raise EditError("status", f"the plan is {plan.status}; wait until it is planned")
    routes = {r.id: r for r in session.scalars(select(DeliveryRoute).where(DeliveryRoute.plan_id == plan.id))}
    stops = {s.id: s for s in session.scalars(select(RouteStop).where(RouteStop.plan_id == plan.id))}
    touched: set[int] = set()
    for i, m in enumerate(moves):
        st = stops.get(m.get("stop_id"))
        if st is None:
            raise EditError(f"moves.{i}.stop_id", "no such stop in this plan")
        target = m.get("route_id")
        if target is not None and target not in routes:
            raise EditError(f"moves.{i}.route_id", "no such route in this plan")
        if target is not None and st.unassigned_reason == "no_location":
            raise EditError(f"moves.{i}.stop_id", "a stop without coordinates cannot be routed")
        if st.route_id is not None:
            touched.add(st.route_id)
        members = sorted((s for s in stops.values() if s.route_id == target and s.id != st.id and target is not None),
                         key=lambda s: s.seq or 0)
        if target is None:
            st.route_id, st.seq, st.eta, st.departure, st.load_after = None, None, None, None, None
            st.unassigned_reason, st.violation = "not_selected", "removed by hand"
            continue
        pos = m.get("position")
        if pos is None:
            pos = len(members) + 1
        if not 1 <= int(pos) <= len(members) + 1:
            raise EditError(f"moves.{i}.position", f"must be between 1 and {len(members) + 1}")
        members.insert(int(pos) - 1, st)
        st.route_id, st.unassigned_reason, st.violation = target, None, None
        for k, s in enumerate(members, start=1):
            s.seq = k
        touched.add(target)
    session.flush()
    for rid in sorted(touched):
        recompute_route(session, plan, routes[rid])
    _refresh_summary(session, plan)
    plan.summary = {**(plan.summary or {}), "edited": True}
    session.flush()
    return plan


def recompute_route(session: Session, plan: DeliveryPlan, route: DeliveryRoute) -> None:
    """Rebuild ETAs, load, totals and geometry of one route from its stop order with the
    plan's cost mode; flag capacity, time-window and shift violations."""
    from zoneinfo import ZoneInfo

    from .planner import PlanRequest as _PR
    req = _PR.from_params(plan.params)
    tz = ZoneInfo(req.timezone)
    midnight = datetime.combine(plan.plan_date, datetime.min.time(), tz)
    stops = list(session.scalars(select(RouteStop).where(RouteStop.route_id == route.id).order_by(RouteStop.seq)))
    depot = session.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM branch WHERE id = :b"),
                            {"b": route.branch_id}).one()
    veh = session.get(Vehicle, route.vehicle_id) if route.vehicle_id else None
    coords = session.execute(select(RouteStop.id, func.ST_X(RouteStop.geom), func.ST_Y(RouteStop.geom))
                             .where(RouteStop.route_id == route.id)).all()
    xy = {sid: (x, y) for sid, x, y in coords}
    pts = [tuple(depot)] + [xy[s.id] for s in stops] + [tuple(depot)]
    conn = session.connection()
    if plan.cost_mode == "network":
        snaps = network.snap_points(conn, pts, max_snap_m=req.max_snap_m)
        dist, dur = network.travel_matrices(conn, snaps)
        legs = [(snaps[k].vertex, snaps[k + 1].vertex) for k in range(len(pts) - 1)]
        geo = network.leg_geometries(conn, legs)
        from shapely import wkt as swkt
        line: list[tuple[float, float]] = []
        for k, leg in enumerate(legs):
            line.append(pts[k])
            g = geo.get(leg)
            if g and g["wkt"]:
                gg = swkt.loads(g["wkt"])
                for p in (gg.geoms if gg.geom_type == "MultiLineString" else [gg]):
                    line.extend(p.coords)
        line.append(pts[-1])
    else:
        speed = req.speed_kmh or (veh.speed_kmh if veh else 50)
        dist, dur = haversine.travel_matrices([p[0] for p in pts], [p[1] for p in pts],
                                              detour_factor=req.detour_factor, speed_kmh=speed)
        line = list(pts)
    n = len(pts)
    start = route.start_at or (midnight + timedelta(hours=7))
    t = start
    total_m = 0.0
    violations: list[str] = []
    load = sum(s.demand for s in stops)
    on_board = load
    for k, s in enumerate(stops, start=1):
        leg_m, leg_s = int(dist[k - 1, k]), int(dur[k - 1, k])
        if leg_m >= 10**12:
            violations.append(f"stop {k}: unreachable on the road network")
            leg_m, leg_s = 0, 0
        total_m += leg_m
        arrival = t + timedelta(seconds=leg_s)
        begin = max(arrival, s.tw_start) if s.tw_start else arrival
        s.eta = begin
        s.departure = begin + timedelta(minutes=s.service_min)
        on_board -= s.demand
        s.load_after = on_board
        s.violation = None
        if s.tw_end and begin > s.tw_end:
            late = int((begin - s.tw_end).total_seconds() // 60)
            s.violation = f"time_window: {late} min after the window closes"
            violations.append(f"stop {k}: late by {late} min")
        t = s.departure
    back_m, back_s = int(dist[n - 2, n - 1]), int(dur[n - 2, n - 1])
    if back_m >= 10**12:
        violations.append("return to depot unreachable")
        back_m, back_s = 0, 0
    total_m += back_m
    end = t + timedelta(seconds=back_s)
    if veh is not None:
        if load > veh.capacity:
            violations.append(f"capacity: load {load} exceeds {veh.capacity}")
        shift_end = datetime.combine(plan.plan_date, veh.shift_end, tz)
        if end > shift_end:
            violations.append(f"shift: returns {int((end - shift_end).total_seconds() // 60)} min after the shift ends")
        if (end - start).total_seconds() > veh.max_duration_min * 60:
            violations.append(f"duration: exceeds {veh.max_duration_min} min")
    route.load, route.distance_m = load, float(total_m)
    route.start_at, route.end_at = start, end
    route.duration_s = (end - start).total_seconds()
    route.violations = violations
    dedup = [line[0]] + [c for a, c in zip(line, line[1:]) if c != a]
    if len(dedup) < 2:
        dedup = dedup * 2
    route.geom = "SRID=4326;LINESTRING(" + ", ".join(f"{x:.7f} {y:.7f}" for x, y in dedup) + ")"
    if not stops:
        route.distance_m, route.duration_s, route.end_at = 0.0, 0.0, start
    session.flush()


def _refresh_summary(session: Session, plan: DeliveryPlan) -> None:
    tot = session.execute(select(func.count(DeliveryRoute.id), func.coalesce(func.sum(DeliveryRoute.distance_m), 0),
                                 func.coalesce(func.sum(DeliveryRoute.duration_s), 0),
                                 func.coalesce(func.sum(DeliveryRoute.load), 0))
                          .where(DeliveryRoute.plan_id == plan.id)).one()
    served = session.scalar(select(func.count()).where(RouteStop.plan_id == plan.id, RouteStop.route_id.is_not(None)))
    un = session.execute(select(RouteStop.unassigned_reason, func.count()).where(
        RouteStop.plan_id == plan.id, RouteStop.route_id.is_(None)).group_by(RouteStop.unassigned_reason)).all()
    viol = [v for (vs,) in session.execute(select(DeliveryRoute.violations).where(DeliveryRoute.plan_id == plan.id))
            for v in (vs or [])]
    plan.summary = {**(plan.summary or {}), "routes": tot[0], "distance_m": round(float(tot[1]), 1),
                    "duration_s": round(float(tot[2]), 1), "load": int(tot[3]), "served": served,
                    "unassigned": sum(c for _, c in un), "unassigned_by_reason": {r: c for r, c in un},
                    "stops": served + sum(c for _, c in un), "violations": viol, "feasible": not viol}
