"""The customer files a service request in the browser, staff handle it through the API,
the customer rates it 2 (reopened) and, after another fix, 4 (archived)."""
from __future__ import annotations

import secrets

import pytest

from tests.live_http import call as _call, token as _token


def _staff_resolve(base, rid, result, assign=True):
    adm, svc = _token(base, "admin"), _token(base, "service")
    if assign:
        me = _call(base, "GET", "/api/v1/auth/me", token=svc)["id"]
        assert _call(base, "POST", f"/api/v1/service-records/{rid}/assign", {"assignee_id": me}, adm)["status"] == "assigned"
        assert _call(base, "POST", f"/api/v1/service-records/{rid}/start", token=svc)["status"] == "in_progress"
    assert _call(base, "POST", f"/api/v1/service-records/{rid}/resolve", {"result": result}, svc)["status"] == "resolved"


@pytest.mark.browser
def test_customer_files_and_rates_service_request(page, browser_login, live_server):
    browser_login("customer")
    subject = f"Leaking tap {secrets.token_hex(3)}"
    page.goto("/service/new")
    page.select_option("select[name=type]", "repair")
    page.fill("input[name=subject]", subject)
    page.fill("textarea[name=request_text]", "The tap in the staff kitchen leaks.")
    page.click("#new-service-form button[type=submit]")
    page.wait_for_url("**/service/*")
    rid = int(page.url.rstrip("/").rsplit("/", 1)[1])
    assert page.locator("#record-status [data-status]").get_attribute("data-status") == "new"

    _staff_resolve(live_server, rid, "Washer replaced")
    page.reload()
    assert page.locator("#record-status [data-status]").get_attribute("data-status") == "resolved"
    page.locator("#rate-form input[type=radio][value='2'] + label").click()
    assert "reopened" in page.locator(".rating-hint").inner_text()
    page.click("#rate-form button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#record-status [data-status]").get_attribute("data-status") == "in_progress"
    assert page.locator("#record-reopens").inner_text().strip() == "1"
    assert page.locator("#rate-form").count() == 0

    _staff_resolve(live_server, rid, "Whole tap replaced", assign=False)
    page.reload()
    page.locator("#rate-form input[type=radio][value='4'] + label").click()
    page.click("#rate-form button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("#record-status [data-status]").get_attribute("data-status") == "archived"
    assert page.locator("#rating-history li").count() == 2
    page.goto("/service?status=archived")
    assert page.locator("#service-list", has_text=subject).count() == 1
