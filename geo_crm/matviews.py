"""Materialised views refreshed on a schedule (report views, density snapshot): one
refresh routine and one freshness query, with the times kept in `report_refresh`
(migration 0007)."""
from __future__ import annotations

import time
from typing import Callable, Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session


def refresh(session: Session, views: Iterable[str], *, concurrently: bool = True,
            log: Callable[[str], None] = lambda m: None) -> dict[str, float]:
    """Refresh `views` in order (CONCURRENTLY once populated, so readers are not blocked;
    a never-populated view needs a plain refresh), ANALYZE each, and record when and as
    of which date in `report_refresh`. Returns seconds per view. The caller commits."""
    out = {}
    for view in views:
        populated = session.execute(text("SELECT ispopulated FROM pg_matviews WHERE matviewname = :v "
                                         "AND schemaname = current_schema()"), {"v": view}).scalar()
        how = "CONCURRENTLY " if concurrently and populated else ""
        t0 = time.perf_counter()
        session.execute(text(f"REFRESH MATERIALIZED VIEW {how}{view}"))
        session.execute(text(f"ANALYZE {view}"))  # fresh statistics for the planner
        dt = time.perf_counter() - t0
        session.execute(text(
            "INSERT INTO report_refresh (view_name, refreshed_at, duration_ms, as_of) "
            "VALUES (:v, clock_timestamp(), :ms, current_date) ON CONFLICT (view_name) DO UPDATE "
            "SET refreshed_at = excluded.refreshed_at, duration_ms = excluded.duration_ms, as_of = excluded.as_of"),
            {"v": view, "ms": int(dt * 1000)})
        log(f"refreshed {how.lower()}{view} in {dt:.1f} s")
        out[view] = dt
    return out


def status(session: Session, views: Iterable[str]) -> dict[str, dict]:
    """{view: {"populated", "refreshed_at", "as_of", "duration_ms"}} for those of `views`
    that exist (refreshed_at/as_of None until the first recorded refresh)."""
    rows = session.execute(text(
        "SELECT m.matviewname, m.ispopulated, r.refreshed_at, r.as_of, r.duration_ms "
        "FROM pg_matviews m LEFT JOIN report_refresh r ON r.view_name = m.matviewname "
        "WHERE m.schemaname = current_schema() AND m.matviewname = ANY(:v)"), {"v": list(views)}).all()
    return {r[0]: {"populated": bool(r[1]), "refreshed_at": r[2], "as_of": r[3], "duration_ms": r[4]}
            for r in rows}


def refresh_scheduled(engine, *, concurrently: bool = True, log: Callable[[str], None] = lambda m: None) -> float:
    """The nightly refresh: the report views, then the density revenue snapshot, each in
    its own transaction without a statement timeout. Returns the total seconds."""
    from geo_crm.analytics.revenue import refresh_views
    from geo_crm.spatial.aggregates import refresh as refresh_density

    t0 = time.perf_counter()
    for label, fn in (("report views", refresh_views), ("density snapshot", refresh_density)):
        with Session(engine) as s, s.begin():
            s.execute(text("SET LOCAL statement_timeout = 0"))
            fn(s, concurrently=concurrently, log=log)
        log(f"{label} refreshed")
    return time.perf_counter() - t0
