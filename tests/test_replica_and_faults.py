"""Read scaling and database faults, on real PostgreSQL clusters started by the test:
a primary and a streaming replica on loopback. Writes go to the primary, reads that may
be stale go to the replica, a replica that is down falls back to the primary, and a
primary that stops answers 503 fast and recovers without an app restart."""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from geo_crm import embedded_pg
from geo_crm.config import Settings
from geo_crm.db import Database, make_engine

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _new_cluster(tag: str) -> embedded_pg.Cluster:
    root = os.geteuid() == 0
    base = Path("/var/tmp" if root else tempfile.gettempdir()) / f"geo-crm-test-{tag}-{secrets.token_hex(4)}"
    return embedded_pg.Cluster(base, _free_port(), "postgres" if root else None)


@pytest.fixture(scope="module")
def pair():
    primary, replica = _new_cluster("primary"), _new_cluster("replica")
    conf = "wal_level = replica\nmax_wal_senders = 5\nfsync = off\n"
    try:
        embedded_pg.start(log=lambda m: None, c=primary, extra_conf=conf)
        url = embedded_pg.url(c=primary)
        from alembic import command

        from geo_crm.cli import alembic_config
        command.upgrade(alembic_config(url), "head")
        from sqlalchemy import create_engine

        from geo_crm.sample.loader import load_sample
        e = create_engine(url)
        load_sample(e, customers=40, seed=1, log=lambda m: None)
        e.dispose()
        embedded_pg.create_replica(primary, replica, log=lambda m: None)
        yield primary, replica
    finally:
        for c in (replica, primary):
            try:
                embedded_pg.destroy(log=lambda m: None, c=c)
            except Exception:
                shutil.rmtree(c.base, ignore_errors=True)


def _wait(pred, timeout=20.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if pred():
                return True
        except Exception:
            pass
        time.sleep(0.2)
    return False


def test_reads_from_replica_writes_to_primary(pair):
    primary, replica = pair
    db = Database(make_engine(embedded_pg.url(c=primary)), make_engine(embedded_pg.url(c=replica)))
    try:
        with db.Session() as s:
            assert s.execute(text("SELECT pg_is_in_recovery()")).scalar() is False
            s.execute(text("INSERT INTO dictionary (kind, code, label) VALUES ('industry', 'replica_probe', 'probe')"))
            s.commit()
        with db.read_session() as r:
            assert r.execute(text("SELECT pg_is_in_recovery()")).scalar() is True
        # the write reaches the replica by streaming replication
        assert _wait(lambda: db.read_session().execute(
            text("SELECT count(*) FROM dictionary WHERE code = 'replica_probe'")).scalar() == 1)
        with db.read_session() as r, pytest.raises(Exception, match="read-only transaction"):
            r.execute(text("INSERT INTO dictionary (kind, code, label) VALUES ('industry', 'nope', 'x')"))
    finally:
        db.dispose()


def test_app_routes_reads_to_replica_and_falls_back(pair):
    primary, replica = pair
    from geo_crm.app import create_app
    settings = Settings(database_url=embedded_pg.url(c=primary),
                        database_replica_url=embedded_pg.url(c=replica), secret_key="t" * 32)
    app = create_app(settings)
    client = app.test_client()
    try:
        assert client.get("/healthz").get_json() == {"status": "ok", "reads_from": "replica"}
        # writes (a token) go to the primary and are immediately usable there
        r = client.post("/api/v1/auth/token", json={"username": "admin", "password": "admin-demo"})
        assert r.status_code == 200
        me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {r.get_json()['token']}"})
        assert me.status_code == 200 and me.get_json()["username"] == "admin"
        embedded_pg.stop(log=lambda m: None, c=replica)
        t0 = time.monotonic()
        assert client.get("/healthz").get_json() == {"status": "ok", "reads_from": "primary"}
        assert client.get("/healthz").get_json()["reads_from"] == "primary"
        assert time.monotonic() - t0 < 5
    finally:
        app.extensions["geo_crm.db"].dispose()
        embedded_pg.create_replica(primary, replica, log=lambda m: None)  # start it again


def test_database_outage_answers_503_fast_and_recovers(pair):
    primary, _ = pair
    from werkzeug.serving import make_server

    from geo_crm.app import create_app
    app = create_app(Settings(database_url=embedded_pg.url(c=primary), secret_key="t" * 32))
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_port}"
    try:
        tok = requests.post(f"{base}/api/v1/auth/token", json={"username": "admin", "password": "admin-demo"},
                            timeout=10).json()["token"]
        h = {"Authorization": f"Bearer {tok}"}
        assert requests.get(f"{base}/api/v1/auth/me", headers=h, timeout=10).status_code == 200
        embedded_pg.stop(log=lambda m: None, c=primary)
        t0 = time.monotonic()
        r = requests.get(f"{base}/api/v1/auth/me", headers=h, timeout=10)
        assert r.status_code == 503 and time.monotonic() - t0 < 6
        assert r.json()["error"]["code"] == "database_unavailable"
        assert "Traceback" not in r.text
        page = requests.get(f"{base}/login", timeout=10)
        assert page.status_code in (200, 503)  # the login form needs no database
        embedded_pg.start(log=lambda m: None, c=primary)
        assert _wait(lambda: requests.get(f"{base}/api/v1/auth/me", headers=h, timeout=10).status_code == 200)
    finally:
        srv.shutdown()
        app.extensions["geo_crm.db"].dispose()
