"""Backup and restore with pg_dump / pg_restore (custom format, compressed).

`geo-crm backup FILE` writes a consistent snapshot of the whole database (schema,
data, PostGIS/pg_trgm/pgRouting extensions); `geo-crm restore FILE` restores it into
the configured (or given) database, replacing existing objects, in one transaction.
The PostgreSQL client binaries are looked up on PATH, then in
/usr/lib/postgresql/<version>/bin. The password travels in the environment
(PGPASSWORD), never on the command line.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import click


class BackupError(RuntimeError):
    pass


def pg_binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if found:
        return found[0]
    path = shutil.which(name)
    if path:
        return path
    raise BackupError(f"{name} not found (install postgresql-client)")


def libpq_env(url: str) -> tuple[list[str], dict[str, str]]:
    """Connection arguments and environment for libpq tools from a SQLAlchemy URL."""
    u = urlsplit(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = unquote(u.password)
    args = ["--host", u.hostname or "localhost", "--port", str(u.port or 5432),
            "--username", unquote(u.username or "postgres"), "--dbname", unquote(u.path.lstrip("/"))]
    return args, env


def backup(url: str, path: str | os.PathLike) -> int:
    """Dump the database to `path` (custom format). Returns the file size in bytes."""
    args, env = libpq_env(url)
    tmp = Path(str(path) + ".part")
    r = subprocess.run([pg_binary("pg_dump"), *args, "--format=custom", "--compress=6", "--no-owner",
                        "--exclude-table-data=public.spatial_ref_sys",
                        "--file", str(tmp)], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {r.stderr.strip()[-500:]}")
    os.replace(tmp, path)
    return os.path.getsize(path)


def restore(url: str, path: str | os.PathLike, *, clean: bool = True) -> None:
    """Restore a custom-format dump into the database at `url` in a single transaction."""
    if not Path(path).is_file():
        raise BackupError(f"no such file: {path}")
    args, env = libpq_env(url)
    cmd = [pg_binary("pg_restore"), *args, "--no-owner", "--no-comments", "--single-transaction",
           "--exit-on-error"]
    if clean:
        cmd += ["--clean", "--if-exists"]
    r = subprocess.run([*cmd, str(path)], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise BackupError(f"pg_restore failed: {r.stderr.strip()[-800:]}")


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
def backup_cmd(file: str) -> None:
    """Write a pg_dump custom-format backup of the database to FILE."""
    from geo_crm.cli import _database_url
    try:
        size = backup(_database_url(), file)
    except BackupError as e:
        raise click.ClickException(str(e))
    click.echo(f"backup written: {file} ({size / 1e6:.1f} MB)")


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def restore_cmd(file: str, yes: bool) -> None:
    """Restore FILE (from `geo-crm backup`) into the database, replacing its contents."""
    from geo_crm.cli import _database_url
    url = _database_url()
    if not yes:
        click.confirm(f"Replace the contents of database {urlsplit(url).path.lstrip('/')!r}?", abort=True)
    try:
        restore(url, file)
    except BackupError as e:
        raise click.ClickException(str(e))
    click.echo("restored")
