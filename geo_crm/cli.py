"""The `geo-crm` command line. Feature command groups are listed in FEATURE_COMMANDS
(one line each) and loaded lazily, so a broken optional feature cannot break `db`."""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

from geo_crm import embedded_pg

ROOT = Path(__file__).resolve().parent.parent

# "module:attribute" of click commands/groups contributed by features
FEATURE_COMMANDS: list[str] = [
    "geo_crm.spatial.cli:spatial",
    "geo_crm.churn.cli:churn",
    "geo_crm.analytics.cli:reports",
    "geo_crm.routing.cli:routes",
    "geo_crm.routing.cli:roads",
    "geo_crm.imports.cli:import_cmd",
    "geo_crm.imports.cli:geocode_cmd",
    "geo_crm.imports.cli:places",
    "geo_crm.imports.cli:export_cmd",
    "geo_crm.backup:backup_cmd",
    "geo_crm.backup:restore_cmd",
]


def _database_url() -> str:
    from geo_crm.config import database_url, load_env
    load_env()
    return database_url()


def _engine(url: str | None = None):
    from geo_crm.db import make_engine
    return make_engine(url or _database_url(), pool_size=2, statement_timeout_ms=0)


def using_embedded() -> bool:
    from geo_crm.config import load_env
    load_env()
    return not os.environ.get("DATABASE_URL")


@click.group()
def cli() -> None:
    """geo-crm: a PostGIS-backed CRM where every customer has a place on the map."""


# -- db -------------------------------------------------------------------------------
@cli.group()
def db() -> None:
    """The database: embedded cluster and migrations."""


@db.command("start")
def db_start() -> None:
    """Create (if needed) and start the project-local PostGIS cluster."""
    if not using_embedded():
        click.echo("DATABASE_URL is set: using that server, not the embedded cluster.")
        return
    embedded_pg.start(log=click.echo)
    click.echo(embedded_pg.status())


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster (data is kept)."""
    embedded_pg.stop(log=click.echo)


@db.command("status")
def db_status() -> None:
    """Show where the embedded cluster lives and whether it runs."""
    click.echo(embedded_pg.status())
    if not using_embedded():
        click.echo("note: DATABASE_URL is set, so the app uses that server instead")


@db.command("url")
@click.option("--database", default=None, help="another database in the embedded cluster")
def db_url(database: str | None) -> None:
    """Print the SQLAlchemy URL the app uses (contains the password: keep it private)."""
    click.echo(embedded_pg.url(database) if database else _database_url())


def alembic_config(url: str):
    from alembic.config import Config
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Run Alembic migrations up to REVISION."""
    from alembic import command
    command.upgrade(alembic_config(_database_url()), revision)
    click.echo(f"database at {revision}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Run Alembic migrations down to REVISION (e.g. base)."""
    from alembic import command
    command.downgrade(alembic_config(_database_url()), revision)
    click.echo(f"database at {revision}")


@db.command("refresh-areas")
def db_refresh_areas() -> None:
    """Recompute every customer's region, territories and service branch (set-based)."""
    from sqlalchemy import text
    with _engine().begin() as c:
        c.execute(text("SELECT crm_refresh_membership()"))
    click.echo("area membership refreshed")


# -- sample -------------------------------------------------------------------------------
@cli.group()
def sample() -> None:
    """Sample data: a Helsinki-based wholesale distributor selling across Finland."""


@sample.command("load")
@click.option("--customers", default=5000, show_default=True, type=click.IntRange(10, 5_000_000))
@click.option("--seed", default=42, show_default=True)
@click.option("--if-empty", is_flag=True, help="do nothing when customers exist already")
@click.option("--refresh/--no-refresh", default=True, show_default=True,
              help="refresh the report views and density snapshot afterwards (as `geo-crm reports refresh`)")
def sample_load(customers: int, seed: int, if_empty: bool, refresh: bool) -> None:
    """Load the sample data (deterministic for a seed; re-running replaces it)."""
    import time

    from geo_crm.matviews import refresh_scheduled
    from geo_crm.sample.loader import load_sample
    engine = _engine()
    t0 = time.perf_counter()
    stats = load_sample(engine, customers=customers, seed=seed, if_empty=if_empty, log=click.echo)
    if stats:
        click.echo("loaded: " + ", ".join(f"{k}={v}" for k, v in stats.items())
                   + f" in {time.perf_counter() - t0:.1f} s")
        if refresh:
            dt = refresh_scheduled(engine, concurrently=False, log=click.echo)
            click.echo(f"report views and density snapshot refreshed in {dt:.1f} s")


# -- users ----------------------------------------------------------------------------------
@cli.group()
def users() -> None:
    """User accounts."""


@users.command("create")
@click.option("--username", required=True)
@click.option("--role", required=True)
@click.option("--full-name", default="")
@click.option("--password-stdin", is_flag=True, required=True, help="read the password from standard input")
@click.option("--branch-id", type=int, default=None)
@click.option("--customer-id", type=int, default=None)
def users_create(username, role, full_name, password_stdin, branch_id, customer_id) -> None:
    """Create a user; the password is read from standard input, never from arguments."""
    from sqlalchemy.orm import Session

    from geo_crm.security.auth import create_user
    password = sys.stdin.readline().rstrip("\r\n")
    engine = _engine()
    with Session(engine) as s, s.begin():
        try:
            u = create_user(s, username=username, role=role, password=password, full_name=full_name,
                            branch_id=branch_id, customer_id=customer_id)
        except ValueError as e:
            raise click.ClickException(str(e))
        uid = u.id
    click.echo(f"created user {username} ({role}) id={uid}")


# -- abandoned background work --------------------------------------------------------------
ABANDONED = "abandoned: the server stopped while this was running; nothing was saved, run it again"


def reap_abandoned(engine, *, older_than_s: float | None = None, wait_s: float = 10.0) -> dict:
    """Mark import jobs left 'queued'/'running' and route plans left 'queued'/'solving' by
    a process that died (kill -9, OOM, power loss) as failed, so nothing waits forever.

    Both are written in one transaction with their result, so a dead process leaves no
    half-written rows, only the status. Two rules decide what is dead:
    - `older_than_s` None (server start): only when no other geo-crm process is connected
      to the database (every live web worker, job thread or CLI keeps a pooled connection;
      the backends of a killed process go away once their last statement ends), after
      waiting up to `wait_s` seconds for them to go;
    - `older_than_s` given (cron, several app servers): work started more than that long
      ago, whoever runs it (choose more than the longest import or plan time limit).
    Returns {"import_jobs": n, "route_plans": n} or {"skipped": live_connections}."""
    import time as _time

    from sqlalchemy import text
    with engine.connect() as c:
        if older_than_s is None:
            deadline = _time.monotonic() + wait_s
            while True:
                live = c.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND application_name LIKE 'geo-crm%'")).scalar()
                c.rollback()
                if not live or _time.monotonic() >= deadline:
                    break
                _time.sleep(0.5)
            if live:
                return {"skipped": int(live)}
            cutoff, params = "true", {}
        else:
            cutoff, params = "created_at < now() - make_interval(secs => :age)", {"age": float(older_than_s)}
        with c.begin():
            jobs = c.execute(text(
                "UPDATE import_job SET status = 'failed', finished_at = now(),"
                " report = coalesce(report, '{}'::jsonb) || jsonb_build_object('status', 'failed', 'abandoned', true,"
                "   'errors', jsonb_build_array(jsonb_build_object('row', null, 'field', 'server', 'problem', :msg)))"
                f" WHERE status IN ('queued', 'running') AND {cutoff}"), {"msg": ABANDONED, **params}).rowcount
            plans = c.execute(text(
                "UPDATE delivery_plan SET status = 'failed', error = :msg, version = version + 1"
                f" WHERE status IN ('queued', 'solving') AND {cutoff}"), {"msg": ABANDONED, **params}).rowcount
    return {"import_jobs": jobs, "route_plans": plans}


@cli.group("jobs")
def jobs_group() -> None:
    """Background work (import jobs, route plans)."""


@jobs_group.command("reap")
@click.option("--older-than", "older_than", default=None, type=click.IntRange(60, None),
              help="seconds: fail work started this long ago even if app servers are running (cron)")
def jobs_reap(older_than: int | None) -> None:
    """Mark import jobs and route plans abandoned by a dead process as failed."""
    engine = _engine()
    try:
        res = reap_abandoned(engine, older_than_s=older_than)
    finally:
        engine.dispose()
    if "skipped" in res:
        click.echo(f"skipped: {res['skipped']} geo-crm connection(s) are live; use --older-than")
    else:
        click.echo(f"marked failed: {res['import_jobs']} import job(s), {res['route_plans']} route plan(s)")


# -- serve ------------------------------------------------------------------------------------
@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=lambda: int(os.environ.get("WEB_WORKERS", 2)), show_default="2")
@click.option("--threads", default=lambda: int(os.environ.get("WEB_THREADS", 8)), show_default="8")
@click.option("--reap/--no-reap", default=True, show_default=True,
              help="on start, mark work abandoned by a dead server as failed (see `geo-crm jobs reap`)")
def serve(host: str, port: int, workers: int, threads: int, reap: bool) -> None:
    """Serve the web app with gunicorn (gthread workers)."""
    if reap:
        engine = _engine()
        try:
            res = reap_abandoned(engine, wait_s=float(os.environ.get("REAP_WAIT_S", 10)))
            if res.get("import_jobs") or res.get("route_plans"):
                click.echo(f"abandoned work marked failed: {res}")
        except Exception as e:  # noqa: BLE001 - never block the server start on housekeeping
            click.echo(f"warning: could not check for abandoned work ({e.__class__.__name__})", err=True)
        finally:
            engine.dispose()
    args = ["gunicorn", "--bind", f"{host}:{port}", "--workers", str(workers), "--threads", str(threads),
            "--worker-class", "gthread", "--timeout", "120", "--graceful-timeout", "20",
            "--access-logfile", "-", "--forwarded-allow-ips", "127.0.0.1", "geo_crm.wsgi:app"]
    click.echo(f"serving on http://{host}:{port}  (workers={workers}, threads={threads})")
    gunicorn = Path(sys.executable).with_name("gunicorn")
    os.execv(str(gunicorn), args)


def _load_features() -> None:
    for spec in FEATURE_COMMANDS:
        module, attr = spec.split(":")
        try:
            cli.add_command(getattr(importlib.import_module(module), attr))
        except ImportError as e:  # pragma: no cover - reported, not fatal
            click.echo(f"warning: feature commands {spec} unavailable: {e}", err=True)


def main(argv: list[str] | None = None) -> int:
    from sqlalchemy.exc import OperationalError
    _load_features()
    try:
        cli.main(args=argv, prog_name="geo-crm", standalone_mode=False)
        return 0
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except embedded_pg.ClusterError as e:
        click.echo(f"error: {e}", err=True)
        return 1
    except OperationalError as e:
        click.echo("error: cannot reach the database "
                   f"({str(e.orig).strip().splitlines()[0] if e.orig else e}).\n"
                   "Start the embedded one with `geo-crm db start`, or set DATABASE_URL.", err=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
