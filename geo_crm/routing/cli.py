"""`geo-crm roads …` and `geo-crm routes …` commands (system scope: the CLI sees everything)."""
from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path

import click


@click.group()
def roads() -> None:
    """The routable road network (pgRouting)."""


@roads.command("import")
@click.argument("pbf", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def roads_import(pbf: Path) -> None:
    """Import an OpenStreetMap extract (.osm.pbf/.osm) as the road network.

    The previous network is replaced in one transaction: on any error nothing changes."""
    from sqlalchemy import text

    from geo_crm.cli import _engine
    from geo_crm.osm import OSMReadError, read_road_segments
    from geo_crm.routing.roads import store_segments
    try:
        segments = read_road_segments(pbf)
    except OSMReadError as e:
        raise click.ClickException(f"cannot read {pbf}: {e}")
    if not segments:
        raise click.ClickException(f"{pbf} contains no drivable roads; the current network is kept")
    eng = _engine()
    try:
        with eng.begin() as conn:
            n = store_segments(conn, segments)
            v, ow, km = conn.execute(text(
                "SELECT (SELECT count(*) FROM road_vertex), count(*) FILTER (WHERE oneway), "
                "coalesce(sum(length_m), 0) / 1000 FROM road_segment")).one()
            conn.execute(text("ANALYZE road_vertex"))
    finally:
        eng.dispose()
    click.echo(f"imported {n:,} segments, {int(v):,} vertices, {int(ow):,} one-way segments, "
               f"{float(km):,.1f} km of road from {pbf.name}")


@click.group()
def routes() -> None:
    """Delivery route planning."""


@routes.command("plan")
@click.option("--branch", "branches", required=True, multiple=True, help="branch code or id (repeat: multi-depot)")
@click.option("--date", "plan_date", default=None, help="YYYY-MM-DD (default: tomorrow)")
@click.option("--mode", type=click.Choice(["auto", "network", "haversine"]), default="auto", show_default=True)
@click.option("--time-limit", type=float, default=10.0, show_default=True, help="seconds")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--vehicles", "max_vehicles", type=int, default=None, help="use at most N vehicles")
def routes_plan(branches, plan_date, mode, time_limit, seed, max_vehicles) -> None:
    """Plan the confirmed orders due on a date from a branch and save the plan."""
    from geo_crm.api.routes import resolve_branches
    from geo_crm.cli import _engine
    from geo_crm.routing import jobs
    from geo_crm.routing.planner import PlanInputError, PlanRequest
    from geo_crm.security.scope import Scope
    from sqlalchemy.orm import Session
    try:
        d = date.fromisoformat(plan_date) if plan_date else date.today() + timedelta(days=1)
    except ValueError:
        raise click.BadParameter("use YYYY-MM-DD", param_hint="--date")
    eng = _engine()
    try:
        with Session(eng, expire_on_commit=False) as s:
            try:
                req = PlanRequest(plan_date=d, branch_ids=resolve_branches(s, list(branches)), mode=mode,
                                  time_limit_s=time_limit, seed=seed, max_vehicles=max_vehicles)
                plan = jobs.start_plan(s, Scope.system(), req)
            except PlanInputError as e:
                s.rollback()
                raise click.ClickException(f"{e.field}: {e.problem}")
            s.commit()
            sm = plan.summary
    finally:
        eng.dispose()
    click.echo(f"plan {plan.id} ({sm['mode']}): {sm['routes']} routes, {sm['served']}/{sm['stops']} stops served, "
               f"{sm['distance_m'] / 1000:.1f} km, feasible={str(sm['feasible']).lower()}, "
               f"{sm['timings_s'].get('total', 0):.1f} s")
    for reason, count in sorted(sm["unassigned_by_reason"].items()):
        click.echo(f"  unassigned {reason}: {count}")
    for w in sm.get("warnings", []):
        click.echo(f"  warning: {w}")


@routes.command("export")
@click.argument("plan_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["gpx", "kml", "geojson", "csv", "html"]), default="gpx",
              show_default=True)
@click.option("--route", "route_no", type=int, default=None, help="one route number only")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="file to write (default: stdout)")
def routes_export(plan_id, fmt, route_no, output) -> None:
    """Export a saved plan."""
    from sqlalchemy.orm import Session

    from geo_crm.cli import _engine
    from geo_crm.errors import NotFound
    from geo_crm.routing import exports
    from geo_crm.routing.persist import plan_detail
    from geo_crm.security.scope import Scope
    eng = _engine()
    try:
        with Session(eng) as s:
            try:
                d = plan_detail(s, Scope.system(), plan_id)
            except NotFound:
                raise click.ClickException(f"no plan {plan_id}")
    finally:
        eng.dispose()
    if d["status"] != "planned":
        raise click.ClickException(f"plan {plan_id} is {d['status']}")
    data, _, fname = exports.export(d, fmt, route_no)
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
        click.echo(f"wrote {output} ({len(data):,} bytes)", err=True)


@routes.command("bench", context_settings={"ignore_unknown_options": True})
@click.argument("instance", type=click.Path(exists=True, dir_okay=False))
@click.option("--time-limit", type=float, default=10.0, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
def routes_bench(instance, time_limit, seed) -> None:
    """Solve a VRPLIB instance (CVRP, VRPTW, MDVRPTW) with the app's solver; prints
    `cost=… routes=… feasible=… time_s=…`."""
    from geo_crm.routing.vrplib_bench import main
    rc = main([instance, "--time-limit", str(time_limit), "--seed", str(seed)])
    if rc:
        raise SystemExit(rc)
