"""Reports benchmark on the 1M-customer bench database `geocrm_bench`.

    .venv/bin/python bench/reports_bench.py            # ensure DB, refresh views, time each report
    .venv/bin/python bench/reports_bench.py --ensure-only

The database lives in the embedded cluster. If it does not exist it is created the
same way `bench/spatial_bench.py` does (CREATE DATABASE, alembic upgrade head,
`load_sample(customers=1_000_000, seed=1)`); if it exists but is still being loaded
by someone else (customer count below 1,000,000) we wait. It is never dropped.
Prints the time of each report (executive scope = all 1M customers, and a regional
manager's scope) over the default 12-month window and custom periods (mid-month start,
whole months across a year, inside one month, across a year boundary, year to date),
best and median of --runs runs, with the load average before and after (the machine is
shared: other work inflates the timings), after `geo-crm reports refresh` has refreshed
the materialised views.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date, timedelta
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


def _timed(fn, *a, **kw):
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t0


def _load() -> str:
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average n/a"


def custom_periods(as_of: date) -> list[tuple[str, date, date]]:
    """The default window and custom periods relative to the views' as-of date: a start in
    mid-month, twelve whole months of the previous July..June, a few days inside one month,
    six weeks across a year boundary, and the year to date."""
    y = as_of.year
    return [("default 12 months", as_of - timedelta(days=364), as_of),
            ("mid-March .. last month end", date(y, 3, 15), as_of.replace(day=1) - timedelta(days=1)),
            ("July .. June (whole months)", date(y - 1, 7, 1), date(y, 6, 30)),
            ("inside one month", date(y, 5, 3), date(y, 5, 20)),
            ("across the year boundary", date(y - 1, 12, 10), date(y, 1, 20)),
            ("year to date", date(y, 1, 1), as_of)]


def run_bench(url: str, *, refresh: bool = True, runs: int = 3, reports: list[str] | None = None,
              log=print) -> list[tuple[str, str, str, float, str]]:
    """Time every report for an executive (all 1M customers) and a regional manager, over
    the default window and the custom periods; best and median of `runs` runs each.
    Returns (who, report, period, best seconds, source kind)."""
    from sqlalchemy.orm import Session

    from geo_crm.analytics.registry import CATALOGUE, ReportQuery, build_params, run
    from geo_crm.analytics.revenue import refresh_views, views_as_of
    from geo_crm.db import make_engine
    from geo_crm.models import User
    from geo_crm.security.scope import Scope
    eng = make_engine(url, pool_size=2, statement_timeout_ms=0)
    results = []
    log(f"{_load()} at start ({os.cpu_count()} CPUs; other work on the machine inflates the timings)")
    with Session(eng) as s:
        n_c = s.execute(text("SELECT count(*) FROM customer")).scalar()
        n_o = s.execute(text("SELECT reltuples::bigint FROM pg_class WHERE relname = 'sales_order'")).scalar()
        n_l = s.execute(text("SELECT reltuples::bigint FROM pg_class WHERE relname = 'order_line'")).scalar()
        log(f"geocrm_bench: {n_c:,} customers, ~{n_o:,} orders, ~{n_l:,} order lines")
    if refresh:
        with Session(eng) as s, s.begin():
            s.execute(text("SET LOCAL statement_timeout = 0"))
            times = refresh_views(s, concurrently=True)
        for view, dt in times.items():
            results.append(("refresh", view, "", dt, ""))
            log(f"refresh {view:<28} {dt:7.2f} s")
    with Session(eng) as s:
        regional = s.query(User).filter(User.username == "regional").one()
        scopes = {"executive": Scope(role="executive", username="executive"), "regional": Scope.for_user(regional)}
        as_of = views_as_of(s) or date.today()
        names = reports or list(CATALOGUE)
        for who, scope in scopes.items():
            for name in names:
                periods = custom_periods(as_of) if CATALOGUE[name].uses_period else custom_periods(as_of)[:1]
                for label, frm, to in periods:
                    q = ReportQuery(date_from=frm, date_to=to)
                    p = build_params(s, q)
                    times, kind = [], ""
                    for _ in range(runs):
                        rep, dt = _timed(run, s, scope, name, q, p)
                        s.rollback()
                        times.append(dt)
                        kind = rep["source"]["kind"]
                    best, med = min(times), statistics.median(times)
                    results.append((who, name, label, best, kind))
                    log(f"{who:<10} {name:<13} {label:<30} {frm}..{to}  best {best:6.2f} s  median {med:6.2f} s"
                        f"  ({kind})")
        exe = scopes["executive"]
        from geo_crm.analytics.contribution import contribution
        p = build_params(s, ReportQuery())
        for label, params in [("contribution, level=key (12m view)", p.with_(level=("key",))),
                              ("contribution, region filter", p.with_(region_id=1)),
                              ("contribution, live (no views)", p.with_(source="live"))]:
            rep, dt = _timed(contribution, s, exe, params)
            s.rollback()
            results.append(("executive", label, "default 12 months", dt, rep["source"]["kind"]))
            log(f"executive  {label:<44} {dt:6.2f} s  ({rep['source']['kind']})")
    log(f"{_load()} at end")
    eng.dispose()
    return results


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--ensure-only", action="store_true")
    ap.add_argument("--no-refresh", action="store_true", help="time the reports on the views as they are")
    ap.add_argument("--runs", type=int, default=3, help="runs per report and period (best and median shown)")
    ap.add_argument("--reports", help="comma-separated report names (default: all)")
    args = ap.parse_args()
    url = ensure_bench_db()
    if not args.ensure_only:
        res = run_bench(url, refresh=not args.no_refresh, runs=args.runs,
                        reports=args.reports.split(",") if args.reports else None)
        slow = [r for r in res if r[0] != "refresh" and "live (no views)" not in r[1] and r[3] >= 5.0]
        print("all reports under 5 s" if not slow else f"SLOW ({len(slow)}): {slow}")
