"""Map pages in headless Chromium under the strict CSP, offline (any external request
fails the test): /map renders and its layers toggle, a drawn polygon lists exactly the
customers inside it (ground truth: Shapely on the database rows), a hostile customer name
shows as text in the vector-tile popup and in the list, and the density legend matches
the API's data classified independently with mapclassify."""
from __future__ import annotations

import secrets

import mapclassify
import numpy as np
import pytest
from shapely.geometry import Point, box
from sqlalchemy import create_engine, text

from tests.live_http import call as _call, token as _token


pytestmark = pytest.mark.usefixtures("no_login_rate_limit")

HOSTILE = "<img src=x onerror=alert(1)>"


def _open_map(page, path="/map"):
    page.goto(path)
    page.wait_for_function("() => !!(window.GeoCrmMapPage && window.GeoCrmMapPage.map && window.GeoCrmMapPage.map._loaded)")
    return page


@pytest.mark.browser
def test_map_renders_offline_and_layers_toggle(page, browser_login):
    browser_login("admin")
    with page.expect_response(lambda r: "/api/v1/tiles/customers/" in r.url and r.status == 200):
        _open_map(page)
    labels = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
    for name in ("Customers", "Branches", "Partners", "Regions", "Territories", "Service areas", "Heat map",
                 "Density choropleth"):
        assert any(name in lbl for lbl in labels), labels
    paths = "() => document.querySelectorAll('.leaflet-overlay-pane path').length"
    before = page.evaluate(paths)
    page.locator(".leaflet-control-layers-overlays label", has_text="Regions").locator("input").check()
    assert page.evaluate(paths) > before
    page.locator(".leaflet-control-layers-overlays label", has_text="Regions").locator("input").uncheck()
    assert page.evaluate(paths) == before
    heat = page.locator(".leaflet-control-layers-overlays label", has_text="Heat map").locator("input")
    heat.check()
    page.wait_for_function("() => document.querySelectorAll('canvas.leaflet-heatmap-layer').length > 0")
    heat.uncheck()


def _draw_polygon(page, poly):
    ring = [[y, x] for x, y in poly.exterior.coords]
    page.evaluate("""ring => {
        const m = window.GeoCrmMapPage.map;
        const layer = L.polygon(ring);
        m.fire('pm:create', {layer: layer, shape: 'Polygon'});
    }""", ring)
    page.wait_for_function("() => document.getElementById('draw-status').dataset.count !== undefined")


@pytest.mark.browser
def test_drawn_polygon_lists_the_customers_inside(page, browser_login, database_url):
    area = box(24.90, 60.15, 24.98, 60.19)
    eng = create_engine(database_url)
    with eng.connect() as c:
        truth = {r.id for r in c.execute(text("SELECT id, ST_X(geom) AS x, ST_Y(geom) AS y FROM customer "
                                              "WHERE geom IS NOT NULL")) if area.covers(Point(r.x, r.y))}
    eng.dispose()
    assert 0 < len(truth) < 500
    browser_login("admin")
    _open_map(page)
    _draw_polygon(page, area)
    assert int(page.locator("#draw-status").get_attribute("data-count")) == len(truth)
    ids = {int(x) for x in page.locator("#draw-results li").evaluate_all("ls => ls.map(l => l.dataset.id)")}
    assert ids == truth
    assert page.locator("#draw-actions").is_visible()
    assert page.locator("#export-csv").is_visible() and page.locator("#save-territory").is_visible()


@pytest.mark.browser
def test_hostile_name_is_text_in_popup_and_list(page, browser_login, live_server):
    tok = _token(live_server, "admin")
    lon, lat = 26.5 + secrets.randbelow(1000) / 10000, 67.2 + secrets.randbelow(1000) / 10000
    c = _call(live_server, "POST", "/api/v1/customers",
              {"code": "XSS-" + secrets.token_hex(3), "name": HOSTILE, "lon": lon, "lat": lat}, token=tok)
    browser_login("admin")
    _open_map(page)
    # the vector-tile popup: zoom in on the customer and click it
    with page.expect_response(lambda r: "/api/v1/tiles/customers/15/" in r.url and r.status == 200):
        page.evaluate("([lat, lon]) => window.GeoCrmMapPage.map.setView([lat, lon], 15, {animate: false})", [lat, lon])
    page.wait_for_timeout(300)
    pt = page.evaluate("([lat, lon]) => { const p = window.GeoCrmMapPage.map.latLngToContainerPoint([lat, lon]);"
                       " const r = window.GeoCrmMapPage.map.getContainer().getBoundingClientRect();"
                       " return [r.left + p.x, r.top + p.y]; }", [lat, lon])
    page.mouse.click(*pt)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert HOSTILE in popup.inner_text()
    assert popup.locator("img").count() == 0
    assert popup.locator(f"a[href='/customers/{c['id']}']").count() == 1
    page.keyboard.press("Escape")
    _draw_polygon(page, box(lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001))
    item = page.locator("#draw-results li a").first
    assert item.inner_text() == HOSTILE
    assert page.locator("#draw-results img").count() == 0


@pytest.mark.browser
def test_density_legend_matches_api_data(page, browser_login):
    browser_login("admin")
    page.goto("/map/density?metric=per_10k_inhabitants&by=region&scheme=quantiles&k=4")
    page.wait_for_selector(".geocrm-legend")
    api = page.locator("#density-summary").get_attribute("data-api")
    data = page.evaluate("url => fetch(url, {credentials: 'same-origin'}).then(r => r.json())", api)
    y = np.array([f["properties"]["per_10k_inhabitants"] for f in data["features"]
                  if f["properties"]["per_10k_inhabitants"] is not None])
    q = mapclassify.Quantiles(y, k=4)
    items = page.locator(".geocrm-legend li[data-upper]")
    uppers = [float(x) for x in items.evaluate_all("ls => ls.map(l => l.dataset.upper)")]
    counts = [int(x) for x in items.evaluate_all("ls => ls.map(l => l.dataset.count)")]
    assert uppers == pytest.approx(list(q.bins))
    assert counts == list(q.counts)
    assert sum(counts) == len(y)
