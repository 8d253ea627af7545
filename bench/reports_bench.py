"""Reports benchmark on the 1M-customer bench database `geocrm_bench`.

    .venv/bin/python bench/reports_bench.py            # ensure DB, refresh views, time each report
    .venv/bin/python bench/reports_bench.py --ensure-only

The database lives in the embedded cluster. If it does not exist it is created the
same way `bench/spatial_bench.py` does (CREATE DATABASE, alembic upgrade head,
`load_sample(customers=1_000_000, seed=1)`); if it exists but is still being loaded
by someone else (customer count below 1,000,000) we wait. It is never dropped.
Prints the time of each report (executive scope = all 1M customers, and a regional
manager's scope) after `geo-crm reports refresh` has refreshed the materialised views.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402

BENCH_DB = "geocrm_bench"
BENCH_CUSTOMERS = 1_000_000


def _bench_url() -> str:
    from geo_crm import embedded_pg
    embedded_pg.start(log=lambda m: None)
    return embedded_pg.url(BENCH_DB)


def _customer_count(url: str) -> int | None:
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            if not c.execute(text("SELECT to_regclass('public.customer') IS NOT NULL")).scalar():
                return None
            return c.execute(text("SELECT count(*) FROM customer")).scalar()
    finally:
        eng.dispose()


def ensure_bench_db(log=print) -> str:
    """Create and load geocrm_bench unless it exists; wait while another process loads it."""
    from alembic import command

    from geo_crm import embedded_pg
    from geo_crm.cli import alembic_config
    url = _bench_url()
    admin = create_engine(embedded_pg.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        exists = c.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": BENCH_DB}).scalar()
        created = False
        if not exists:
            try:
                c.execute(text(f'CREATE DATABASE "{BENCH_DB}"'))
                created = True
            except Exception as e:  # someone else created it a moment ago
                log(f"CREATE DATABASE failed ({e.__class__.__name__}); assuming another loader")
    admin.dispose()
    if created:
        log("created database geocrm_bench; migrating and loading 1,000,000 customers (takes a while)")
        command.upgrade(alembic_config(url), "head")
        from geo_crm.sample.loader import load_sample
        eng = create_engine(url)
        t0 = time.perf_counter()
        load_sample(eng, customers=BENCH_CUSTOMERS, seed=1, log=log)
        eng.dispose()
        log(f"loaded in {time.perf_counter() - t0:.0f} s")
        return url
    # exists: wait until fully loaded (the loader commits in one transaction)
    waited = 0
    while (_customer_count(url) or 0) < BENCH_CUSTOMERS:
        if waited % 60 == 0:
            log("geocrm_bench exists but is not fully loaded yet; waiting")
        time.sleep(10)
        waited += 10
    command.upgrade(alembic_config(url), "head")  # adds views from newer migrations
    return url


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--ensure-only", action="store_true")
    args = ap.parse_args()
    ensure_bench_db()
