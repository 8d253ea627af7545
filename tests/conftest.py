"""Test fixtures: one real PostGIS database per session, migrated from empty and
loaded with a small deterministic sample; one rolled-back transaction per test.

The database lives in the embedded cluster (or on the server named by
TEST_DATABASE_URL / DATABASE_URL) and is dropped at the end of the session.
"""
from __future__ import annotations

import os
import re
import secrets
import threading
from datetime import date
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

AS_OF = date(2026, 11, 1)          # the sample's "today": tests do not depend on the clock
SAMPLE_CUSTOMERS = 600
SAMPLE_SEED = 7
DEMO_USERS = ["admin", "executive", "sales", "regional", "account", "service", "logistics", "customer"]


def _server_url() -> str:
    from geo_crm.config import load_env
    load_env()
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        return url
    from geo_crm import embedded_pg
    embedded_pg.start(log=lambda m: None)
    return embedded_pg.url()


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def database_url():
    """Create a throw-away database, migrate it from empty, load the sample."""
    base = _server_url()
    name = f"geocrm_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(_with_db(base, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = _with_db(base, name)
    from alembic import command

    from geo_crm.cli import alembic_config
    command.upgrade(alembic_config(url), "head")
    from geo_crm.sample.loader import load_sample
    eng = create_engine(url)
    load_sample(eng, customers=SAMPLE_CUSTOMERS, seed=SAMPLE_SEED, as_of=AS_OF, log=lambda m: None)
    eng.dispose()
    yield url
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url):
    from geo_crm.db import make_engine
    e = make_engine(database_url, pool_size=4)
    yield e
    e.dispose()


@pytest.fixture()
def connection(engine):
    """A connection inside an outer transaction that is rolled back after the test."""
    conn = engine.connect()
    trans = conn.begin()
    yield conn
    trans.rollback()
    conn.close()


@pytest.fixture()
def db_session(connection) -> Session:
    """An ORM session whose commits are savepoints inside the test's transaction."""
    s = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield s
    s.close()


class _TestDatabase:
    """Same interface as geo_crm.db.Database, bound to the test's connection."""

    def __init__(self, connection):
        self.engine = connection.engine
        self.replica_engine = None
        self.Session = sessionmaker(bind=connection, join_transaction_mode="create_savepoint",
                                    expire_on_commit=False)
        self.ReadSession = self.Session

    def read_session(self):
        return self.Session()

    def session(self):
        from contextlib import contextmanager

        @contextmanager
        def cm():
            s = self.Session()
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise
            finally:
                s.close()
        return cm()

    def dispose(self):
        pass


def settings_for_tests(database_url):
    from geo_crm.config import Settings
    return Settings(database_url=database_url, secret_key="test-secret-" + "x" * 20, tile_url=None)


@pytest.fixture()
def app(connection, database_url):
    """The Flask app, its database work inside the test's rolled-back transaction."""
    import geo_crm.api.auth as auth_api
    from geo_crm.app import create_app
    auth_api._limiter = None  # a fresh login rate limiter per test
    a = create_app(settings_for_tests(database_url), database=_TestDatabase(connection), TESTING=True)
    yield a


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def demo_tokens(database_url):
    """One committed bearer token per demo user for the whole session (argon2 logins are
    deliberately slow; the login itself is tested in test_auth.py)."""
    from datetime import timedelta

    from sqlalchemy.orm import Session as _S

    from geo_crm.models import User
    from geo_crm.security.auth import issue_token
    e = create_engine(database_url)
    out = {}
    with _S(e) as s, s.begin():
        for u in s.query(User).filter(User.username.in_(DEMO_USERS)):
            out[u.username] = issue_token(s, u, timedelta(hours=6))[0]
    e.dispose()
    return out


@pytest.fixture()
def token_for(demo_tokens, client):
    """token_for('admin') -> bearer token for a demo user (password '<user>-demo');
    other users log in through the API."""
    cache: dict[str, str] = {}

    def get(username: str) -> str:
        if username in demo_tokens:
            return demo_tokens[username]
        if username not in cache:
            r = client.post("/api/v1/auth/token", json={"username": username, "password": f"{username}-demo"})
            assert r.status_code == 200, r.get_json()
            cache[username] = r.get_json()["token"]
        return cache[username]
    return get


class ApiClient:
    """The Flask test client with a bearer token for one user."""

    def __init__(self, client, token):
        self.c, self.h = client, {"Authorization": f"Bearer {token}"}

    def _kw(self, kw):
        headers = {**self.h, **kw.pop("headers", {})}
        return {**kw, "headers": headers}

    def get(self, url, **kw):
        return self.c.get(url, **self._kw(kw))

    def post(self, url, **kw):
        return self.c.post(url, **self._kw(kw))

    def put(self, url, **kw):
        return self.c.put(url, **self._kw(kw))

    def patch(self, url, **kw):
        return self.c.patch(url, **self._kw(kw))

    def delete(self, url, **kw):
        return self.c.delete(url, **self._kw(kw))


@pytest.fixture()
def api(client, token_for):
    """api('regional').get('/api/v1/customers') — an authenticated API client per role."""
    return lambda username: ApiClient(client, token_for(username))


def csrf_token_from(html: str) -> str:
    m = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or \
        re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert m, "no CSRF token in page"
    return m.group(1)


@pytest.fixture()
def web_login(client):
    """web_login('account') logs the test client in through the real login form."""
    def login(username: str, password: str | None = None):
        page = client.get("/login")
        token = csrf_token_from(page.get_data(as_text=True))
        r = client.post("/login", data={"username": username, "password": password or f"{username}-demo",
                                        "csrf_token": token})
        assert r.status_code == 302, r.get_data(as_text=True)[:500]
        return client
    return login


# -- a live server and headless Chromium, for browser tests -------------------------------
@pytest.fixture(scope="session")
def live_server(database_url):
    """The real app served by a threaded WSGI server on 127.0.0.1 (random port), on the
    session's test database (committed data: browser tests create unique records)."""
    from werkzeug.serving import make_server

    from geo_crm.app import create_app
    app = create_app(settings_for_tests(database_url))
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    app.extensions["geo_crm.db"].dispose()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is missing: run `make deps-test` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser, live_server):
    """A fresh browser context; any request off 127.0.0.1, any JS dialog, and any page
    error fail the test."""
    ctx = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    problems: list[str] = []

    def guard(route):
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            return route.continue_()
        problems.append(f"external request blocked: {route.request.url}")
        return route.abort()
    pg.route("**/*", guard)
    pg.on("dialog", lambda d: (problems.append(f"dialog fired: {d.message}"), d.dismiss()))
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.problems = problems
    yield pg
    ctx.close()
    assert not problems, problems


@pytest.fixture()
def browser_login(page):
    def login(username: str):
        page.goto("/login")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", f"{username}-demo")
        page.click("button[type=submit]")
        page.wait_for_url("**/dashboard")
        return page
    return login


@pytest.fixture
def no_login_rate_limit(monkeypatch):
    """Lift the per-IP login rate limit: tests that log in often from 127.0.0.1 would
    otherwise be throttled by each other."""
    import geo_crm.api.auth as auth_api
    monkeypatch.setattr(auth_api, "_limiter", None)
