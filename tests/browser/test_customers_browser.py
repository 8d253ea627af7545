"""Customer pages in headless Chromium under the strict CSP: list filtering, an edit
form's validation error and map-click location picking, and a hostile customer name
rendered as text on the detail page and in the map popup."""
from __future__ import annotations

import secrets
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.live_http import call as _call, token as _token


pytestmark = pytest.mark.usefixtures("no_login_rate_limit")

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.mark.browser
def test_filter_the_customer_list(page, browser_login, live_server):
    browser_login("admin")
    tok = _token(live_server, "admin")
    # a text query that matches several key customers
    api = "/api/v1/customers?" + urllib.parse.urlencode({"level": "key", "q": "oy", "limit": 1000, "sort": "name"})
    want = _call(live_server, "GET", api, token=tok)
    assert want["numberMatched"] > 1
    page.goto("/customers")
    page.select_option("#customer-filters select[name=level]", "key")
    page.fill("#customer-filters input[name=q]", "oy")
    page.select_option("#customer-filters select[name=per_page]", "250")
    page.click("#customer-filters button[type=submit]")
    page.wait_for_url("**/customers?*level=key*")
    rows = page.locator("#customer-table tbody tr")
    ids = [int(x) for x in rows.evaluate_all("rs => rs.map(r => r.dataset.id)")]
    assert ids == [f["id"] for f in want["features"]][:250]
    assert set(page.locator("#customer-table tbody .badge.level-key").all_inner_texts()) == {"key"}
    assert int(page.locator("#customer-count").get_attribute("data-total")) == want["numberMatched"]
    # sorting by code through the column header keeps the filters
    page.click("#customer-table thead a:text-is('Code')")
    page.wait_for_url("**sort=code**")
    codes = page.locator("#customer-table tbody tr td:first-child").all_inner_texts()
    assert len(codes) == len(ids)
    assert "level=key" in page.url


@pytest.mark.browser
def test_edit_form_shows_validation_error_and_map_picks_location(page, browser_login, live_server):
    tok = _token(live_server, "admin")
    code = "BR-" + secrets.token_hex(4)
    c = _call(live_server, "POST", "/api/v1/customers",
              {"code": code, "name": "Browser Edit Oy", "lon": 24.94, "lat": 60.17}, tok)
    try:
        browser_login("admin")
        page.goto(f"/customers/{c['id']}/edit")
        page.wait_for_selector("#pick-map[data-ready='1']")
        # clicking the map writes the clicked point into the inputs
        box = page.locator("#pick-map .folium-map").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.25)
        lon, lat = float(page.input_value("input[name=lon]")), float(page.input_value("input[name=lat]"))
        assert lon > 24.94 and lat > 60.17  # north-east of the centre
        assert page.input_value("select[name=geocode_quality]") == "manual"
        # an invalid value is refused with the field's own message, and the input is kept
        page.fill("input[name=name]", "Still Typed Oy")
        page.fill("input[name=lat]", "95")
        page.click("#customer-form button[type=submit]")
        err = page.locator("#lat-err")
        err.wait_for()
        assert "90" in err.inner_text()
        assert page.input_value("input[name=lat]") == "95"
        assert page.input_value("input[name=name]") == "Still Typed Oy"
        got = _call(live_server, "GET", f"/api/v1/customers/{c['id']}", token=tok)
        assert got["properties"]["name"] == "Browser Edit Oy"
    finally:
        _call(live_server, "DELETE", f"/api/v1/customers/{c['id']}", token=tok)


@pytest.mark.browser
def test_hostile_name_is_text_on_page_and_in_popup(page, browser_login, live_server):
    tok = _token(live_server, "admin")
    code = "XSS-" + secrets.token_hex(4)
    c = _call(live_server, "POST", "/api/v1/customers",
              {"code": code, "name": HOSTILE, "address": HOSTILE, "lon": 24.95, "lat": 60.18}, tok)
    try:
        browser_login("admin")
        page.goto(f"/customers/{c['id']}")
        assert page.locator("#customer-name").inner_text().startswith(HOSTILE)
        assert page.locator("img[src=x]").count() == 0
        page.locator(".geocrm-pin--customer").first.click()
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for()
        assert HOSTILE in popup.inner_text()
        assert popup.locator("img").count() == 0
        # the list shows it as text, too
        page.goto("/customers?" + urllib.parse.urlencode({"q": code}))
        assert page.locator("#customer-table tbody tr td a").first.inner_text() == HOSTILE
        assert page.locator("img[src=x]").count() == 0
    finally:
        _call(live_server, "DELETE", f"/api/v1/customers/{c['id']}", token=tok)
    with pytest.raises(urllib.error.HTTPError):
        _call(live_server, "GET", f"/api/v1/customers/{c['id']}", token=tok)
