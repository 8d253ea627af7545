"""Build a routing :class:`Problem` from the CRM database, choose the cost mode, solve
it and produce road-following route geometry.

Two phases, so that bad input is refused before anything is written and the slow part
can run in the background:

* :func:`prepare` (session, scope, request) reads branches, vehicles, stops (orders due
  on a date, a customer filter, or explicit customers) through the caller's Scope and
  validates everything; it raises :class:`PlanInputError` (→ 4xx) and returns a plain
  :class:`Prepared` (no ORM objects, safe to hand to another thread).
* :func:`compute` (connection, prepared) builds matrices (pgRouting or haversine), runs
  the solver and traces the geometry; it needs no Scope.

Clock: every time is an integer number of seconds since local midnight of the plan
date in `timezone` (default Europe/Helsinki). Distances metres, durations seconds,
coordinates EPSG:4326.

Stops without coordinates are reported unassigned with reason ``no_location`` for
orders and filters; in an explicit customer list they are a 422 (the caller named
them, so silently dropping them would hide a data problem).
"""
from __future__ import annotations

import time as _time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from geo_crm.customers.filters import CustomerFilter, FilterError, apply as apply_filter
from geo_crm.models import Branch, Customer, Order, Vehicle
from geo_crm.security.scope import Scope

from . import haversine, network
from .problem import NO_LIMIT, UNREACHABLE, Depot, Problem, Solution, Stop, VehicleType
from .solver import PyVRPSolver, Solver

DEFAULT_TIMEZONE = "Europe/Helsinki"
MAX_STOPS = 2000
#: Prize (in cost units = metres of driving) per priority point of an optional stop.
PRIZE_PER_PRIORITY_M = 2000
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PlanInputError(ValueError):
    """Bad planning input: `status` 404 (unknown/invisible), 403 (not allowed) or 422."""

    def __init__(self, field: str, problem: str, status: int = 422):
        super().__init__(f"{field}: {problem}")
        self.field, self.problem, self.status = field, problem, status


@dataclass
class StopOverride:
    customer_id: int
    required: bool = True
    priority: int = 0
    tw_start: str | None = None   # "HH:MM" local time
    tw_end: str | None = None
    demand: int | None = None
    service_min: int | None = None


@dataclass
class PlanRequest:
    plan_date: date
    branch_ids: list[int]
    source: Literal["orders", "filter", "customers"] = "orders"
    customer_filter: dict | None = None
    customer_ids: list[int] = field(default_factory=list)
    stops: list[StopOverride] = field(default_factory=list)
    vehicle_ids: list[int] | None = None
    max_vehicles: int | None = None
    mode: Literal["auto", "network", "haversine"] = "auto"
    time_limit_s: float = 10.0
    seed: int = 1
    detour_factor: float = 1.3
    speed_kmh: float | None = None       # haversine speed; default: the vehicles' speed
    max_snap_m: float = network.DEFAULT_MAX_SNAP_M
    timezone: str = DEFAULT_TIMEZONE
    name: str = ""

    def to_params(self) -> dict:
        d = asdict(self)
        d["plan_date"] = self.plan_date.isoformat()
        return d

    @classmethod
    def from_params(cls, d: dict) -> "PlanRequest":
        d = dict(d)
        d["plan_date"] = date.fromisoformat(d["plan_date"])
        d["stops"] = [StopOverride(**s) for s in d.get("stops") or []]
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class StopInfo:
    """A candidate stop as read from the DB (display data + solver input)."""
    customer_id: int
    order_id: int | None
    name: str
    address: str
    phone: str
    notes: str
    lon: float | None
    lat: float | None
    demand: int
    service_s: int
    tw_start_s: int
    tw_end_s: int
    required: bool
    priority: int
    problem: str | None = None      # reason it cannot be planned at all (no_location / time_window)

    @property
    def key(self) -> str:
        return f"o{self.order_id}" if self.order_id is not None else f"c{self.customer_id}"


@dataclass
class VehicleInfo:
    id: int
    name: str
    branch_id: int
    capacity: int
    shift_start_s: int
    shift_end_s: int
    max_duration_s: int
    speed_kmh: float


@dataclass
class DepotInfo:
    branch_id: int
    code: str
    name: str
    lon: float
    lat: float
    open_s: int
    close_s: int


@dataclass
class Prepared:
    request: PlanRequest
    depots: list[DepotInfo]
    vehicles: list[VehicleInfo]
    stops: list[StopInfo]
    warnings: list[str] = field(default_factory=list)

    @property
    def midnight(self) -> datetime:
        return datetime.combine(self.request.plan_date, time(0), ZoneInfo(self.request.timezone))

    def at(self, seconds: int | float | None) -> datetime | None:
        """Wall-clock time of a clock value (seconds since local midnight)."""
        if seconds is None or seconds >= NO_LIMIT:
            return None
        return self.midnight + timedelta(seconds=float(seconds))


def _secs(t: time | None) -> int | None:
    return None if t is None else t.hour * 3600 + t.minute * 60 + t.second


def _hhmm(v: str, fld: str) -> int:
    try:
        h, m = v.split(":")
        h, m = int(h), int(m)
        if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
            raise ValueError
    except (ValueError, AttributeError):
        raise PlanInputError(fld, "must be a time HH:MM")
    return h * 3600 + m * 60


# ----------------------------------------------------------------------------- prepare

def prepare(session, scope: Scope, req: PlanRequest) -> Prepared:
    """Read and validate the planning input through `scope` (see module docstring)."""
    if not scope.can("route.plan"):
        raise PlanInputError("permission", "you may not plan routes", 403)
    try:
        tz = ZoneInfo(req.timezone)
    except Exception:
        raise PlanInputError("timezone", "unknown time zone")
    if not req.branch_ids:
        raise PlanInputError("branch", "give at least one branch")
    if not 0 < req.time_limit_s <= 600:
        raise PlanInputError("time_limit_s", "must be between 0 and 600 seconds")
    if not (1.0 <= req.detour_factor <= 5.0):
        raise PlanInputError("detour_factor", "must be between 1 and 5")
    if req.speed_kmh is not None and not (1 <= req.speed_kmh <= 200):
        raise PlanInputError("speed_kmh", "must be between 1 and 200 km/h")
    del tz
    depots = _load_depots(session, scope, req)
    vehicles = _load_vehicles(session, req, depots)
    warnings: list[str] = []
    if req.source == "orders":
        stops = _order_stops(session, scope, req, depots)
    elif req.source == "filter":
        stops = _filter_stops(session, scope, req)
    elif req.source == "customers":
        stops = _explicit_stops(session, scope, req)
    else:
        raise PlanInputError("source", "must be orders, filter or customers")
    _apply_overrides(stops, req)
    if len(stops) > MAX_STOPS:
        raise PlanInputError("stops", f"at most {MAX_STOPS} stops per plan (got {len(stops)})")
    wd = WEEKDAYS[req.plan_date.weekday()]
    for d in depots:
        if d.open_s == 0 and d.close_s >= NO_LIMIT:
            warnings.append(f"{d.code}: no opening hours for {wd}; vehicle shifts apply")
    return Prepared(req, depots, vehicles, stops, warnings)


def _load_depots(session, scope: Scope, req: PlanRequest) -> list[DepotInfo]:
    ids = list(dict.fromkeys(int(b) for b in req.branch_ids))
    rows = session.execute(select(Branch.id, Branch.code, Branch.name, Branch.opening_hours,
                                  func.ST_X(Branch.geom), func.ST_Y(Branch.geom))
                           .where(Branch.id.in_(ids))).all()
    found = {r[0]: r for r in rows}
    missing = [b for b in ids if b not in found]
    if missing:
        raise PlanInputError("branch", f"unknown branch {missing[0]}", 404)
    if scope.role == "logistics" and any(b != scope.branch_id for b in ids):
        raise PlanInputError("branch", "logistics staff plan routes for their own branch only", 403)
    wd = WEEKDAYS[req.plan_date.weekday()]
    out = []
    for b in ids:
        _, code, name, hours, x, y = found[b]
        open_s, close_s = 0, NO_LIMIT
        span = (hours or {}).get(wd)
        if span and len(span) == 2:
            try:
                open_s, close_s = _hhmm(span[0], "opening_hours"), _hhmm(span[1], "opening_hours")
            except PlanInputError:
                open_s, close_s = 0, NO_LIMIT
        out.append(DepotInfo(b, code, name, float(x), float(y), open_s, close_s))
    return out


def _load_vehicles(session, req: PlanRequest, depots: list[DepotInfo]) -> list[VehicleInfo]:
    q = select(Vehicle).where(Vehicle.branch_id.in_([d.branch_id for d in depots]), Vehicle.active.is_(True)) \
        .order_by(Vehicle.branch_id, Vehicle.id)
    vs = list(session.scalars(q))
    if req.vehicle_ids is not None:
        wanted = set(int(v) for v in req.vehicle_ids)
        unknown = wanted - {v.id for v in vs}
        if unknown:
            raise PlanInputError("vehicle_ids", f"vehicle {sorted(unknown)[0]} is not an active vehicle of the branch")
        vs = [v for v in vs if v.id in wanted]
    if req.max_vehicles is not None:
        if req.max_vehicles < 0:
            raise PlanInputError("max_vehicles", "must not be negative")
        vs = vs[: req.max_vehicles]
    if not vs:
        raise PlanInputError("vehicles", "the plan has zero vehicles (the branch has no active vehicle or "
                                         "none was selected)")
    return [VehicleInfo(v.id, v.name, v.branch_id, int(v.capacity), _secs(v.shift_start), _secs(v.shift_end),
                        int(v.max_duration_min) * 60, float(v.speed_kmh)) for v in vs]


def _customer_cols(C=Customer):
    return (C.id, C.name, C.address, C.city, C.phone, C.delivery_notes, C.delivery_start, C.delivery_end,
            C.service_min)


def _stop_from(row, *, order_id=None, demand=0, lon=None, lat=None, notes_extra="") -> StopInfo:
    cid, name, address, city, phone, notes, dstart, dend, service_min = row[:9]
    tws, twe = _secs(dstart), _secs(dend)
    problem = None
    if tws is not None and twe is not None and twe < tws:
        problem = "time_window"
    if lon is None or lat is None:
        problem = "no_location"
    full_addr = ", ".join(p for p in (address, city) if p)
    note = " · ".join(p for p in (notes, notes_extra) if p)
    return StopInfo(int(cid), order_id, name, full_addr, phone or "", note,
                    None if lon is None else float(lon), None if lat is None else float(lat),
                    int(demand or 0), int(service_min or 0) * 60,
                    0 if tws is None else tws, NO_LIMIT if twe is None else twe, True, 0, problem)


def _order_stops(session, scope: Scope, req: PlanRequest, depots) -> list[StopInfo]:
    # an alias, so that the Scope's EXISTS predicates over Customer stay uncorrelated
    C = aliased(Customer)
    geom = func.coalesce(Order.delivery_geom, C.geom)
    q = (select(*_customer_cols(C), Order.id, Order.total_load, Order.notes, func.ST_X(geom), func.ST_Y(geom))
         .select_from(Order).join(C, C.id == Order.customer_id)
         .where(Order.delivery_date == req.plan_date, Order.status == "confirmed",
                C.service_branch_id.in_([d.branch_id for d in depots]),
                scope.order_filter(), scope.customer_filter(C.id))
         .order_by(Order.id))
    if req.customer_ids:
        q = q.where(C.id.in_(req.customer_ids))
    return [_stop_from(r, order_id=r[9], demand=r[10], notes_extra=r[11] or "", lon=r[12], lat=r[13])
            for r in session.execute(q)]


def _filter_stops(session, scope: Scope, req: PlanRequest) -> list[StopInfo]:
    try:
        f = CustomerFilter.model_validate(req.customer_filter or {})
    except Exception as e:
        raise PlanInputError("customer_filter", str(e).splitlines()[0][:200])
    q = select(*_customer_cols(), func.ST_X(Customer.geom), func.ST_Y(Customer.geom)).order_by(Customer.id)
    try:
        q = apply_filter(q, f, scope)
    except FilterError as e:
        raise PlanInputError(f"customer_filter.{e.field}", e.problem)
    q = q.limit(MAX_STOPS + 1)
    return [_stop_from(r, lon=r[9], lat=r[10]) for r in session.execute(q)]


def _explicit_stops(session, scope: Scope, req: PlanRequest) -> list[StopInfo]:
    ids = list(dict.fromkeys(int(c) for c in (req.customer_ids or [s.customer_id for s in req.stops])))
    if not ids:
        raise PlanInputError("customer_ids", "give at least one customer")
    if len(ids) > MAX_STOPS:
        raise PlanInputError("customer_ids", f"at most {MAX_STOPS} customers")
    rows = session.execute(select(*_customer_cols(), func.ST_X(Customer.geom), func.ST_Y(Customer.geom))
                           .where(Customer.id.in_(ids), scope.customer_filter())).all()
    by_id = {r[0]: r for r in rows}
    for cid in ids:
        if cid not in by_id:   # unknown and invisible look the same
            raise PlanInputError("customer_ids", f"unknown customer {cid}")
    stops = [_stop_from(by_id[c], lon=by_id[c][9], lat=by_id[c][10]) for c in ids]
    for s in stops:
        if s.problem == "no_location":
            raise PlanInputError("customer_ids", f"customer {s.customer_id} has no coordinates; geocode it first")
    return stops


def _apply_overrides(stops: list[StopInfo], req: PlanRequest) -> None:
    by_c: dict[int, list[StopInfo]] = {}
    for s in stops:
        by_c.setdefault(s.customer_id, []).append(s)
    for i, o in enumerate(req.stops):
        fld = f"stops.{i}"
        if o.customer_id not in by_c:
            raise PlanInputError(f"{fld}.customer_id", f"customer {o.customer_id} is not among the plan's stops")
        if not 0 <= o.priority <= 100:
            raise PlanInputError(f"{fld}.priority", "must be between 0 and 100")
        tws = _hhmm(o.tw_start, f"{fld}.tw_start") if o.tw_start else None
        twe = _hhmm(o.tw_end, f"{fld}.tw_end") if o.tw_end else None
        if tws is not None and twe is not None and twe <= tws:
            raise PlanInputError(f"{fld}.tw_end", "the time window ends before it starts")
        if o.demand is not None and o.demand < 0:
            raise PlanInputError(f"{fld}.demand", "must not be negative")
        if o.service_min is not None and not 0 <= o.service_min <= 600:
            raise PlanInputError(f"{fld}.service_min", "must be between 0 and 600 minutes")
        for s in by_c[o.customer_id]:
            s.required, s.priority = bool(o.required), int(o.priority)
            if tws is not None:
                s.tw_start_s = tws
            if twe is not None:
                s.tw_end_s = twe
            if tws is not None or twe is not None:
                s.problem = None if s.problem == "time_window" and s.tw_end_s >= s.tw_start_s else s.problem
            if o.demand is not None:
                s.demand = int(o.demand)
            if o.service_min is not None:
                s.service_s = int(o.service_min) * 60


# ----------------------------------------------------------------------------- compute

@dataclass
class PlannedStop:
    info: StopInfo
    route_index: int | None
    seq: int | None = None
    arrival_s: int | None = None
    start_s: int | None = None
    departure_s: int | None = None
    load_after: int | None = None
    reason: str | None = None
    detail: str = ""


@dataclass
class PlannedRoute:
    vehicle: VehicleInfo
    depot: DepotInfo
    start_s: int
    end_s: int
    distance_m: float
    duration_s: float
    load: int
    wkt: str | None
    stops: list[PlannedStop]


@dataclass
class PlanResult:
    prepared: Prepared
    mode: str
    problem: Problem | None
    solution: Solution | None
    routes: list[PlannedRoute]
    unassigned: list[PlannedStop]
    timings: dict[str, float]
    warnings: list[str]

    def summary(self) -> dict[str, Any]:
        served = sum(len(r.stops) for r in self.routes)
        reasons: dict[str, int] = {}
        for u in self.unassigned:
            reasons[u.reason] = reasons.get(u.reason, 0) + 1
        return {"mode": self.mode, "routes": len(self.routes), "stops": served + len(self.unassigned),
                "served": served, "unassigned": len(self.unassigned), "unassigned_by_reason": reasons,
                "distance_m": round(sum(r.distance_m for r in self.routes), 1),
                "duration_s": round(sum(r.duration_s for r in self.routes), 1),
                "load": sum(r.load for r in self.routes),
                "feasible": bool(self.solution.feasible) if self.solution else True,
                "violations": list(self.solution.violations) if self.solution else [],
                "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
                "warnings": self.warnings}


def choose_mode(conn, prepared: Prepared, requested: str) -> tuple[str, list[network.Snap] | None]:
    """`auto`: network when every depot and located stop is covered by the road network."""
    if requested == "haversine":
        return "haversine", None
    pts = [(d.lon, d.lat) for d in prepared.depots] + \
          [(s.lon, s.lat) for s in prepared.stops if s.problem is None]
    if network.network_size(conn) == 0:
        if requested == "network":
            raise PlanInputError("mode", "no road network is imported (geo-crm roads import FILE.osm.pbf)")
        return "haversine", None
    snaps = network.snap_points(conn, pts, max_snap_m=prepared.request.max_snap_m)
    if requested == "network":
        if not all(s.covered for s in snaps[: len(prepared.depots)]):
            raise PlanInputError("mode", "the depot lies outside the road network's coverage; use haversine")
        return "network", snaps
    return ("network", snaps) if all(s.covered for s in snaps) else ("haversine", None)


def build_problem(conn, prepared: Prepared, mode: str, snaps) -> tuple[Problem, list[StopInfo]]:
    """The solver Problem over the plannable stops (those without a `problem`)."""
    req = prepared.request
    plannable = [s for s in prepared.stops if s.problem is None]
    depots = [Depot(d.branch_id, d.lon, d.lat, d.open_s, d.close_s) for d in prepared.depots]
    didx = {d.branch_id: i for i, d in enumerate(prepared.depots)}
    vts = [VehicleType(depot=didx[v.branch_id], count=1, capacity=v.capacity, shift_start_s=v.shift_start_s,
                       shift_end_s=v.shift_end_s, max_duration_s=v.max_duration_s, name=v.name,
                       vehicle_ids=[v.id]) for v in prepared.vehicles]
    stops = [Stop(s.key, s.lon, s.lat, s.demand, s.service_s, s.tw_start_s, s.tw_end_s, s.required,
                  0 if s.required else (s.priority + 1) * PRIZE_PER_PRIORITY_M) for s in plannable]
    lons = [d.lon for d in depots] + [s.lon for s in stops]
    lats = [d.lat for d in depots] + [s.lat for s in stops]
    if mode == "network":
        dist, dur = network.travel_matrices(conn, snaps)
        uncovered = [i for i, s in enumerate(snaps) if not s.covered]
        if uncovered:     # forced network mode: points off the network are unreachable
            idx = np.array(uncovered)
            for m in (dist, dur):
                m[idx, :] = UNREACHABLE
                m[:, idx] = UNREACHABLE
                m[idx, idx] = 0
    else:
        speed = req.speed_kmh or float(np.median([v.speed_kmh for v in prepared.vehicles]))
        dist, dur = haversine.travel_matrices(lons, lats, detour_factor=req.detour_factor, speed_kmh=speed)
    _soften_required(stops, dist, len(depots))
    return Problem(depots, vts, stops, dist, dur, name=req.name), plannable


def _soften_required(stops: list[Stop], dist: np.ndarray, n_depots: int) -> None:
    """Required stops become optional with a prize well above the detour they can cause,
    so that when not everything fits (too little capacity or time) the solver still
    returns a feasible plan that serves as many required stops as possible, and the rest
    come back unassigned with a reason — instead of overloaded or late routes.

    The prize is 2 × the longest round trip from a stop to its nearest depot + 100 km
    (cost units = metres): above the detour any sensible route needs for a stop, yet small
    enough to keep the objective well scaled. Larger prizes measurably degrade PyVRP's
    search: on the 1,000-stop Finland bench a prize of ~3,900 km left 11 % of the stops
    unserved and 600 km left 12 %, while ~160 km serves all 1,000 in the same time."""
    if not stops:
        return
    d = dist.astype(float)
    d[d >= UNREACHABLE] = np.nan
    rt = d[:n_depots, n_depots:] + d[n_depots:, :n_depots].T          # depot → stop → depot
    with np.errstate(all="ignore"):
        nearest = np.nanmin(np.where(np.isnan(rt), np.inf, rt), axis=0)
    finite = nearest[np.isfinite(nearest)]
    big = int(2 * (finite.max() if finite.size else 0) + 100_000)
    for st in stops:
        if st.required:
            st.required = False
            st.prize = big + st.prize


def compute(conn, prepared: Prepared, solver: Solver | None = None) -> PlanResult:
    """Matrices, solve and geometry for a prepared plan (see module docstring)."""
    req = prepared.request
    timings: dict[str, float] = {}
    t0 = _time.perf_counter()
    mode, snaps = choose_mode(conn, prepared, req.mode)
    prob, plannable = build_problem(conn, prepared, mode, snaps)
    timings["matrix"] = _time.perf_counter() - t0
    unassigned = [PlannedStop(s, None, reason=s.problem,
                              detail="no coordinates" if s.problem == "no_location" else
                              "the customer's delivery window ends before it starts")
                  for s in prepared.stops if s.problem is not None]
    routes: list[PlannedRoute] = []
    solution = None
    if plannable:
        t1 = _time.perf_counter()
        solver = solver or PyVRPSolver(no_improvement=_no_improvement(len(plannable)))
        solution = solver.solve(prob, time_limit_s=req.time_limit_s, seed=req.seed)
        timings["solve"] = _time.perf_counter() - t1
        loads = [(r.load, prepared.vehicles[r.vehicle_type].capacity) for r in solution.routes if r.visits]
        spare = [c - l for l, c in loads] + [prepared.vehicles[i].capacity for i in range(len(prepared.vehicles))
                                              if i not in {r.vehicle_type for r in solution.routes if r.visits}]
        for u in solution.unassigned:
            info = plannable[u.stop_index]
            reason, detail = u.reason, u.detail
            if reason == "not_selected" and info.required:
                # a required stop that did not fit: capacity if no vehicle has room left for it
                if all(info.demand > room for room in spare):
                    reason, detail = "capacity", "no vehicle has room left for its demand"
                else:
                    reason, detail = "time_window", "does not fit in any route within time windows and shifts"
            unassigned.append(PlannedStop(info, None, reason=reason, detail=detail))
        for r in solution.routes:
            if not r.visits:
                continue
            v = prepared.vehicles[r.vehicle_type]
            pstops = [PlannedStop(plannable[x.stop_index], len(routes), i + 1, x.arrival_s, x.start_service_s,
                                  x.departure_s, x.load_after) for i, x in enumerate(r.visits)]
            routes.append(PlannedRoute(v, prepared.depots[r.depot], r.start_s, r.end_s, float(r.distance_m),
                                       float(r.duration_s), r.load, None, pstops))
    t2 = _time.perf_counter()
    trace_geometry(conn, mode, prepared, routes, snaps, plannable)
    timings["geometry"] = _time.perf_counter() - t2
    timings["total"] = _time.perf_counter() - t0
    unassigned.sort(key=lambda p: (p.info.customer_id, p.info.order_id or 0))
    return PlanResult(prepared, mode, prob, solution, routes, unassigned, timings, list(prepared.warnings))


def _no_improvement(n: int) -> int:
    """Stop early once the search stalls (small plans return in well under a second)."""
    return max(2_000, 40 * n)


def trace_geometry(conn, mode: str, prepared: Prepared, routes: list[PlannedRoute], snaps, plannable) -> None:
    """Set `wkt` of each route: road-following in network mode (point → vertex → roads →
    vertex → point), straight lines between stops in haversine mode."""
    if not routes:
        return
    if mode != "network":
        for r in routes:
            pts = [(r.depot.lon, r.depot.lat)] + [(s.info.lon, s.info.lat) for s in r.stops] + \
                  [(r.depot.lon, r.depot.lat)]
            r.wkt = "LINESTRING(" + ", ".join(f"{x:.7f} {y:.7f}" for x, y in pts) + ")"
        return
    D = len(prepared.depots)
    didx = {d.branch_id: i for i, d in enumerate(prepared.depots)}
    pidx = {id(s): D + i for i, s in enumerate(plannable)}
    legs, chains = [], []
    for r in routes:
        nodes = [didx[r.depot.branch_id]] + [pidx[id(s.info)] for s in r.stops] + [didx[r.depot.branch_id]]
        chain = [(snaps[a].vertex, snaps[b].vertex) for a, b in zip(nodes, nodes[1:])]
        legs.extend(chain)
        chains.append((nodes, chain))
    geo = network.leg_geometries(conn, legs)
    from shapely import wkt as swkt
    for r, (nodes, chain) in zip(routes, chains):
        coords: list[tuple[float, float]] = []
        pts = [(r.depot.lon, r.depot.lat)] + [(s.info.lon, s.info.lat) for s in r.stops] + \
              [(r.depot.lon, r.depot.lat)]
        for k, leg in enumerate(chain):
            coords.append(pts[k])
            g = geo.get(leg)
            if g and g["wkt"]:
                line = swkt.loads(g["wkt"])
                parts = line.geoms if line.geom_type == "MultiLineString" else [line]
                for p in parts:
                    coords.extend((float(x), float(y)) for x, y in p.coords)
        coords.append(pts[-1])
        dedup = [coords[0]] + [c for a, c in zip(coords, coords[1:]) if c != a]
        if len(dedup) < 2:
            dedup = dedup * 2
        r.wkt = "LINESTRING(" + ", ".join(f"{x:.7f} {y:.7f}" for x, y in dedup) + ")"
