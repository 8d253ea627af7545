"""CLI: `geo-crm import`, `geocode`, `places import`, `export`, `db readonly-role`."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from geo_crm.imports.schema import KINDS


def _progress():
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
    return Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                    console=__import__("rich.console").console.Console(stderr=True))


@click.command("import")
@click.argument("kind", type=click.Choice(list(KINDS)))
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="validate and report; write nothing")
@click.option("--skip-invalid", is_flag=True, help="import the valid rows; write invalid ones to --rejects")
@click.option("--mapping", "mapping_file", type=click.Path(exists=True, dir_okay=False),
              help="JSON/YAML {field: column header}")
@click.option("--report", "report_file", type=click.Path(dir_okay=False), help="report file (.json or .csv)")
@click.option("--rejects", "rejects_file", type=click.Path(dir_okay=False), help="reject file (CSV)")
@click.option("--crs", default=None, help="CRS of lon/lat or x/y columns, e.g. EPSG:3067 (default EPSG:4326)")
@click.option("--encoding", default=None, help="text encoding of CSV (default: detected)")
@click.option("--delimiter", default=None, help="CSV delimiter (default: sniffed)")
def import_cmd(kind, file, dry_run, skip_invalid, mapping_file, report_file, rejects_file, crs, encoding, delimiter):
    """Import KIND (customers, contacts, branches, partners) from FILE (CSV, XLSX,
    GeoJSON, GeoPackage, zipped Shapefile). All-or-nothing unless --skip-invalid;
    re-importing is idempotent (upsert by code)."""
    from sqlalchemy.orm import Session

    from geo_crm.cli import _engine
    from geo_crm.imports.runner import ImportOptions, load_mapping_file, run_import, write_rejects, write_report
    try:
        mapping = load_mapping_file(mapping_file) if mapping_file else {}
    except ValueError as e:
        raise click.ClickException(f"mapping file: {e}")
    opts = ImportOptions(kind, mapping=mapping, dry_run=dry_run, skip_invalid=skip_invalid, crs=crs,
                         encoding=encoding, delimiter=delimiter)
    with _progress() as bar:
        task = bar.add_task("reading", total=None)

        def progress(stage, done, total):
            bar.update(task, description=stage, completed=done, total=total or None)
        with Session(_engine()) as s:
            s.info.update(username="cli")
            report = run_import(s, file, opts, progress=progress)
            if report["status"] == "imported":
                s.commit()
            else:
                s.rollback()
    if report_file:
        write_report(report, report_file)
    if skip_invalid and report.get("invalid"):
        out = rejects_file or str(Path(file).with_suffix("")) + ".rejects.csv"
        n = write_rejects(file, opts, report, out)
        click.echo(f"{n} rejected rows written to {out}", err=True)
    for e in report["errors"][:20]:
        click.echo(f"error: row {e['row'] or '-'} {e['field']}: {e['problem']}", err=True)
    if len(report["errors"]) > 20:
        click.echo(f"... {len(report['errors']) - 20} more errors (see --report)", err=True)
    for w in report["warnings"][:10]:
        click.echo(f"warning: row {w['row'] or '-'} {w['field']}: {w['problem']}", err=True)
    for d in report["duplicates"][:10]:
        click.echo(f"possible duplicate: row {d['row']} {d['code']} ~ {d.get('duplicate_of_code')} "
                   f"({d['where']}, {d['distance_m']} m)", err=True)
    summary = {k: report.get(k) for k in ("status", "rows", "valid", "invalid", "inserted", "updated", "unchanged")}
    if dry_run:
        summary["would"] = report.get("would")
    summary["duplicates"] = len(report["duplicates"])
    click.echo(json.dumps(summary))
    if report["status"] == "failed":
        raise click.exceptions.Exit(1)


@click.command("geocode")
@click.option("--missing", is_flag=True, help="customers without a location (default)")
@click.option("--all", "all_", is_flag=True, help="re-geocode every customer except manual corrections")
@click.option("--limit", type=int, default=None)
def geocode_cmd(missing, all_, limit):
    """Batch-geocode customers (offline gazetteer; online provider if GEOCODER_URL is set).
    Locations corrected by hand (geocode_quality=manual) are never changed."""
    from sqlalchemy.orm import Session

    from geo_crm.cli import _engine
    from geo_crm.geocoding.batch import geocode_customers
    from geo_crm.security.scope import Scope
    with _progress() as bar, Session(_engine()) as s:
        s.info.update(username="cli")
        task = bar.add_task("geocoding", total=None)
        counts = geocode_customers(s, Scope.system(), missing_only=not all_, limit=limit,
                                   progress=lambda d, t: bar.update(task, completed=d, total=t))
        s.commit()
    click.echo(json.dumps(counts))


@click.group("places")
def places():
    """The offline geocoding gazetteer."""


@places.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--append", is_flag=True, help="keep existing address points")
def places_import(file, append):
    """Load address points from an OSM extract (.osm.pbf) into the gazetteer."""
    from geo_crm.cli import _engine
    from geo_crm.geocoding.batch import load_address_points
    from geo_crm.osm import OSMReadError, read_address_points
    try:
        points = read_address_points(file)
    except OSMReadError as e:
        raise click.ClickException(str(e))
    with _engine().begin() as conn:
        n = load_address_points(conn, points, replace=not append)
    click.echo(f"{n} address points loaded")


def _export_options(f):
    for opt in reversed([
            click.option("--q", default=None, help="text search"),
            click.option("--level", multiple=True), click.option("--status", multiple=True),
            click.option("--industry", multiple=True), click.option("--owner-id", type=int),
            click.option("--region-id", type=int), click.option("--territory-id", type=int),
            click.option("--branch-id", type=int), click.option("--bbox", help="minlon,minlat,maxlon,maxlat"),
            click.option("--near", help="lon,lat"), click.option("--radius-m", type=float),
            click.option("--within", help="GeoJSON polygon (or @file)")]):
        f = opt(f)
    return f


@click.command("export")
@click.argument("what", type=click.Choice(["customers"]))
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx", "geojson", "gpkg", "kml"]), default="csv",
              show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("--as-user", default=None, help="apply this CRM user's visibility (default: everything)")
@_export_options
def export_cmd(what, fmt, output, as_user, **filters):
    """Export customers matching the filters (same as the API) to a file."""
    from pydantic import ValidationError
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from geo_crm.cli import _engine
    from geo_crm.customers.filters import CustomerFilter, FilterError
    from geo_crm.exports import export_customers
    from geo_crm.models import User
    from geo_crm.security.scope import Scope
    if filters.get("within", "") and filters["within"].startswith("@"):
        filters["within"] = Path(filters["within"][1:]).read_text(encoding="utf-8")
    clean = {k: (list(v) if isinstance(v, tuple) else v) for k, v in filters.items() if v not in (None, ())}
    try:
        f = CustomerFilter(**clean)
    except (ValidationError, FilterError) as e:
        raise click.ClickException(f"invalid filter: {e}")
    with Session(_engine()) as s:
        scope = Scope.system()
        if as_user:
            u = s.execute(select(User).where(User.username == as_user, User.is_active)).scalar_one_or_none()
            if u is None:
                raise click.ClickException(f"no active user {as_user!r}")
            scope = Scope.for_user(u)
        data = export_customers(s, scope, f, fmt)
    Path(output).write_bytes(data)
    click.echo(f"{output}: {len(data)} bytes")


@click.group("readonly-role")
def readonly_role():
    """Read-only PostgreSQL logins for GIS tools, limited by row-level security."""


@readonly_role.command("create")
@click.argument("name")
@click.option("--as-user", "username", required=True, help="CRM user whose visibility the role gets")
@click.option("--password-stdin", is_flag=True, required=True, help="read the password from standard input")
def readonly_role_create(name, username, password_stdin):
    """Create login role NAME (SELECT only; rows limited to what --as-user may see)."""
    from geo_crm.cli import _engine
    from geo_crm.exports.gis_role import RoleError, create_readonly_role
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        with _engine().begin() as conn:
            info = create_readonly_role(conn, name, password, username)
    except RoleError as e:
        raise click.ClickException(str(e))
    click.echo(f"role {name} created: sees what {username} ({info['crm_role']}) sees; "
               f"tables: {', '.join(info['tables'])}")


@readonly_role.command("drop")
@click.argument("name")
def readonly_role_drop(name):
    """Drop a GIS read-only role."""
    from geo_crm.cli import _engine
    from geo_crm.exports.gis_role import RoleError, drop_readonly_role
    try:
        with _engine().begin() as conn:
            drop_readonly_role(conn, name)
    except RoleError as e:
        raise click.ClickException(str(e))
    click.echo(f"role {name} dropped")


def _attach_db_group() -> None:
    from geo_crm.cli import db
    if "readonly-role" not in db.commands:
        db.add_command(readonly_role)


_attach_db_group()
