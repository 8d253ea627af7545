"""`geo-crm spatial ...`: the spatial domain from the command line (system scope).

  geo-crm spatial density --by region|territory|hex [--hex-size-m 5000] [--level key] > out.geojson
  geo-crm spatial nearest --lon 24.94 --lat 60.17 [--kind partner] [--n 3]
  geo-crm spatial branch-distances
  geo-crm spatial voronoi            # recompute branch service areas (nearest branch)
  geo-crm spatial refresh            # refresh the density revenue snapshot (nightly)
"""
from __future__ import annotations

import json

import click


def _session():
    from sqlalchemy.orm import Session

    from geo_crm.cli import _engine
    return Session(_engine())


@click.group("spatial")
def spatial() -> None:
    """Spatial statistics and queries over all customers."""


@spatial.command("density")
@click.option("--by", type=click.Choice(["region", "territory", "hex"]), default="region", show_default=True)
@click.option("--hex-size-m", type=float, default=5000, show_default=True, help="hexagon edge, metres (EPSG:3067)")
@click.option("--level", multiple=True, help="customer level filter (repeatable)")
@click.option("--status", multiple=True, help="customer status filter (repeatable)")
def density_cmd(by, hex_size_m, level, status) -> None:
    """Print the density FeatureCollection (GeoJSON) to stdout."""
    from geo_crm.customers.filters import CustomerFilter, FilterError
    from geo_crm.security.scope import Scope
    from geo_crm.spatial.density import density
    f = CustomerFilter(level=list(level) or None, status=list(status) or None)
    with _session() as s:
        try:
            fc = density(s, Scope.system(), by, f, hex_size_m=hex_size_m)
        except FilterError as e:
            raise click.BadParameter(e.problem, param_hint=e.field)
    click.echo(json.dumps(fc, separators=(",", ":")))


@spatial.command("nearest")
@click.option("--lon", type=float, required=True)
@click.option("--lat", type=float, required=True)
@click.option("--kind", type=click.Choice(["branch", "partner"]), default="branch", show_default=True)
@click.option("--n", type=int, default=3, show_default=True)
def nearest_cmd(lon, lat, kind, n) -> None:
    """Nearest branches or partners with distances (metres, spheroid)."""
    from geo_crm.customers.filters import FilterError
    from geo_crm.security.scope import Scope
    from geo_crm.spatial.queries import nearest
    with _session() as s:
        try:
            for it in nearest(s, Scope.system(), kind, lon, lat, n):
                click.echo(f"{it['distance_m']:>12,.0f} m  {it['code']:<10} {it['name']}")
        except FilterError as e:
            raise click.BadParameter(e.problem, param_hint=e.field)


@spatial.command("branch-distances")
def branch_distances_cmd() -> None:
    """Distance from each branch to the customers it serves (km)."""
    from geo_crm.security.scope import Scope
    from geo_crm.spatial.patterns import branch_distance_table
    with _session() as s:
        click.echo(f"{'branch':30} {'customers':>9} {'median':>8} {'p90':>8} {'max':>8}")
        for r in branch_distance_table(s, Scope.system()):
            fmt = lambda v: f"{v:8.1f}" if v is not None else f"{'-':>8}"  # noqa: E731
            click.echo(f"{r['name'][:30]:30} {r['count']:>9} {fmt(r['median_km'])} {fmt(r['p90_km'])} {fmt(r['max_km'])}")


@spatial.command("voronoi")
def voronoi_cmd() -> None:
    """Recompute every branch's service area as its nearest-branch (Voronoi) cell."""
    from geo_crm.security.scope import Scope
    from geo_crm.territories.service_areas import recompute_voronoi
    with _session() as s:
        n = recompute_voronoi(s, Scope.system())
        s.commit()
    click.echo(f"{n} service areas recomputed; customers reassigned")


@spatial.command("refresh")
@click.option("--no-concurrently", is_flag=True, help="plain REFRESH (faster; blocks readers meanwhile)")
def refresh_cmd(no_concurrently: bool) -> None:
    """Refresh the density revenue snapshot (12 months to today, per customer and per
    region/territory rollup). Schedule nightly, after `geo-crm reports refresh`:

    \b
      15 0 * * *  cd /srv/geo-crm && .venv/bin/geo-crm spatial refresh >> /var/log/geo-crm/spatial.log 2>&1
    """
    from sqlalchemy import text

    from geo_crm.spatial.aggregates import refresh
    with _session() as s, s.begin():
        s.execute(text("SET LOCAL statement_timeout = 0"))
        refresh(s, concurrently=not no_concurrently, log=click.echo)
    click.echo("density snapshot refreshed")
