"""Sample-load benchmark: `load_sample(customers=N)` into a fresh, freshly migrated
database in the embedded cluster (or the server of --server-url), then the nightly view
refresh that `geo-crm sample load` runs afterwards. The database is dropped at the end.

    python bench/sample_load_bench.py [--customers 1000000] [--seed 42] [--keep]

Prints the loader's per-step progress lines (each says how long the previous step took),
the row counts, the load time, the refresh time and the load average.
Target (issue 2): 1M customers in a few minutes on a 2-core machine (under 4 min).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--server-url", default=None, help="any database URL on the target server "
                                                       "(default: the embedded cluster)")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--no-refresh", action="store_true")
    args = ap.parse_args()

    from alembic import command

    from geo_crm import embedded_pg
    from geo_crm.cli import alembic_config
    from geo_crm.matviews import refresh_scheduled
    from geo_crm.sample.loader import load_sample

    base = make_url(args.server_url or embedded_pg.url())
    name = f"geocrm_loadbench_{os.getpid()}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name)
    try:
        command.upgrade(alembic_config(url.render_as_string(hide_password=False)), "head")
        engine = create_engine(url)
        print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
        t0 = time.perf_counter()
        stats = load_sample(engine, customers=args.customers, seed=args.seed,
                            log=lambda m: print(f"[{time.perf_counter() - t0:7.1f} s] {m}", flush=True))
        load_s = time.perf_counter() - t0
        print("rows: " + ", ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in stats.items()))
        refresh_s = None
        if not args.no_refresh:
            refresh_s = refresh_scheduled(engine, concurrently=False, log=lambda m: print("  " + m, flush=True))
        print(f"\nsample load, {args.customers:,} customers: {load_s:.1f} s (target < 240 s)")
        if refresh_s is not None:
            print(f"view refresh afterwards: {refresh_s:.1f} s; together {load_s + refresh_s:.1f} s")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        engine.dispose()
    finally:
        if not args.keep:
            _drop(admin, name)
    return 0


def _drop(admin, name: str) -> None:
    """Drop the bench database; autovacuum may still be analysing the fresh tables (its
    worker is not ours to terminate), so wait for it rather than force."""
    from sqlalchemy.exc import OperationalError
    for _ in range(60):
        try:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            return
        except OperationalError:
            time.sleep(2)
    print(f"could not drop {name}: still in use; drop it later with DROP DATABASE", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
