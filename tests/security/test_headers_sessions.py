"""Security headers on every HTML page, cookie flags, and session lifecycle (rotation on
login and privilege change, logout). Complements tests/test_auth.py (tokens, lockout,
rate limit, password change, one page's headers)."""
from __future__ import annotations

import re
from dataclasses import replace

from sqlalchemy import select

from geo_crm.models import User
from tests.conftest import csrf_token_from, settings_for_tests


def html_pages(app):
    """Every GET page of the app without path arguments, plus one of each record page."""
    out = sorted(r.rule for r in app.url_map.iter_rules()
                 if "GET" in r.methods and not r.arguments
                 and not r.rule.startswith(("/api/", "/ogc", "/static")) and not r.rule.endswith((".csv", ".pdf")))
    return out + ["/customers/1", "/branches/1", "/partners/1", "/orders/1", "/opportunities/1", "/service/1",
                  "/admin/users/1", "/customers/1/edit"]


def test_every_html_page_has_a_strict_csp_and_headers(app, client, web_login):
    web_login("admin")
    checked = 0
    for url in html_pages(app):
        r = client.get(url)
        if r.status_code in (301, 302, 404) or not r.mimetype == "text/html":
            continue
        checked += 1
        csp = r.headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
        script_src = directives["script-src"]
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src, (url, csp)
        assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'", url
        assert directives["base-uri"] == "'self'", url
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] in ("same-origin", "strict-origin-when-cross-origin", "no-referrer")
        assert "no-store" in r.headers["Cache-Control"], url
        html = r.get_data(as_text=True)
        tags = re.findall(r"<script\b[^>]*>", html, re.I)
        if tags:
            nonce = script_src.split("'nonce-")[1].split("'")[0]
            for tag in tags:
                assert f'nonce="{nonce}"' in tag, (url, tag)
        else:
            assert script_src == "'self'", (url, csp)   # no inline script allowed at all
        assert not re.search(r"<[a-z][^>]*\son(click|load|error|submit|change|mouseover)\s*=", html, re.I), url
        assert not re.search(r"""(href|src|action)\s*=\s*["']\s*javascript:""", html, re.I), url
    assert checked >= 20, checked


def test_error_pages_and_api_also_carry_the_headers(client):
    for url in ("/no-such-page", "/api/v1/no-such", "/login", "/api/v1/openapi.json"):
        r = client.get(url)
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"], url
        assert r.headers["X-Content-Type-Options"] == "nosniff", url


def _login(c, username, password=None):
    tok = csrf_token_from(c.get("/login").get_data(as_text=True))
    r = c.post("/login", data={"username": username, "password": password or f"{username}-demo", "csrf_token": tok})
    assert r.status_code == 302
    return r


def _session_cookie(resp):
    return [h for h in resp.headers.getlist("Set-Cookie") if h.startswith("session=")][-1]


def test_secure_cookie_when_configured(connection, database_url):
    from geo_crm.app import create_app
    from tests.conftest import _TestDatabase
    settings = replace(settings_for_tests(database_url), session_cookie_secure=True)
    app = create_app(settings, database=_TestDatabase(connection), TESTING=True)
    c = app.test_client()
    cookie = _session_cookie(_login(c, "sales")).lower()
    assert "; secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


def test_login_rotates_the_session(client):
    client.get("/login")
    with client.session_transaction() as s:
        s["planted"] = "by an attacker before login"
        s["uid"] = 999
    before = client.get_cookie("session").value
    _login(client, "account")
    after = client.get_cookie("session").value
    assert after != before
    with client.session_transaction() as s:
        assert "planted" not in s and s["uid"] != 999 and s.get("sid")


def test_role_change_ends_the_users_cookie_sessions(app, api, connection):
    victim = app.test_client()
    _login(victim, "service")
    assert victim.get("/api/v1/auth/me").get_json()["role"] == "service_agent"
    uid = connection.execute(select(User.id).where(User.username == "service")).scalar()
    assert api("admin").patch(f"/api/v1/users/{uid}", json={"role": "account_manager"}).status_code == 200
    assert victim.get("/api/v1/auth/me").status_code == 401
    assert victim.get("/dashboard").status_code == 302


def test_deactivating_a_user_ends_their_sessions(app, api, connection):
    victim = app.test_client()
    _login(victim, "logistics")
    uid = connection.execute(select(User.id).where(User.username == "logistics")).scalar()
    r = api("admin").patch(f"/api/v1/users/{uid}", json={"is_active": False})
    assert r.status_code == 200, r.get_json()
    assert victim.get("/api/v1/auth/me").status_code == 401


def test_logout_ends_the_session_even_if_the_cookie_is_replayed(app, client):
    _login(client, "account")
    stolen = client.get_cookie("session").value
    tok = csrf_token_from(client.get("/dashboard").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": tok}).status_code == 302
    assert client.get("/dashboard").status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert replay.get("/api/v1/auth/me").status_code == 401
