"""Benchmark the geo-crm routing engine on the VRPLIB instances in shared/vrp.

Usage: python bench/vrp_bench.py [--dir DIR] [--time-limit 10] [--seed 1] [--jobs N]

Prints one line per instance (cost, BKS, gap %) and the average gap over the
X (CVRP) instances.  Instances are solved one at a time by default so each
gets a full core; ``--jobs 2`` solves two at once on a 2-core machine.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from geo_crm.routing.vrplib_bench import BenchResult, format_cost, solve_instance  # noqa: E402

DEFAULT_DIR = REPO.parent / "shared" / "vrp"


def _run(args: tuple[str, float, int]) -> BenchResult:
    path, limit, seed = args
    return solve_instance(path, limit, seed)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"default {DEFAULT_DIR}")
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args(argv)

    files = sorted(args.dir.glob("*.vrp"))
    if not files:
        print(f"no .vrp files in {args.dir}", file=sys.stderr)
        return 2
    work = [(str(f), args.time_limit, args.seed) for f in files]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as ex:
            results = list(ex.map(_run, work))
    else:
        results = [_run(w) for w in work]

    print(f"{'instance':<14}{'type':<8}{'cost':>12}{'BKS':>12}{'gap %':>8}{'routes':>8}"
          f"{'feasible':>10}{'time s':>8}")
    x_gaps = []
    for r in results:
        gap = "-" if r.gap_pct is None else f"{r.gap_pct:.2f}"
        bks = "-" if r.bks is None else format_cost(r.bks)
        print(f"{r.name:<14}{r.type:<8}{format_cost(r.cost):>12}{bks:>12}{gap:>8}{r.routes:>8}"
              f"{str(r.feasible).lower():>10}{r.time_s:>8.1f}")
        for v in r.violations[:5]:
            print(f"    ! {v}")
        if r.name.startswith("X-") and r.gap_pct is not None:
            x_gaps.append(r.gap_pct if r.feasible else float("inf"))
    if x_gaps:
        print(f"average gap on {len(x_gaps)} X instances: {sum(x_gaps) / len(x_gaps):.2f}% "
              f"(time limit {args.time_limit:g} s, seed {args.seed})")
    return 0 if all(r.feasible for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
