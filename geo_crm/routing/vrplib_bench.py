"""Solve VRPLIB benchmark instances through the app's own routing interface.

The instance is read with the ``vrplib`` package, turned into a
:class:`~geo_crm.routing.problem.Problem` and solved by the same
:class:`~geo_crm.routing.solver.PyVRPSolver` the app uses, so the benchmark
measures exactly what production runs.

Rounding conventions (``--round``, default chosen from the instance TYPE):

* ``round``  - CVRP / X instances: Euclidean distances rounded to the nearest
  integer; costs compare directly with the BKS.
* ``dimacs`` - VRPTW (Solomon, Gehring-Homberger): distances, durations, time
  windows and service times truncated to one decimal, i.e. scaled by 10 and
  truncated to integers; reported costs are divided by 10 again.
* ``exact``  - PyVRP's VRPLIB dialect (e.g. MDVRPTW PR11A): all distances and
  times scaled by 1000 and rounded; the BKS is given in those scaled units, so
  costs are reported unscaled (as integers x1000).

Demands and capacities are integers in every convention and are not scaled.
VRPLIB has no "unreachable" arcs and durations equal distances.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .problem import NO_LIMIT, Depot, Problem, Stop, VehicleType
from .solver import PyVRPSolver, Solver, check_solution

ROUND_MODES = {
    # name: (scale function on float arrays, cost divisor for reporting)
    "round": (lambda a: np.round(np.asarray(a, dtype=float)).astype(np.int64), 1),
    "dimacs": (lambda a: (10 * np.asarray(a, dtype=float)).astype(np.int64), 10),
    "exact": (lambda a: np.round(1000 * np.asarray(a, dtype=float)).astype(np.int64), 1),
}


def default_round_mode(instance_type: str) -> str:
    t = (instance_type or "").upper()
    if t in ("CVRP", "ACVRP", "CVRP_ROUND"):
        return "round"
    if t == "VRPTW":
        return "dimacs"
    return "exact"


@dataclass
class BenchResult:
    name: str
    type: str
    round_mode: str
    cost: float
    bks: float | None
    gap_pct: float | None
    routes: int
    feasible: bool
    time_s: float
    num_stops: int
    violations: list[str] = field(default_factory=list)

    def line(self) -> str:
        return format_line(self.cost, self.routes, self.feasible, self.time_s)


def format_cost(cost: float) -> str:
    return str(int(cost)) if float(cost).is_integer() else f"{cost:.1f}"


def format_line(cost: float, routes: int, feasible: bool, time_s: float) -> str:
    return (
        f"cost={format_cost(cost)} routes={routes} "
        f"feasible={'true' if feasible else 'false'} time_s={time_s:.2f}"
    )


def problem_from_vrplib(instance: dict, round_mode: str) -> Problem:
    """Build a :class:`Problem` from a parsed ``vrplib.read_instance`` dict."""
    scale, divisor = ROUND_MODES[round_mode]
    n = int(instance["dimension"])
    depot_idx = np.atleast_1d(instance.get("depot", np.array([0]))).astype(int)
    num_depots = depot_idx.size
    if not np.array_equal(depot_idx, np.arange(num_depots)):
        raise ValueError("depots must be the first nodes of the instance")
    num_clients = n - num_depots

    weights = scale(instance["edge_weight"])
    coords = np.asarray(instance.get("node_coord", np.zeros((n, 2))), dtype=float)
    demand = np.round(np.asarray(instance.get("demand", np.zeros(n)), dtype=float)).astype(np.int64)
    service = instance.get("service_time", 0)
    if np.isscalar(service):
        service = np.full(n, service, dtype=float)
        service[:num_depots] = 0
    service = scale(service)
    if "time_window" in instance:
        tw = scale(instance["time_window"])
    else:
        tw = np.zeros((n, 2), dtype=np.int64)
        tw[:, 1] = NO_LIMIT

    depots = [
        Depot(id=int(i) + 1, lon=float(coords[i, 0]), lat=float(coords[i, 1]),
              tw_start_s=int(tw[i, 0]), tw_end_s=int(tw[i, 1]))
        for i in range(num_depots)
    ]
    stops = [
        Stop(id=int(i) + 1, lon=float(coords[i, 0]), lat=float(coords[i, 1]),
             demand=int(demand[i]), service_s=int(service[i]),
             tw_start_s=int(tw[i, 0]), tw_end_s=int(tw[i, 1]))
        for i in range(num_depots, n)
    ]

    num_vehicles = int(instance.get("vehicles", num_clients))
    cap = instance.get("capacity", NO_LIMIT)
    caps = np.broadcast_to(np.asarray(cap), (num_vehicles,)).astype(np.int64)
    if "vehicles_depot" in instance:
        veh_depot = np.asarray(instance["vehicles_depot"], dtype=int) - 1
    else:
        veh_depot = np.full(num_vehicles, 0)
    if "vehicles_max_duration" in instance:
        max_dur = np.broadcast_to(scale(instance["vehicles_max_duration"]), (num_vehicles,))
    else:
        max_dur = np.full(num_vehicles, NO_LIMIT, dtype=np.int64)

    groups = Counter(
        (int(veh_depot[v]), int(caps[v]), int(max_dur[v])) for v in range(num_vehicles)
    )
    vehicle_types = [
        VehicleType(depot=d, count=c, capacity=capacity, max_duration_s=md,
                    name=f"depot{d + 1}")
        for (d, capacity, md), c in groups.items()
    ]
    return Problem(
        depots=depots,
        vehicle_types=vehicle_types,
        stops=stops,
        distance_m=weights,
        duration_s=weights.copy(),
        name=str(instance.get("name", "")),
        meta={"round_mode": round_mode, "cost_divisor": divisor,
              "type": str(instance.get("type", ""))},
    )


def read_bks(vrp_path: Path) -> float | None:
    sol = vrp_path.with_suffix(".sol")
    if not sol.exists():
        return None
    import vrplib

    try:
        return float(vrplib.read_solution(str(sol))["cost"])
    except Exception:  # noqa: BLE001 - a malformed .sol just means "no BKS"
        return None


def solve_instance(
    path: str | Path,
    time_limit_s: float,
    seed: int = 1,
    *,
    round_mode: str | None = None,
    solver: Solver | None = None,
) -> BenchResult:
    """Read a VRPLIB instance, solve it with the app's solver and compare with the BKS."""
    import vrplib

    path = Path(path)
    t0 = time.perf_counter()
    instance = vrplib.read_instance(str(path))
    itype = str(instance.get("type", ""))
    mode = round_mode or default_round_mode(itype)
    problem = problem_from_vrplib(instance, mode)
    solver = solver or PyVRPSolver()
    sol = solver.solve(problem, time_limit_s=time_limit_s, seed=seed)
    violations = list(sol.violations) + check_solution(problem, sol)
    feasible = sol.feasible and not violations and not sol.unassigned
    if sol.unassigned:
        violations.append(f"{len(sol.unassigned)} stops unassigned")
    divisor = problem.meta["cost_divisor"]
    cost = sol.cost / divisor
    if divisor == 1:
        cost = int(sol.cost)
    bks = read_bks(path)
    gap = (cost - bks) / bks * 100 if bks else None
    return BenchResult(
        name=problem.name or path.stem,
        type=itype,
        round_mode=mode,
        cost=cost,
        bks=bks,
        gap_pct=gap,
        routes=len(sol.routes),
        feasible=feasible,
        time_s=time.perf_counter() - t0,
        num_stops=len(problem.stops),
        violations=violations,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="vrplib_bench", description="Solve one VRPLIB instance with the geo-crm solver."
    )
    ap.add_argument("instance", help="path to a .vrp file (BKS read from the .sol next to it)")
    ap.add_argument("--time-limit", type=float, default=10.0, help="seconds (default 10)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--round", choices=sorted(ROUND_MODES), default=None,
                    help="rounding convention (default: from the instance TYPE)")
    args = ap.parse_args(argv)
    res = solve_instance(args.instance, args.time_limit, args.seed, round_mode=args.round)
    print(res.line())
    return 0 if res.feasible else 1


if __name__ == "__main__":
    sys.exit(main())
