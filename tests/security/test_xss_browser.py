"""Stored XSS in headless Chromium: records with hostile text (created through the API
on the live server, removed afterwards) are visited on every page that shows them.

Besides the `page` fixture's guards (dialogs, page errors, console errors — a CSP
violation or a failed `<img src=x>` load is a console error), an init script records any
call to alert/confirm/prompt, any console.log of the marker, and any
securitypolicyviolation event; each visit asserts none happened and the hostile text is
visible as text."""
from __future__ import annotations

import secrets
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.live_http import call as _call


pytestmark = pytest.mark.usefixtures("no_login_rate_limit")

MARK = "xss" + secrets.token_hex(3)
PAYLOAD = f"<img src=x onerror=\"console.log('{MARK}')\"> \"><script>alert('{MARK}')</script>"

HOOKS = """
window.__xss = [];
for (const name of ['alert', 'confirm', 'prompt']) {
  const orig = window[name];
  window[name] = function (...a) { window.__xss.push(name + ':' + a.join(' ')); };
}
const log = console.log.bind(console);
console.log = function (...a) {
  if (a.join(' ').includes('%s')) window.__xss.push('console.log:' + a.join(' '));
  return log(...a);
};
document.addEventListener('securitypolicyviolation',
  e => window.__xss.push('csp:' + e.violatedDirective + ' ' + e.blockedURI));
""" % MARK


def _id(obj):
    return obj.get("id") or obj["properties"]["id"]


def _assert_clean(page, where):
    fired = page.evaluate("window.__xss")
    assert fired == [], (where, fired)
    assert page.locator("img[src=x]").count() == 0, where
    assert page.locator(f"script:has-text('{MARK}')").count() == 0, where


@pytest.mark.browser
def test_hostile_text_is_inert_on_every_page(page, browser_login, live_server):
    base = live_server
    tok = _call(base, "POST", "/api/v1/auth/token", {"username": "admin", "password": "admin-demo"})["token"]
    code = "XSSB-" + secrets.token_hex(3)
    created = []
    try:
        c = _call(base, "POST", "/api/v1/customers", {"code": code, "name": PAYLOAD, "address": PAYLOAD,
                                                       "notes": PAYLOAD, "lon": 24.9521, "lat": 60.1712}, tok)
        created.append(f"/api/v1/customers/{_id(c)}")
        sources = _call(base, "GET", "/api/v1/dictionaries?kind=opportunity_source", token=tok)
        source = (sources.get("items") or sources.get("entries") or sources)[0]["code"] \
            if isinstance(sources, dict) else sources[0]["code"]
        o = _call(base, "POST", "/api/v1/opportunities", {"source": source, "summary": PAYLOAD, "customer_id": _id(c)},
                  tok)
        created.insert(0, f"/api/v1/opportunities/{_id(o)}")
        s = _call(base, "POST", "/api/v1/service-records", {"type": "complaint", "customer_id": _id(c),
                                                             "subject": PAYLOAD[:200], "request_text": PAYLOAD}, tok)
        created.insert(0, f"/api/v1/service-records/{_id(s)}")

        page.add_init_script(HOOKS)
        browser_login("admin")
        # the hooks work: a call made here is recorded (and swallowed, so no dialog)
        page.evaluate(f"alert('{MARK}'); console.log('{MARK}')")
        assert page.evaluate("window.__xss") == [f"alert:{MARK}", f"console.log:{MARK}"]
        visits = [
            ("/customers?" + urllib.parse.urlencode({"q": code}), True),
            (f"/customers/{_id(c)}", True),
            ("/opportunities", False),
            (f"/opportunities/{_id(o)}", True),
            ("/service", False),
            (f"/service/{_id(s)}", True),
            ("/admin/audit", False),
            ("/dashboard", False),
        ]
        for url, must_show in visits:
            page.goto(url)
            page.wait_for_load_state("networkidle")
            _assert_clean(page, url)
            if must_show:
                assert MARK in page.inner_text("main"), url   # shown as text
        # the customer's map popup on its detail page
        page.goto(f"/customers/{_id(c)}")
        page.locator(".geocrm-pin--customer").first.click()
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for()
        assert MARK in popup.inner_text()
        _assert_clean(page, "customer popup")
        # the full map
        page.goto("/map")
        page.wait_for_load_state("networkidle")
        _assert_clean(page, "/map")
    finally:
        for path in created:
            try:
                _call(base, "DELETE", path, token=tok)
            except urllib.error.HTTPError:
                pass
