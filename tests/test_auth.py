"""Authentication and session security: tokens, lockout, rate limit, cookies,
auth_epoch invalidation, logout, redirects, security headers."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from tests.conftest import csrf_token_from
from geo_crm.models import User


@pytest.fixture(autouse=True)
def _fresh_login_limiter(monkeypatch):
    import geo_crm.api.auth as api_auth
    from geo_crm.security.auth import LoginRateLimiter
    monkeypatch.setattr(api_auth, "_limiter", LoginRateLimiter())


def _token(client, username, password=None):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password or f"{username}-demo"})


def _me(client, token):
    return client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})


def test_token_issue_use_and_revoke(client):
    r = _token(client, "sales")
    assert r.status_code == 200
    body = r.get_json()
    assert body["token_type"] == "Bearer" and body["role"] == "sales_manager" and len(body["token"]) >= 40
    assert _me(client, body["token"]).get_json()["username"] == "sales"
    rv = client.post("/api/v1/auth/revoke", headers={"Authorization": f"Bearer {body['token']}"})
    assert rv.status_code == 200
    assert _me(client, body["token"]).status_code == 401
    assert _me(client, "not-a-token").status_code == 401


def test_token_expiry(client, connection):
    tok = _token(client, "account").get_json()["token"]
    connection.execute(text("UPDATE api_token SET expires_at = now() - interval '1 second' "
                            "WHERE token_sha256 = encode(sha256(convert_to(:t, 'UTF8')), 'hex')"), {"t": tok})
    r = _me(client, tok)
    assert r.status_code == 401 and "Bearer" in r.headers.get("WWW-Authenticate", "")


def test_only_token_hash_is_stored(client, connection):
    tok = _token(client, "account").get_json()["token"]
    stored = connection.execute(text("SELECT token_sha256 FROM api_token ORDER BY id DESC LIMIT 1")).scalar()
    assert tok not in stored and len(stored) == 64


def test_lockout_after_five_failures_without_revealing_the_username(client, connection):
    msgs = set()
    for _ in range(5):
        r = _token(client, "executive", "wrong-password-x")
        assert r.status_code == 401
        msgs.add(r.get_json()["error"]["message"])
    # locked now: even the right password fails, with the same message
    r = _token(client, "executive")
    assert r.status_code == 401
    msgs.add(r.get_json()["error"]["message"])
    locked = connection.execute(select(User.locked_until).where(User.username == "executive")).scalar()
    assert locked is not None
    # an unknown username answers exactly the same, before and after 5 tries
    for _ in range(6):
        r = _token(client, "no-such-user-xyz", "wrong-password-x")
        assert r.status_code == 401
        msgs.add(r.get_json()["error"]["message"])
    assert len(msgs) == 1, msgs
    assert "exist" not in msgs.pop().lower()
    # after the lockout window the right password works again
    connection.execute(text("UPDATE app_user SET locked_until = now() - interval '1 minute' "
                            "WHERE username='executive'"))
    assert _token(client, "executive").status_code == 200


def test_web_login_failure_message_is_generic(client):
    page = client.get("/login").get_data(as_text=True)
    tok = csrf_token_from(page)
    a = client.post("/login", data={"username": "admin", "password": "bad-password-1", "csrf_token": tok})
    b = client.post("/login", data={"username": "nobody-here", "password": "bad-password-1", "csrf_token": tok})
    assert a.status_code == b.status_code == 401
    assert "invalid username or password" in a.get_data(as_text=True)
    assert "invalid username or password" in b.get_data(as_text=True)


def test_login_rate_limiter(client):
    codes = [_token(client, "nobody", "x-wrong-password").status_code for _ in range(21)]
    assert codes[:20] == [401] * 20 and codes[20] == 429
    # the limiter is per client address: the good password is refused too while limited
    assert _token(client, "sales").status_code == 429


def test_rate_limiter_window():
    from geo_crm.security.auth import LoginRateLimiter
    lim = LoginRateLimiter(limit=2, window_s=0.05)
    assert lim.hit("a") and lim.hit("a") and not lim.hit("a") and lim.hit("b")
    import time
    time.sleep(0.06)
    assert lim.hit("a")


def test_session_cookie_flags(client, web_login):
    page = client.get("/login")
    tok = csrf_token_from(page.get_data(as_text=True))
    r = client.post("/login", data={"username": "sales", "password": "sales-demo", "csrf_token": tok})
    assert r.status_code == 302
    cookies = [h for h in r.headers.getlist("Set-Cookie") if h.startswith("session=")]
    assert cookies
    c = cookies[-1].lower()
    assert "httponly" in c and "samesite=lax" in c


def test_password_change_bumps_epoch_and_ends_old_sessions_and_tokens(app, client, web_login, connection):
    old_token = _token(client, "regional").get_json()["token"]
    other = app.test_client()               # a second browser, logged in before the change
    page = other.get("/login")
    other.post("/login", data={"username": "regional", "password": "regional-demo",
                               "csrf_token": csrf_token_from(page.get_data(as_text=True))})
    assert other.get("/api/v1/auth/me").status_code == 200
    epoch0 = connection.execute(select(User.auth_epoch).where(User.username == "regional")).scalar()

    web_login("regional")
    form = client.get("/account/password").get_data(as_text=True)
    r = client.post("/account/password", data={"current": "regional-demo", "new": "a-new-long-password",
                                                "confirm": "a-new-long-password",
                                                "csrf_token": csrf_token_from(form)})
    assert r.status_code == 302, r.get_data(as_text=True)[:400]
    assert connection.execute(select(User.auth_epoch).where(User.username == "regional")).scalar() == epoch0 + 1
    assert _me(client, old_token).status_code == 401          # old token dead
    assert other.get("/api/v1/auth/me").status_code == 401    # old cookie session dead
    assert client.get("/api/v1/auth/me").status_code == 200   # the changer stays signed in
    assert _token(app.test_client(), "regional", "a-new-long-password").status_code == 200


def test_role_change_by_admin_ends_sessions(api, client, connection):
    old = _token(client, "service").get_json()["token"]
    uid = connection.execute(select(User.id).where(User.username == "service")).scalar()
    r = api("admin").patch(f"/api/v1/users/{uid}", json={"role": "account_manager"})
    assert r.status_code == 200, r.get_json()
    assert _me(client, old).status_code == 401


def test_logout_requires_post_and_csrf(client, web_login):
    web_login("account")
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400             # no CSRF token
    assert client.get("/dashboard").status_code == 200
    tok = csrf_token_from(client.get("/dashboard").get_data(as_text=True))
    r = client.post("/logout", data={"csrf_token": tok})
    assert r.status_code == 302
    assert client.get("/dashboard").status_code == 302           # back to the login page


@pytest.mark.parametrize("target,expected", [
    ("https://evil.example/x", "/dashboard"), ("//evil.example", "/dashboard"), ("/\\evil.example", None),
    ("javascript:alert(1)", "/dashboard"), ("/customers?x=1", "/customers?x=1"),
])
def test_no_open_redirect(client, target, expected):
    tok = csrf_token_from(client.get("/login").get_data(as_text=True))
    r = client.post("/login?next=" + target, data={"username": "account", "password": "account-demo",
                                                    "csrf_token": tok})
    assert r.status_code == 302
    loc = r.headers["Location"]
    assert "evil.example" not in loc.split("?")[0].replace("\\", "/").lstrip("/").split("/")[0] or loc.startswith("/")
    assert not loc.startswith("//") and "://" not in loc.split("?")[0] or loc.startswith("http://localhost")
    if expected:
        assert loc.endswith(expected)


def test_security_headers(client, web_login):
    web_login("admin")
    r = client.get("/branches/1")   # a page with a map: scripts carry the nonce
    assert r.status_code == 200
    csp = r.headers["Content-Security-Policy"]
    html = r.get_data(as_text=True)
    assert "'nonce-" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    nonce = csp.split("'nonce-")[1].split("'")[0]
    import re
    for tag in re.findall(r"<script[^>]*>", html):
        assert f'nonce="{nonce}"' in tag
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] in ("same-origin", "strict-origin-when-cross-origin", "no-referrer")
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "no-store" in r.headers["Cache-Control"]
    # a fresh nonce per response
    assert client.get("/branches/1").headers["Content-Security-Policy"] != csp
