"""An executive opens the contribution report in headless Chromium, sees the chart and
the table, and drills down from a region on the map to that region's customers."""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

FIND_POLYGON_POINT = """() => {
  const box = document.querySelector('.report-mapbox').getBoundingClientRect();
  for (let y = box.top + 10; y < box.bottom - 10; y += 8) {
    for (let x = box.left + 10; x < box.right - 10; x += 8) {
      const el = document.elementFromPoint(x, y);
      if (el && el.tagName.toLowerCase() === 'path' && el.classList.contains('leaflet-interactive')) {
        return [x, y];
      }
    }
  }
  return null;
}"""


def test_executive_contribution_report_and_region_drilldown(page, browser_login):
    browser_login("executive")
    page.goto("/reports")
    page.click("a.report-card[data-report=contribution]")
    page.wait_for_url("**/reports/contribution")
    page.wait_for_selector("body[data-report-ready]")
    # the Lorenz chart is drawn by Chart.js from the report's figures
    points = page.evaluate("() => document.querySelector('canvas[data-chart=lorenz]').chart"
                           ".data.datasets[0].data.length")
    assert points > 10
    assert page.evaluate("() => document.querySelector('canvas[data-chart=regions]').chart.data.labels.length") > 3
    rows = page.locator("[data-table=top_customers] tbody tr")
    assert rows.count() == 20
    assert page.locator(".tile[data-metric=gini] .tile-value").inner_text().startswith("0.")
    # the map: click inside a region polygon, follow the popup link to its customers
    page.locator(".report-mapbox").scroll_into_view_if_needed()
    page.wait_for_selector(".report-mapbox path.leaflet-interactive")
    xy = page.evaluate(FIND_POLYGON_POINT)
    assert xy, "no region polygon visible on the map"
    page.mouse.click(*xy)
    link = page.locator(".leaflet-popup a.geocrm-popup-link")
    link.wait_for()
    href = link.get_attribute("href")
    assert re.fullmatch(r"/customers\?region_id=\d+", href)
    link.click()
    page.wait_for_url(re.compile(r".*/customers\?region_id=\d+$"), wait_until="domcontentloaded")
    assert "region_id=" + href.split("=")[1] in page.url


def test_contribution_report_as_pdf(page, browser_login):
    """Print-to-PDF through headless Chromium, as the logged-in user."""
    browser_login("executive")
    r = page.request.get("/reports/contribution.pdf?level=key")
    assert r.status == 200, r.text()[:300]
    assert r.headers["content-type"] == "application/pdf"
    body = r.body()
    assert body.startswith(b"%PDF") and len(body) > 20_000
