"""Benchmark delivery planning on the database (dev DB by default), inside one
transaction that is rolled back: nothing is left behind.

Usage: python bench/routing_bench.py [--database-url URL] [--seed 1]
           [--network-limit 8] [--finland-limit 40]

Prints:
1. the 200 x 200 Helsinki road matrix (snapping + pgr_dijkstraCostMatrix)   target < 3 s
2. a 200-stop Helsinki road-network plan end to end (DB read + matrix + solve
   + road geometry), stops = 200 OSM address points as customers with orders
   due on the bench date                                                     target < 15 s
3. a 1,000-stop haversine plan across Finland: 20 vans at the branches outside
   Helsinki, 50 new customers per van within 12 km of its branch, half with a
   5-hour delivery window, 1-2 units and 5 min service each                             target < 60 s, feasible
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

BENCH_DATE = date(2030, 1, 7)   # a Monday with no sample orders


def _line(label: str, secs: float, target: float, extra: str = "") -> None:
    ok = "OK" if secs < target else "SLOW"
    print(f"{label:<44} {secs:7.2f} s  (target < {target:g} s, {ok}){'  ' + extra if extra else ''}", flush=True)


def helsinki_points(s: Session, n: int, seed: int) -> list[tuple[int, float, float]]:
    s.execute(text("SELECT setseed(:r)"), {"r": (seed % 1000) / 1000})
    return s.execute(text("SELECT id, ST_X(geom), ST_Y(geom) FROM address_point ORDER BY random() LIMIT :n"),
                     {"n": n}).all()


def bench_matrix(s: Session, pts) -> float:
    from geo_crm.routing import network
    t = time.perf_counter()
    snaps = network.snap_points(s.connection(), [(x, y) for _, x, y in pts])
    dist, dur = network.travel_matrices(s.connection(), snaps)
    secs = time.perf_counter() - t
    unreachable = int((dist >= 10**12).sum())
    _line(f"{len(pts)} x {len(pts)} Helsinki road matrix", secs, 3,
          f"covered {sum(x.covered for x in snaps)}/{len(pts)}, unreachable pairs {unreachable}")
    return secs


def make_helsinki_orders(s: Session, pts, seed: int) -> None:
    """200 customers at OSM address points, each with an order due on BENCH_DATE."""
    s.execute(text("""
        INSERT INTO customer (code, name, address, city, geom, geocode_quality, delivery_start, delivery_end,
                              service_min)
        SELECT 'BENCH-' || a.id, 'Bench ' || a.street || ' ' || a.housenumber, a.street || ' ' || a.housenumber,
               'Helsinki', a.geom, 'exact',
               make_time(7 + (a.id % 4)::int, 0, 0), make_time(13 + (a.id % 5)::int, 0, 0), 5
          FROM address_point a WHERE a.id = ANY(:ids)"""), {"ids": [p[0] for p in pts]})
    s.execute(text("""
        INSERT INTO sales_order (number, customer_id, order_date, delivery_date, status, total_load)
        SELECT 'BENCH' || c.id, c.id, :d, :d, 'confirmed', 1 + (c.id % 4)
          FROM customer c WHERE c.code LIKE 'BENCH-%'"""), {"d": BENCH_DATE})


def bench_network_plan(s: Session, pts, limit: float, seed: int) -> None:
    from geo_crm.routing import planner
    from geo_crm.routing.planner import PlanRequest
    from geo_crm.routing.solver import check_solution
    from geo_crm.security.scope import Scope
    make_helsinki_orders(s, pts, seed)
    t = time.perf_counter()
    prep = planner.prepare(s, Scope.system(), PlanRequest(plan_date=BENCH_DATE, branch_ids=[1], time_limit_s=limit,
                                                          seed=seed, mode="auto"))
    res = planner.compute(s.connection(), prep)
    secs = time.perf_counter() - t
    sm = res.summary()
    errs = check_solution(res.problem, res.solution)
    _line(f"{len(prep.stops)}-stop Helsinki network plan", secs, 15,
          f"mode={sm['mode']} routes={sm['routes']} served={sm['served']}/{sm['stops']} "
          f"unassigned={sm['unassigned_by_reason']} km={sm['distance_m'] / 1000:.1f} "
          f"feasible={sm['feasible'] and not errs} matrix={sm['timings_s']['matrix']}s "
          f"solve={sm['timings_s'].get('solve')}s geometry={sm['timings_s']['geometry']}s")


def bench_finland(s: Session, limit: float, seed: int) -> None:
    from geo_crm.routing import planner
    from geo_crm.routing.planner import PlanRequest, StopOverride
    from geo_crm.routing.solver import check_solution
    from geo_crm.security.scope import Scope
    # 20 vans from the branches outside Helsinki, spread round-robin over the branches
    fleet = s.execute(text("""
        SELECT id, branch_id FROM (
            SELECT v.id, v.branch_id, row_number() OVER (PARTITION BY v.branch_id ORDER BY v.id) AS k
              FROM vehicle v WHERE v.active AND v.branch_id > 1) x
         ORDER BY k, branch_id LIMIT 20""")).all()
    vehicles = [v for v, _ in fleet]
    per_branch: dict[int, int] = {}
    for _, b in fleet:
        per_branch[b] = per_branch.get(b, 0) + 1
    branches = sorted(per_branch)
    # 50 new customers per van, uniformly within 12 km of its branch; half have a 5-hour
    # delivery window starting between 07:00 and 11:00, the others 07:00-17:00 (seeded)
    s.execute(text("SELECT setseed(:r)"), {"r": ((seed + 7) % 1000) / 1000})
    s.execute(text("""
        INSERT INTO customer (code, name, address, city, geom, geocode_quality, delivery_start, delivery_end,
                              service_min)
        SELECT 'BENCHFI-' || b.id || '-' || g, 'Bench ' || b.city || ' ' || g, 'Benchkatu ' || g, b.city,
               ST_Project(b.geom::geography, 12000 * sqrt(random()), 2 * pi() * random())::geometry, 'exact',
               CASE WHEN w < 5 THEN make_time(7 + w, 0, 0) ELSE time '07:00' END,
               CASE WHEN w < 5 THEN make_time(12 + w, 0, 0) ELSE time '17:00' END, 5
          FROM branch b CROSS JOIN LATERAL generate_series(1, 50 * (CAST(:n_per AS int[]))[array_position(CAST(:bs AS int[]), b.id)]) g
          CROSS JOIN LATERAL (SELECT floor(random() * 10)::int + 0 * g AS w) tw
         WHERE b.id = ANY(:bs)"""), {"bs": branches, "n_per": [per_branch[b] for b in branches]})
    ids = s.execute(text("SELECT id FROM customer WHERE code LIKE 'BENCHFI-%' ORDER BY id")).scalars().all()
    stops = [StopOverride(customer_id=c, demand=1 + c % 2) for c in ids]
    t = time.perf_counter()
    prep = planner.prepare(s, Scope.system(), PlanRequest(
        plan_date=BENCH_DATE, branch_ids=branches, source="customers", customer_ids=ids, stops=stops,
        vehicle_ids=vehicles, mode="haversine", time_limit_s=limit, seed=seed))
    res = planner.compute(s.connection(), prep)
    secs = time.perf_counter() - t
    sm = res.summary()
    errs = check_solution(res.problem, res.solution)
    with_tw = sum(1 for x in prep.stops if x.tw_end_s < 10**9)
    _line(f"{len(prep.stops)}-stop Finland haversine plan, {len(vehicles)} veh", secs, 60,
          f"depots={len(branches)} with_time_windows={with_tw} routes={sm['routes']} "
          f"served={sm['served']}/{sm['stops']} unassigned={sm['unassigned_by_reason']} "
          f"km={sm['distance_m'] / 1000:.0f} feasible={sm['feasible'] and not errs}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--network-limit", type=float, default=8.0, help="solver seconds for the 200-stop plan")
    ap.add_argument("--finland-limit", type=float, default=40.0, help="solver seconds for the 1,000-stop plan")
    args = ap.parse_args(argv)
    from geo_crm.cli import _engine
    eng = _engine(args.database_url)
    try:
        with eng.connect() as conn:
            tx = conn.begin()
            try:
                s = Session(bind=conn, join_transaction_mode="create_savepoint")
                pts = helsinki_points(s, 200, args.seed)
                bench_matrix(s, pts)
                bench_network_plan(s, pts, args.network_limit, args.seed)
                bench_finland(s, args.finland_limit, args.seed)
            finally:
                tx.rollback()
    finally:
        eng.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
