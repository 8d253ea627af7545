"""Routing engine tests: no DB, no Flask, a few seconds in total."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from geo_crm.routing.haversine import haversine_matrix_m, travel_matrices
from geo_crm.routing.problem import (
    UNREACHABLE,
    Depot,
    Problem,
    ProblemError,
    Stop,
    VehicleType,
)
from geo_crm.routing.solver import PyVRPSolver, check_solution

# Small instances converge within milliseconds; NoImprovement keeps tests fast.
SOLVER = PyVRPSolver(no_improvement=2_000)


def euclid_problem(coords, demands, *, capacity=10, count=3, tws=None, service=0,
                   depot_tw=(0, 10**9), required=None, prizes=None, max_duration=None):
    """Depot at coords[0]; durations equal (rounded) Euclidean distances."""
    pts = np.asarray(coords, dtype=float)
    d = np.rint(np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))).astype(np.int64)
    stops = []
    for i, (x, y) in enumerate(pts[1:]):
        tw = tws[i] if tws else (0, 10**9)
        stops.append(Stop(
            id=f"s{i}", lon=x, lat=y, demand=demands[i], service_s=service,
            tw_start_s=tw[0], tw_end_s=tw[1],
            required=True if required is None else required[i],
            prize=0 if prizes is None else prizes[i],
        ))
    vt = VehicleType(depot=0, count=count, capacity=capacity)
    if max_duration is not None:
        vt.max_duration_s = max_duration
    return Problem(
        depots=[Depot("D", pts[0, 0], pts[0, 1], *depot_tw)],
        vehicle_types=[vt],
        stops=stops,
        distance_m=d,
        duration_s=d.copy(),
    )


def brute_force(p: Problem) -> int:
    """Optimal total distance by enumeration (one depot/type, all stops required)."""
    vt = p.vehicle_types[0]
    depot = p.depots[0]
    n = len(p.stops)
    start = max(vt.shift_start_s, depot.tw_start_s)
    end_limit = min(vt.shift_end_s, depot.tw_end_s)

    def route_cost(order):
        t, prev, dist = start, 0, 0
        for si in order:
            s, node = p.stops[si], si + 1
            t = max(t + int(p.duration_s[prev, node]), s.tw_start_s)
            if t > s.tw_end_s:
                return math.inf
            t += s.service_s
            dist += int(p.distance_m[prev, node])
            prev = node
        t += int(p.duration_s[prev, 0])
        if t > end_limit or t - start > vt.max_duration_s:
            return math.inf
        return dist + int(p.distance_m[prev, 0])

    best_route = {}
    for mask in range(1, 1 << n):
        members = [i for i in range(n) if mask >> i & 1]
        if sum(p.stops[i].demand for i in members) > vt.capacity:
            best_route[mask] = math.inf
            continue
        best_route[mask] = min(route_cost(perm) for perm in itertools.permutations(members))

    # dp[k][mask]: cheapest way to serve `mask` with at most k routes.
    full = (1 << n) - 1
    dp = {0: 0}
    for _ in range(vt.count):
        nxt = dict(dp)
        for mask, c in dp.items():
            rest = full & ~mask
            low = rest & -rest  # the lowest unserved stop goes on the next route
            if not rest:
                continue
            sub = rest
            while sub:
                if sub & low and best_route[sub] < math.inf:
                    m2 = mask | sub
                    if c + best_route[sub] < nxt.get(m2, math.inf):
                        nxt[m2] = c + best_route[sub]
                sub = (sub - 1) & rest
        dp = nxt
    return dp.get(full, math.inf)


def assert_independently_feasible(p: Problem, sol):
    seen = []
    for r in sol.routes:
        vt = p.vehicle_types[r.vehicle_type]
        assert sum(p.stops[v.stop_index].demand for v in r.visits) <= vt.capacity
        for v in r.visits:
            s = p.stops[v.stop_index]
            assert s.tw_start_s <= v.start_service_s <= s.tw_end_s
            assert v.arrival_s <= v.start_service_s
            seen.append(v.stop_id)
        assert r.end_s - r.start_s <= vt.max_duration_s
    assert len(seen) == len(set(seen))


RNG_CASES = [(7, 1, 0), (7, 2, 0), (6, 3, 1), (6, 4, 1), (5, 5, 1)]


@pytest.mark.parametrize("n,seed,with_tw", RNG_CASES)
def test_matches_brute_force_optimum(n, seed, with_tw):
    rng = np.random.default_rng(seed)
    coords = rng.integers(0, 100, size=(n + 1, 2))
    demands = rng.integers(1, 6, size=n).tolist()
    tws = None
    if with_tw:
        starts = rng.integers(0, 150, size=n)
        tws = [(int(a), int(a) + 100) for a in starts]
    p = euclid_problem(coords, demands, capacity=10, count=3, tws=tws, service=5)
    opt = brute_force(p)
    assert opt < math.inf
    sol = SOLVER.solve(p, time_limit_s=3, seed=1)
    assert sol.feasible, sol.violations
    assert check_solution(p, sol) == []
    assert_independently_feasible(p, sol)
    assert not sol.unassigned
    assert sol.cost == opt


def test_capacity_and_time_windows_respected():
    rng = np.random.default_rng(42)
    n = 25
    coords = rng.integers(0, 200, size=(n + 1, 2))
    demands = rng.integers(1, 8, size=n).tolist()
    tws = [(int(a), int(a) + 120) for a in rng.integers(0, 400, size=n)]
    p = euclid_problem(coords, demands, capacity=20, count=10, tws=tws, service=10,
                       max_duration=600)
    sol = SOLVER.solve(p, time_limit_s=3, seed=3)
    assert sol.feasible, sol.violations
    assert check_solution(p, sol) == []
    assert_independently_feasible(p, sol)
    assert {v.stop_id for r in sol.routes for v in r.visits} | {u.stop_id for u in sol.unassigned} == {
        s.id for s in p.stops
    }
    # load bookkeeping: vehicles leave full and end empty
    for r in sol.routes:
        assert r.visits[-1].load_after == 0
        assert r.load == sum(p.stops[v.stop_index].demand for v in r.visits)


def test_unassigned_reasons():
    coords = [(0, 0), (10, 0), (0, 10), (5, 5), (900, 0), (0, 20), (20, 20)]
    tws = [(0, 10**9)] * 6
    tws[3] = (0, 100)  # stop s3 is 900 away: its window closes long before anyone gets there
    demands = [2, 2, 50, 2, 2, 2]  # s2 needs more than any vehicle carries
    p = euclid_problem(coords, demands, capacity=10, count=2, tws=tws)
    # s4 has no path to or from anywhere
    node = p.node_of_stop(4)
    for m in (p.distance_m, p.duration_s):
        m[node, :] = UNREACHABLE
        m[:, node] = UNREACHABLE
        m[node, node] = 0
    sol = SOLVER.solve(p, time_limit_s=2, seed=1)
    reasons = {u.stop_id: u.reason for u in sol.unassigned}
    assert reasons == {"s2": "capacity", "s3": "time_window", "s4": "out_of_reach"}
    assert sol.feasible
    assert check_solution(p, sol) == []
    assert {v.stop_id for r in sol.routes for v in r.visits} == {"s0", "s1", "s5"}


def test_shift_and_max_duration_precheck():
    # Reachable in principle but the round trip (2 x 300) exceeds max duration 500.
    p = euclid_problem([(0, 0), (300, 0), (10, 0)], [1, 1], max_duration=500)
    sol = SOLVER.solve(p, time_limit_s=1, seed=1)
    assert [(u.stop_id, u.reason) for u in sol.unassigned] == [("s0", "time_window")]
    assert check_solution(p, sol) == []


def test_optional_stops_dropped_when_unprofitable():
    coords = [(0, 0), (10, 0), (12, 0), (500, 500), (11, 3)]
    p = euclid_problem(
        coords, [1, 1, 1, 1],
        required=[True, True, False, False],
        prizes=[0, 0, 50, 100],  # far s2 is worth 50 but costs ~1400 extra; s3 costs ~6 extra
    )
    sol = SOLVER.solve(p, time_limit_s=2, seed=1)
    assert sol.feasible
    assert [(u.stop_id, u.reason) for u in sol.unassigned] == [("s2", "not_selected")]
    assert sol.uncollected_prize == 50
    assert sol.objective == sol.cost + 50
    assert check_solution(p, sol) == []
    served = {v.stop_id for r in sol.routes for v in r.visits}
    assert served == {"s0", "s1", "s3"}


def test_infeasible_fleet_is_reported():
    # 3 stops of demand 6 with one vehicle of capacity 10: PyVRP cannot be feasible.
    p = euclid_problem([(0, 0), (10, 0), (0, 10), (10, 10)], [6, 6, 6], capacity=10, count=1)
    sol = PyVRPSolver(max_iterations=300).solve(p, time_limit_s=2, seed=1)
    assert not sol.feasible
    assert sol.violations
    assert any("capacity" in v for v in sol.violations) or sol.unassigned
    assert check_solution(p, sol)  # the independent checker disagrees too


def test_deterministic_with_same_seed():
    rng = np.random.default_rng(7)
    n = 30
    coords = rng.integers(0, 300, size=(n + 1, 2))
    p = euclid_problem(coords, rng.integers(1, 5, size=n).tolist(), capacity=15, count=10)
    solver = PyVRPSolver(max_iterations=500)
    a = solver.solve(p, time_limit_s=30, seed=11)
    b = solver.solve(p, time_limit_s=30, seed=11)
    key = lambda s: [(r.vehicle_type, [v.stop_id for v in r.visits]) for r in s.routes]  # noqa: E731
    assert key(a) == key(b)
    assert a.cost == b.cost
    assert a.iterations == b.iterations == 500


def test_check_solution_catches_tampering():
    p = euclid_problem([(0, 0), (10, 0), (0, 10), (10, 10)], [1, 1, 1], tws=[(0, 100)] * 3)
    sol = SOLVER.solve(p, time_limit_s=1, seed=1)
    assert check_solution(p, sol) == []
    sol.routes[0].visits[0].arrival_s += 1
    sol.routes[0].load += 1
    errs = check_solution(p, sol)
    assert any("arrival" in e for e in errs) and any("load" in e for e in errs)
    sol.routes[0].visits.pop()
    assert any("neither routed nor unassigned" in e for e in check_solution(p, sol))


def _valid():
    return euclid_problem([(0, 0), (1, 1), (2, 2)], [1, 1])


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda p: setattr(p.vehicle_types[0], "count", 0), "zero vehicles"),
        (lambda p: setattr(p, "vehicle_types", []), "zero vehicles"),
        (lambda p: setattr(p.stops[0], "tw_end_s", -1), "tw_end_s"),
        (lambda p: setattr(p.depots[0], "tw_end_s", -5), "tw_end_s"),
        (lambda p: setattr(p.stops[1], "demand", -3), "negative demand"),
        (lambda p: setattr(p, "distance_m", p.distance_m[:, :2]), "square"),
        (lambda p: setattr(p, "duration_s", np.zeros((4, 4), dtype=np.int64)), "3 nodes"),
        (lambda p: setattr(p.stops[0], "lat", float("nan")), "finite"),
        (lambda p: setattr(p.depots[0], "lon", float("nan")), "finite"),
    ],
)
def test_problem_error(mutate, match):
    p = _valid()
    p.validate()
    mutate(p)
    with pytest.raises(ProblemError, match=match):
        p.validate()
    with pytest.raises(ValueError):
        PyVRPSolver().solve(p, time_limit_s=1, seed=1)


def test_haversine_helsinki_tampere():
    lons, lats = [24.9384, 23.7610], [60.1699, 61.4978]
    d = haversine_matrix_m(lons, lats)
    assert d.dtype.kind == "i" and d[0, 0] == 0 and d[0, 1] == d[1, 0]
    assert abs(int(d[0, 1]) - 160_000) <= 1_000
    dist, dur = travel_matrices(lons, lats, detour_factor=1.3, speed_kmh=50)
    assert abs(int(dist[0, 1]) - round(d[0, 1] * 1.3)) <= 1
    assert abs(int(dur[0, 1]) - round(d[0, 1] * 1.3 / (50 / 3.6))) <= 1


def test_haversine_solves_a_real_world_problem():
    rng = np.random.default_rng(0)
    lons = 24.9 + rng.random(15) * 0.3
    lats = 60.15 + rng.random(15) * 0.15
    dist, dur = travel_matrices(lons, lats)
    p = Problem(
        depots=[Depot("hq", lons[0], lats[0], 6 * 3600, 20 * 3600)],
        vehicle_types=[VehicleType(depot=0, count=4, capacity=12, shift_start_s=7 * 3600,
                                   shift_end_s=17 * 3600, max_duration_s=4 * 3600,
                                   vehicle_ids=["van1", "van2", "van3", "van4"])],
        stops=[Stop(f"order-{i}", lons[i], lats[i], demand=3, service_s=600,
                    tw_start_s=(8 + i % 3) * 3600, tw_end_s=(10 + i % 3) * 3600)
               for i in range(1, 15)],
        distance_m=dist,
        duration_s=dur,
    )
    sol = SOLVER.solve(p, time_limit_s=2, seed=1)
    assert sol.feasible and not sol.unassigned
    assert check_solution(p, sol) == []
    assert all(r.vehicle_id in {"van1", "van2", "van3", "van4"} for r in sol.routes)
    assert all(r.start_s >= 7 * 3600 and r.end_s <= 17 * 3600 for r in sol.routes)
