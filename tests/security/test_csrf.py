"""CSRF: every HTML form POST and every JSON API write, called with a cookie session.

- HTML: every POST rule of the URL map outside /api and /ogc answers 400 without a
  token (the URL map is enumerated, so new forms are covered automatically).
- JSON API: every write operation of the OpenAPI document, called with the session
  cookie but without `X-CSRFToken`, answers 400 `csrf`; with a valid token (or a token
  from another session: refused) it passes the CSRF check; bearer-token calls need none.
Each call runs in a savepoint of the test's rolled-back transaction.
"""
from __future__ import annotations

import re

from geo_crm.api.openapi import build_document
from tests.conftest import csrf_token_from

DOC = build_document()
WRITES = ("post", "put", "patch", "delete")


def _fill(rule) -> str:
    url = rule.rule
    for arg in rule.arguments:
        conv = rule._converters[arg].__class__.__name__
        url = re.sub(r"<(?:[^:>]+:)?%s>" % arg, "1" if "Integer" in conv else "x", url)
    return url


def form_post_rules(app):
    return sorted({_fill(r) for r in app.url_map.iter_rules()
                   if "POST" in r.methods and not r.rule.startswith(("/api/", "/ogc", "/static"))})


def api_writes():
    for path, ops in DOC["paths"].items():
        for method in ops:
            if method in WRITES:
                yield method, re.sub(r"{[^}]+}", "1", path)


def test_enumeration_finds_the_forms_and_writes(app):
    forms = form_post_rules(app)
    assert "/login" in forms and "/logout" in forms and len(forms) >= 25, forms
    assert len(list(api_writes())) >= 60


def test_every_html_form_post_needs_a_token(app, client, web_login, connection):
    web_login("admin")
    problems = []
    for url in form_post_rules(app):
        sp = connection.begin_nested()
        r = client.post(url, data={"name": "csrf probe"})
        sp.rollback()
        if r.status_code != 400 or "CSRF" not in r.get_data(as_text=True):
            problems.append(f"{url}: {r.status_code}")
    assert not problems, problems
    # still logged in: the refusals did not touch the session
    assert client.get("/dashboard").status_code == 200


def _call(client, method, url, **kw):
    return getattr(client, method)(url, json={}, **kw)


def _is_csrf_refusal(r) -> bool:
    return r.status_code == 400 and r.is_json and r.get_json()["error"]["code"] == "csrf"


def test_api_writes_with_a_session_cookie_need_the_csrf_header(client, web_login, connection):
    web_login("account")
    token = csrf_token_from(client.get("/dashboard").get_data(as_text=True))
    missing, refused_with_token, calls = [], [], 0
    for method, url in api_writes():
        sp = connection.begin_nested()
        try:
            r = _call(client, method, url)
            if not _is_csrf_refusal(r):
                missing.append(f"{method.upper()} {url}: {r.status_code} without a token")
            r = _call(client, method, url, headers={"X-CSRFToken": token})
            if _is_csrf_refusal(r):
                refused_with_token.append(f"{method.upper()} {url}")
            calls += 1
        finally:
            sp.rollback()
    assert calls >= 60
    assert not missing, missing
    assert not refused_with_token, refused_with_token


def test_a_token_from_another_session_is_refused(app, client, web_login):
    other = app.test_client()
    foreign = csrf_token_from(other.get("/login").get_data(as_text=True))
    web_login("account")
    r = client.post("/api/v1/service-records", json={}, headers={"X-CSRFToken": foreign})
    assert _is_csrf_refusal(r)
    r = client.post("/api/v1/service-records", json={}, headers={"X-CSRFToken": "forged." + foreign[7:]})
    assert _is_csrf_refusal(r)


def test_bearer_token_calls_need_no_csrf(api, connection):
    a = api("account")
    for method, url in api_writes():
        sp = connection.begin_nested()
        r = _call(a, method, url)
        sp.rollback()
        assert not _is_csrf_refusal(r), (method, url)
