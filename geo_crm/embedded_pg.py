"""The embedded default database: a project-local PostgreSQL 15 + PostGIS cluster.

PostgreSQL refuses to run as root, and the ``postgres`` system user cannot enter
root's home folder, so when we run as root the cluster's data and socket live in a
folder that ``postgres`` owns, one per checkout (named by a hash of the checkout
path). As an ordinary user they live under ``<repo>/var/pg``.

The application connects over TCP on 127.0.0.1 as the role ``geocrm`` with a
password generated per install and kept in ``var/secrets.env`` (mode 600). The role
is not a superuser, so row-level security applies to it; PostGIS, pgRouting and
pg_trgm are installed in ``template1`` so every database it creates has them.
"""
from __future__ import annotations

import hashlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
EXTENSIONS = ("postgis", "pgrouting", "pg_trgm", "btree_gist")
APP_ROLE = "geocrm"
APP_DB = "geocrm"


class ClusterError(RuntimeError):
    """A problem with the embedded cluster, worded for the person at the terminal."""


def repo_root() -> Path:
    return Path(os.environ.get("GEO_CRM_HOME", Path(__file__).resolve().parent.parent))


def var_dir() -> Path:
    d = repo_root() / "var"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _checkout_hash() -> str:
    return hashlib.sha1(str(repo_root().resolve()).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Cluster:
    base: Path          # holds data/, run/ (socket) and log
    port: int
    run_as: str | None  # system user that runs the server, or None for ourselves

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "run"

    @property
    def log(self) -> Path:
        return self.base / "postgres.log"


def cluster() -> Cluster:
    """The cluster for this checkout (nothing is created)."""
    h = _checkout_hash()
    port = int(os.environ.get("GEO_CRM_PGPORT", 54300 + int(h, 16) % 90))
    if os.geteuid() == 0:
        base = Path(os.environ.get("GEO_CRM_PGBASE", f"/var/tmp/geo-crm-{h}"))
        return Cluster(base, port, "postgres")
    return Cluster(Path(os.environ.get("GEO_CRM_PGBASE", repo_root() / "var" / "pg")), port, None)


def _as_owner(c: Cluster, argv: list[str], **kw) -> subprocess.CompletedProcess:
    if c.run_as:
        argv = ["runuser", "-u", c.run_as, "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def _check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        raise ClusterError(f"{what} failed:\n{(proc.stderr or proc.stdout).strip()}")


def _secrets_file() -> Path:
    return var_dir() / "secrets.env"


def read_secrets() -> dict[str, str]:
    f = _secrets_file()
    out: dict[str, str] = {}
    if f.exists():
        for line in f.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
    return out


def ensure_secrets() -> dict[str, str]:
    """Generate the per-install secrets once: Flask SECRET_KEY and the DB password."""
    s = read_secrets()
    changed = False
    for key in ("SECRET_KEY", "GEO_CRM_DB_PASSWORD"):
        if key not in s:
            s[key] = secrets.token_urlsafe(32)
            changed = True
    if changed:
        f = _secrets_file()
        f.write_text("# generated per install by geo-crm; never commit\n"
                     + "".join(f"{k}={v}\n" for k, v in s.items()))
        f.chmod(0o600)
    return s


def url(database: str = APP_DB, c: Cluster | None = None) -> str:
    """SQLAlchemy URL of a database in the embedded cluster (or in cluster `c`)."""
    pw = ensure_secrets()["GEO_CRM_DB_PASSWORD"]
    return f"postgresql+psycopg2://{APP_ROLE}:{pw}@127.0.0.1:{(c or cluster()).port}/{database}"


def is_running(c: Cluster | None = None) -> bool:
    c = c or cluster()
    if not (c.data / "PG_VERSION").exists():
        return False
    return _as_owner(c, [str(PG_BIN / "pg_ctl"), "status", "-D", str(c.data)]).returncode == 0


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _psql(c: Cluster, sql: str, db: str = "postgres") -> str:
    proc = _as_owner(c, [str(PG_BIN / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", str(c.socket_dir),
                         "-p", str(c.port), "-U", "postgres", "-d", db, "-c", sql])
    _check(proc, f"psql ({sql[:60]}...)")
    return proc.stdout.strip()


def _check_binaries() -> None:
    if not (PG_BIN / "initdb").exists():
        raise ClusterError(f"PostgreSQL 15 server binaries not found in {PG_BIN}. "
                           "Install them with: apt-get install postgresql-15")
    ext_dir = Path("/usr/share/postgresql/15/extension")
    missing = [pkg for ext, pkg in (("postgis", "postgresql-15-postgis-3"),
                                    ("pgrouting", "postgresql-15-pgrouting"))
               if not (ext_dir / f"{ext}.control").exists()]
    if missing:
        raise ClusterError("Missing PostgreSQL extensions. Install them with: "
                           f"apt-get install {' '.join(missing)}  (or run `make deps`)")


def start(log=print, c: Cluster | None = None, extra_conf: str = "") -> Cluster:
    """Create the cluster (this checkout's, or `c`) if needed, start it, and make sure
    role, database and extensions exist. Idempotent."""
    _check_binaries()
    c = c or cluster()
    fresh = not (c.data / "PG_VERSION").exists()
    if fresh:
        log(f"creating PostgreSQL cluster in {c.data} (port {c.port})")
        c.base.mkdir(parents=True, exist_ok=True)
        c.socket_dir.mkdir(exist_ok=True)
        if c.run_as:
            pw = pwd.getpwnam(c.run_as)
            for p in (c.base, c.socket_dir):
                os.chown(p, pw.pw_uid, pw.pw_gid)
            c.base.chmod(0o700)
        proc = _as_owner(c, [str(PG_BIN / "initdb"), "-D", str(c.data), "-U", "postgres",
                             "--auth-local=trust", "--auth-host=scram-sha-256",
                             "-E", "UTF8", "--locale=C.UTF-8"])
        _check(proc, "initdb")
        conf = c.data / "postgresql.conf"
        tuning = (
            "\n# geo-crm embedded defaults (2 cores, shared machine)\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {c.port}\n"
            f"unix_socket_directories = '{c.socket_dir}'\n"
            "shared_buffers = 1GB\nwork_mem = 32MB\nmaintenance_work_mem = 512MB\n"
            "effective_cache_size = 8GB\nmax_wal_size = 4GB\nrandom_page_cost = 1.1\n"
            "max_connections = 200\njit = off\n"
            "synchronous_commit = off  # a crash may lose the last moments, never consistency\n"
            + extra_conf
        )
        _as_owner(c, ["sh", "-c", f"cat >> '{conf}'"], input=tuning)
    if not is_running(c):
        if not _port_free(c.port):
            raise ClusterError(f"port {c.port} on 127.0.0.1 is taken by another program; "
                               "set GEO_CRM_PGPORT to a free port")
        log(f"starting PostgreSQL on 127.0.0.1:{c.port}")
        c.socket_dir.mkdir(exist_ok=True)
        # setsid: the server gets its own session, so a Ctrl-C or a signal to the process
        # group that started it (make run, a test runner, timeout) does not stop it
        proc = _as_owner(c, ["setsid", str(PG_BIN / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(c.data),
                             "-l", str(c.log)])
        if proc.returncode != 0:
            tail = c.log.read_text()[-1500:] if c.log.exists() else ""
            raise ClusterError(f"PostgreSQL did not start: {proc.stderr.strip()}\n{tail}")
    _provision(c, log)
    return c


def _provision(c: Cluster, log) -> None:
    pw = ensure_secrets()["GEO_CRM_DB_PASSWORD"].replace("'", "''")
    for _ in range(50):
        if _as_owner(c, [str(PG_BIN / "pg_isready"), "-h", str(c.socket_dir), "-p", str(c.port)]).returncode == 0:
            break
        time.sleep(0.2)
    exists = _psql(c, f"SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}'")
    if not exists:
        log(f"creating role {APP_ROLE}")
        _psql(c, f"CREATE ROLE {APP_ROLE} LOGIN CREATEDB CREATEROLE PASSWORD '{pw}'")
    else:
        _psql(c, f"ALTER ROLE {APP_ROLE} PASSWORD '{pw}'")
    for ext in EXTENSIONS:
        _psql(c, f"CREATE EXTENSION IF NOT EXISTS {ext}", db="template1")
    if not _psql(c, f"SELECT 1 FROM pg_database WHERE datname = '{APP_DB}'"):
        log(f"creating database {APP_DB}")
        _psql(c, f"CREATE DATABASE {APP_DB} OWNER {APP_ROLE}")
    # spatial_ref_sys and pgRouting catalogues stay owned by postgres: fine for the app.


def stop(log=print, c: Cluster | None = None) -> None:
    c = c or cluster()
    if not is_running(c):
        log("PostgreSQL is not running")
        return
    _check(_as_owner(c, [str(PG_BIN / "pg_ctl"), "stop", "-m", "fast", "-w", "-D", str(c.data)]),
           "pg_ctl stop")
    log("PostgreSQL stopped")


def status() -> str:
    c = cluster()
    if not (c.data / "PG_VERSION").exists():
        return f"no cluster yet (would live in {c.data}, port {c.port})"
    state = "running" if is_running(c) else "stopped"
    return f"{state}: data {c.data}, 127.0.0.1:{c.port}, log {c.log}"


def destroy(log=print, c: Cluster | None = None) -> None:
    """Stop and delete the cluster (used by `make clean-db`)."""
    c = c or cluster()
    if is_running(c):
        stop(log, c)
    if c.base.exists():
        shutil.rmtree(c.base)
        log(f"removed {c.base}")


def create_replica(primary: Cluster, replica: Cluster, log=print) -> Cluster:
    """Make `replica` a streaming hot standby of the running `primary` (pg_basebackup -R)
    and start it. Used for read-scaling tests and local experiments."""
    _check_binaries()
    replica.base.mkdir(parents=True, exist_ok=True)
    replica.socket_dir.mkdir(exist_ok=True)
    if replica.run_as:
        pw = pwd.getpwnam(replica.run_as)
        for p in (replica.base, replica.socket_dir):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        replica.base.chmod(0o700)
    if not (replica.data / "PG_VERSION").exists():
        log(f"cloning {primary.data} into standby {replica.data}")
        _check(_as_owner(replica, [str(PG_BIN / "pg_basebackup"), "-h", str(primary.socket_dir),
                                   "-p", str(primary.port), "-U", "postgres", "-D", str(replica.data),
                                   "-R", "-X", "stream", "-c", "fast"]), "pg_basebackup")
        conf = (f"\n# standby of port {primary.port}\nport = {replica.port}\n"
                f"unix_socket_directories = '{replica.socket_dir}'\nhot_standby = on\n")
        _as_owner(replica, ["sh", "-c", f"cat >> '{replica.data / 'postgresql.conf'}'"], input=conf)
    if not is_running(replica):
        _check(_as_owner(replica, ["setsid", str(PG_BIN / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(replica.data),
                                   "-l", str(replica.log)]), "starting the standby")
    return replica
