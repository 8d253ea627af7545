"""Routing engine: the :class:`Solver` protocol, a PyVRP implementation and an
independent feasibility checker.

Stopping rule of :class:`PyVRPSolver`
-------------------------------------
The search always stops after ``time_limit_s`` seconds (PyVRP ``MaxRuntime``).
Optionally it also stops earlier:

* ``no_improvement=N`` stops after N consecutive iterations that did not
  improve the best solution (PyVRP ``NoImprovement``) - useful in the app so
  that small problems return in milliseconds instead of the full limit;
* ``max_iterations=N`` stops after N iterations (PyVRP ``MaxIterations``).

Determinism: the seed fixes PyVRP's random stream, so two runs with the same
seed perform exactly the same iterations.  When the time limit is what stops
the search, the *number* of iterations depends on machine speed and load, so
results are only reproducible if an iteration-based criterion
(``max_iterations`` or ``no_improvement``) triggers before the time limit.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .problem import (
    NO_LIMIT,
    UNREACHABLE,
    Problem,
    Route,
    Solution,
    Unassigned,
    Visit,
)

_INT64_MAX = int(np.iinfo(np.int64).max)


class Solver(Protocol):
    def solve(self, problem: Problem, *, time_limit_s: float, seed: int) -> Solution: ...


# --------------------------------------------------------------------------- pre-check


def _vt_window(problem: Problem, vt_index: int) -> tuple[int, int]:
    """Earliest departure and latest return of a vehicle type (shift ∩ depot hours)."""
    vt = problem.vehicle_types[vt_index]
    depot = problem.depots[vt.depot]
    return max(vt.shift_start_s, depot.tw_start_s), min(vt.shift_end_s, depot.tw_end_s)


def precheck(problem: Problem) -> dict[int, tuple[str, str]]:
    """Stops that no vehicle can serve even alone on a route.

    Returns ``{stop_index: (reason, detail)}``.  For every vehicle type with at
    least one vehicle the best single-stop route (depot -> stop -> depot,
    departing just in time) is evaluated.  The reason is the first constraint,
    in the order capacity, reachability, time, that rules out *every* type.
    """
    types = [i for i, vt in enumerate(problem.vehicle_types) if vt.count > 0]
    D = len(problem.depots)
    dist, dur = problem.distance_m, problem.duration_s
    out: dict[int, tuple[str, str]] = {}
    for si, s in enumerate(problem.stops):
        node = D + si
        cap_ok = [i for i in types if s.demand <= problem.vehicle_types[i].capacity]
        if not cap_ok:
            best = max((problem.vehicle_types[i].capacity for i in types), default=0)
            out[si] = ("capacity", f"demand {s.demand} exceeds the largest capacity {best}")
            continue
        reach_ok = []
        for i in cap_ok:
            d = problem.vehicle_types[i].depot
            if (
                dist[d, node] < UNREACHABLE
                and dur[d, node] < UNREACHABLE
                and dist[node, d] < UNREACHABLE
                and dur[node, d] < UNREACHABLE
            ):
                reach_ok.append(i)
        if not reach_ok:
            out[si] = ("out_of_reach", "no path between the stop and any suitable depot")
            continue
        time_ok = False
        for i in reach_ok:
            vt = problem.vehicle_types[i]
            d = vt.depot
            earliest, latest = _vt_window(problem, i)
            to_s, back = int(dur[d, node]), int(dur[node, d])
            depart = max(earliest, s.tw_start_s - to_s)  # just in time: no waiting
            begin = max(depart + to_s, s.tw_start_s)
            ret = begin + s.service_s + back
            if begin <= s.tw_end_s and ret <= latest and ret - depart <= vt.max_duration_s:
                time_ok = True
                break
        if not time_ok:
            out[si] = (
                "time_window",
                "cannot be served within its time window and a vehicle's shift/max duration "
                "even directly from the depot",
            )
    return out


# --------------------------------------------------------------------------- PyVRP solver


def _lim(v: int) -> int:
    """Map our 'no limit' values onto PyVRP's (int64 max)."""
    return _INT64_MAX if v >= NO_LIMIT else int(v)


@dataclass
class PyVRPSolver:
    """:class:`Solver` backed by PyVRP's iterated local search (``pyvrp.Model``)."""

    no_improvement: int | None = None
    max_iterations: int | None = None
    display: bool = False

    def solve(self, problem: Problem, *, time_limit_s: float, seed: int = 1) -> Solution:
        import pyvrp
        from pyvrp import stop as pstop
        from pyvrp.constants import MAX_VALUE
        from pyvrp.exceptions import PenaltyBoundWarning

        t0 = time.perf_counter()
        problem.validate()
        D = len(problem.depots)
        excluded = precheck(problem)
        unassigned = [
            Unassigned(problem.stops[i].id, i, reason, detail)
            for i, (reason, detail) in sorted(excluded.items())
        ]
        included = [i for i in range(len(problem.stops)) if i not in excluded]
        type_map = [i for i, vt in enumerate(problem.vehicle_types) if vt.count > 0]

        if not included:
            return self._finish(problem, [], unassigned, True, [], t0, 0)

        # -- build the model (entities through pyvrp.Model) --------------------
        m = pyvrp.Model()
        for d in problem.depots:
            m.add_depot(m.add_location(x=float(d.lon), y=float(d.lat)), name=str(d.id))
        for i in included:
            s = problem.stops[i]
            loc = m.add_location(x=float(s.lon), y=float(s.lat))
            m.add_client(
                loc,
                delivery=[int(s.demand)],
                service_duration=int(s.service_s),
                tw_early=int(s.tw_start_s),
                tw_late=_lim(s.tw_end_s),
                prize=int(s.prize),
                required=bool(s.required),
                name=str(s.id),
            )
        for ti in type_map:
            vt = problem.vehicle_types[ti]
            early, late = _vt_window(problem, ti)
            depot = m.depots[vt.depot]
            m.add_vehicle_type(
                num_available=int(vt.count),
                capacity=[int(vt.capacity)],
                start_depot=depot,
                end_depot=depot,
                fixed_cost=int(vt.fixed_cost),
                tw_early=int(early),
                tw_late=_lim(late),
                shift_duration=_lim(vt.max_duration_s),
                unit_distance_cost=int(vt.unit_distance_cost),
                unit_duration_cost=int(vt.unit_duration_cost),
                name=vt.name or str(ti),
            )

        # -- matrices: set in bulk (Model.add_edge per pair is O(n^2) Python) ----
        nodes = np.array(list(range(D)) + [D + i for i in included])
        dist = problem.distance_m[np.ix_(nodes, nodes)].astype(np.int64)
        dur = problem.duration_s[np.ix_(nodes, nodes)].astype(np.int64)
        unreachable = (dist >= UNREACHABLE) | (dur >= UNREACHABLE)
        if unreachable.any():
            # Any arc cheaper than this is preferred over one unreachable arc.
            fin_d = int(dist[~unreachable].max(initial=0))
            fin_t = int(dur[~unreachable].max(initial=0))
            n = len(nodes)
            dist[unreachable] = min(MAX_VALUE, (fin_d + 1) * (n + 1))
            dur[unreachable] = min(MAX_VALUE, (fin_t + 1) * (n + 1))
        np.fill_diagonal(dist, 0)
        np.fill_diagonal(dur, 0)
        data = m.data().replace(distance_matrices=[dist], duration_matrices=[dur])

        criteria = [pstop.MaxRuntime(max(float(time_limit_s), 0.0))]
        if self.no_improvement is not None:
            criteria.append(pstop.NoImprovement(int(self.no_improvement)))
        if self.max_iterations is not None:
            criteria.append(pstop.MaxIterations(int(self.max_iterations)))
        stop = criteria[0] if len(criteria) == 1 else pstop.MultipleCriteria(criteria)

        # PyVRP warns when penalties saturate (no feasible solution found); that
        # is reported through ``feasible``/``violations`` instead.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PenaltyBoundWarning)
            res = pyvrp.solve(data, stop, seed=int(seed), collect_stats=False, display=self.display)
        best = res.best

        # -- translate back -----------------------------------------------------
        routes: list[Route] = []
        used = [0] * len(type_map)
        served: set[int] = set()
        violations: list[str] = []
        for r in best.routes():
            pt = r.vehicle_type()
            ti = type_map[pt]
            vt = problem.vehicle_types[ti]
            sched = r.schedule()
            visits: list[Visit] = []
            load = int(r.delivery()[0])
            on_board = load
            prev_node = vt.depot
            prev_dep = int(sched[0].end_time)
            for act in sched[1:-1]:
                if not act.is_client():
                    continue
                si = included[act.idx]
                s = problem.stops[si]
                node = D + si
                on_board -= int(s.demand)
                visits.append(
                    Visit(
                        stop_id=s.id,
                        stop_index=si,
                        arrival_s=prev_dep + int(problem.duration_s[prev_node, node]),
                        start_service_s=int(act.start_time),
                        departure_s=int(act.end_time),
                        load_after=on_board,
                    )
                )
                served.add(si)
                prev_node, prev_dep = node, int(act.end_time)
            vno = used[pt]
            used[pt] += 1
            route = Route(
                vehicle_type=ti,
                vehicle_no=vno,
                depot=vt.depot,
                visits=visits,
                distance_m=int(r.distance()),
                duration_s=int(r.duration()),
                start_s=int(r.start_time()),
                end_s=int(r.end_time()),
                load=load,
                vehicle_id=vt.vehicle_ids[vno] if vt.vehicle_ids else None,
                cost=int(r.distance_cost() + r.duration_cost() + r.fixed_vehicle_cost()),
            )
            routes.append(route)
            label = f"route {len(routes) - 1} (type {ti}, vehicle {vno})"
            if r.has_excess_load():
                violations.append(f"capacity: {label} carries {load} > capacity {vt.capacity}")
            if r.has_time_warp():
                violations.append(
                    f"time_window: {label} has {r.time_warp()} s time warp "
                    "(time windows, shift or max duration cannot all be met)"
                )

        feasible = bool(best.is_feasible())
        missing_required = [
            i for i in included if i not in served and problem.stops[i].required
        ]
        if missing_required:
            violations.append(f"{len(missing_required)} required stop(s) could not be routed")
            total_cap = sum(problem.vehicle_types[t].capacity * problem.vehicle_types[t].count
                            for t in type_map)
            total_dem = sum(problem.stops[i].demand for i in included if problem.stops[i].required)
            reason = "capacity" if total_dem > total_cap else "time_window"
        for i in included:
            if i in served:
                continue
            s = problem.stops[i]
            if s.required:
                unassigned.append(Unassigned(s.id, i, reason, "no feasible plan serves all required stops"))
            else:
                unassigned.append(Unassigned(s.id, i, "not_selected", "prize does not cover the detour"))
        unassigned.sort(key=lambda u: u.stop_index)
        if not feasible and not violations:
            violations.append("solver returned an infeasible solution")
        return self._finish(problem, routes, unassigned, feasible, violations, t0, res.num_iterations)

    @staticmethod
    def _finish(problem, routes, unassigned, feasible, violations, t0, iterations) -> Solution:
        cost = sum(r.cost for r in routes)
        uncollected = sum(
            problem.stops[u.stop_index].prize for u in unassigned if not problem.stops[u.stop_index].required
        )
        return Solution(
            routes=routes,
            unassigned=unassigned,
            cost=int(cost),
            feasible=bool(feasible),
            runtime_s=time.perf_counter() - t0,
            uncollected_prize=int(uncollected),
            violations=list(violations),
            iterations=int(iterations),
        )


# --------------------------------------------------------------------------- checker


def check_solution(problem: Problem, solution: Solution) -> list[str]:
    """Independent feasibility check; returns a list of problems (empty = OK).

    Checks: every stop is routed exactly once or listed unassigned (not both),
    required stops are only unassigned with a pre-check reason, vehicles exist
    and are used at most once, no unreachable arc is used, capacity and load
    bookkeeping, time windows, depot hours / shifts, max duration, and that
    the reported ETAs, distance and duration follow from the visit order and
    the matrices (``arrival = previous departure + travel``, service starts no
    earlier than arrival and ``tw_start``, ``departure = start + service``).
    """
    errs: list[str] = []
    D = len(problem.depots)
    dist, dur = problem.distance_m, problem.duration_s
    count: dict[int, int] = {}
    vehicles_used: set[tuple[int, int]] = set()
    total_cost = 0

    for ri, r in enumerate(solution.routes):
        label = f"route {ri}"
        if not 0 <= r.vehicle_type < len(problem.vehicle_types):
            errs.append(f"{label}: unknown vehicle type {r.vehicle_type}")
            continue
        vt = problem.vehicle_types[r.vehicle_type]
        if not 0 <= r.vehicle_no < vt.count:
            errs.append(f"{label}: vehicle_no {r.vehicle_no} >= count {vt.count}")
        if (r.vehicle_type, r.vehicle_no) in vehicles_used:
            errs.append(f"{label}: vehicle {r.vehicle_type}/{r.vehicle_no} used twice")
        vehicles_used.add((r.vehicle_type, r.vehicle_no))
        if r.depot != vt.depot:
            errs.append(f"{label}: depot {r.depot} differs from its vehicle type's depot {vt.depot}")
        depot = problem.depots[vt.depot]
        earliest = max(vt.shift_start_s, depot.tw_start_s)
        latest = min(vt.shift_end_s, depot.tw_end_s)
        if r.start_s < earliest:
            errs.append(f"{label}: starts at {r.start_s} before {earliest} (shift/depot hours)")

        load = sum(problem.stops[v.stop_index].demand for v in r.visits if 0 <= v.stop_index < len(problem.stops))
        if load != r.load:
            errs.append(f"{label}: reported load {r.load} != sum of demands {load}")
        if load > vt.capacity:
            errs.append(f"{label}: load {load} exceeds capacity {vt.capacity}")

        prev, t, distance, on_board = vt.depot, r.start_s, 0, load
        for v in r.visits:
            si = v.stop_index
            if not 0 <= si < len(problem.stops) or problem.stops[si].id != v.stop_id:
                errs.append(f"{label}: visit {v.stop_id!r} does not match stop index {si}")
                break
            s = problem.stops[si]
            count[si] = count.get(si, 0) + 1
            node = D + si
            if not problem.reachable(prev, node):
                errs.append(f"{label}: uses unreachable arc {prev}->{node}")
            distance += int(dist[prev, node])
            arrival = t + int(dur[prev, node])
            if v.arrival_s != arrival:
                errs.append(f"{label}: {s.id!r} arrival {v.arrival_s} != expected {arrival}")
            if v.start_service_s < max(arrival, s.tw_start_s):
                errs.append(f"{label}: {s.id!r} service starts {v.start_service_s} before arrival/window")
            if v.start_service_s > s.tw_end_s:
                errs.append(
                    f"{label}: {s.id!r} service starts {v.start_service_s} after tw_end {s.tw_end_s}"
                )
            if v.departure_s != v.start_service_s + s.service_s:
                errs.append(f"{label}: {s.id!r} departure {v.departure_s} != start + service")
            on_board -= s.demand
            if v.load_after != on_board:
                errs.append(f"{label}: {s.id!r} load_after {v.load_after} != {on_board}")
            prev, t = node, v.departure_s
        if not problem.reachable(prev, vt.depot):
            errs.append(f"{label}: uses unreachable arc {prev}->{vt.depot}")
        distance += int(dist[prev, vt.depot])
        end = t + int(dur[prev, vt.depot])
        if r.end_s != end:
            errs.append(f"{label}: end {r.end_s} != expected return {end}")
        if end > latest:
            errs.append(f"{label}: returns at {end} after {latest} (shift/depot hours)")
        if r.distance_m != distance:
            errs.append(f"{label}: distance {r.distance_m} != matrix sum {distance}")
        if r.duration_s != end - r.start_s:
            errs.append(f"{label}: duration {r.duration_s} != end - start {end - r.start_s}")
        if end - r.start_s > vt.max_duration_s:
            errs.append(f"{label}: duration {end - r.start_s} exceeds max {vt.max_duration_s}")
        if r.visits:
            total_cost += vt.fixed_cost + vt.unit_distance_cost * distance + vt.unit_duration_cost * (end - r.start_s)

    unassigned: dict[int, str] = {}
    for u in solution.unassigned:
        if u.stop_index in unassigned:
            errs.append(f"stop {u.stop_id!r} listed unassigned twice")
        unassigned[u.stop_index] = u.reason
        if u.reason not in ("capacity", "time_window", "out_of_reach", "not_selected"):
            errs.append(f"stop {u.stop_id!r}: unknown reason {u.reason!r}")

    for si, s in enumerate(problem.stops):
        c = count.get(si, 0)
        if c > 1:
            errs.append(f"stop {s.id!r} visited {c} times")
        if c and si in unassigned:
            errs.append(f"stop {s.id!r} both routed and unassigned")
        if not c and si not in unassigned:
            errs.append(f"stop {s.id!r} neither routed nor unassigned")
        if not c and s.required and unassigned.get(si) == "not_selected":
            errs.append(f"required stop {s.id!r} was dropped")

    if total_cost != solution.cost:
        errs.append(f"reported cost {solution.cost} != recomputed {total_cost}")
    return errs
