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
def sample_load(customers: int, seed: int, if_empty: bool) -> None:
    """Load the sample data (deterministic for a seed; re-running replaces it)."""
    from geo_crm.sample.loader import load_sample
    engine = _engine()
    stats = load_sample(engine, customers=customers, seed=seed, if_empty=if_empty, log=click.echo)
    if stats:
        click.echo("loaded: " + ", ".join(f"{k}={v}" for k, v in stats.items()))


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


# -- serve ------------------------------------------------------------------------------------
@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=lambda: int(os.environ.get("WEB_WORKERS", 2)), show_default="2")
@click.option("--threads", default=lambda: int(os.environ.get("WEB_THREADS", 8)), show_default="8")
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the web app with gunicorn (gthread workers)."""
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
